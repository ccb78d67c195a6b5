"""Read the organisation from a configuration directory, check it whole, and serve it fast.

The directory holds `agencies.yaml`, `services.yaml`, one YAML file per hand-written branch in
`branches/`, and `community_centres.csv`, whose every row becomes a small Community Centre with a
default profile unless a branch file with the same id describes it by hand.

Every problem is reported as `<file>: <key path>: <what is wrong>` so that whoever edits the
configuration can go straight to the line; `check_config` lists them all, `load_catalog` refuses
to start with any. The `Catalog` expands counter profiles once, because "call next" reads them on
every call.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from queue_server.catalog.documents import read_yaml, shown, validate
from queue_server.catalog.models import Agency, Branch, Counter, Service
from queue_server.errors import ConfigError, NotFound

AGENCIES_FILE = "agencies.yaml"
SERVICES_FILE = "services.yaml"
BRANCHES_DIRECTORY = "branches"
BRANCH_FILE_SUFFIXES = (".yaml", ".yml")
COMMUNITY_CENTRES_FILE = "community_centres.csv"
COMMUNITY_CENTRE_COLUMNS = ("number", "village", "municipality", "name_ka")

EVERY_SERVICE = "*"
"""In a counter's `serves`, the key that stands for every service of the catalog."""

DEFAULT_CENTRE_COUNTERS = 2
DEFAULT_CENTRE_AREA = {
    "id": "main",
    "name": {
        "ka": "მომსახურების დარბაზი",
        "en": "Service hall",
        "ru": "Зал обслуживания",
        "az": "Xidmət zalı",
        "hy": "Սպասարկման սրահ",
    },
}

_ModelT = TypeVar("_ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Catalog:
    """The validated organisation: agencies, services and branches, with expanded profiles.

    Lookups raise `NotFound` with a stable code, so the HTTP layer answers 404 without knowing
    the catalog. Expanded profiles, branch service lists and counters are computed once here.
    """

    agencies: Mapping[str, Agency]
    services: Mapping[str, Service]
    branches: Mapping[str, Branch]
    _counters: dict[tuple[str, str], Counter] = field(init=False, repr=False, compare=False)
    _profiles: dict[tuple[str, str], dict[str, float]] = field(
        init=False, repr=False, compare=False
    )
    _branch_services: dict[str, tuple[Service, ...]] = field(init=False, repr=False, compare=False)
    _served: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_agency = _services_by_agency(self.services.values())
        counters: dict[tuple[str, str], Counter] = {}
        profiles: dict[tuple[str, str], dict[str, float]] = {}
        branch_services: dict[str, tuple[Service, ...]] = {}
        served: dict[str, frozenset[str]] = {}
        for branch in self.branches.values():
            offered: set[str] = set()
            for counter in branch.counters:
                unknown = _unknown_keys(counter.serves, self.services, self.agencies)
                if unknown:
                    raise ConfigError(
                        f"branch {branch.id}, counter {counter.id}: serves unknown "
                        f"services or agencies {sorted(unknown)}"
                    )
                profile = expand_serves(counter.serves, self.services, by_agency)
                counters[branch.id, counter.id] = counter
                profiles[branch.id, counter.id] = profile
                offered.update(profile)
            served[branch.id] = frozenset(offered)
            branch_services[branch.id] = tuple(
                sorted(
                    (self.services[service_id] for service_id in offered),
                    key=lambda service: (-service.popularity, service.id),
                )
            )
        object.__setattr__(self, "_counters", counters)
        object.__setattr__(self, "_profiles", profiles)
        object.__setattr__(self, "_branch_services", branch_services)
        object.__setattr__(self, "_served", served)

    def branch(self, branch_id: str) -> Branch:
        """The branch with this id, or NotFound(unknown_branch)."""
        try:
            return self.branches[branch_id]
        except KeyError:
            raise NotFound(
                f"There is no branch {branch_id!r}.", code="unknown_branch", branch=branch_id
            ) from None

    def service(self, service_id: str) -> Service:
        """The service with this id, or NotFound(unknown_service)."""
        try:
            return self.services[service_id]
        except KeyError:
            raise NotFound(
                f"There is no service {service_id!r}.", code="unknown_service", service=service_id
            ) from None

    def counter(self, branch_id: str, counter_id: str) -> Counter:
        """The counter of a branch, or NotFound(unknown_branch / unknown_counter)."""
        try:
            return self._counters[branch_id, counter_id]
        except KeyError:
            self.branch(branch_id)
            raise NotFound(
                f"Branch {branch_id!r} has no counter {counter_id!r}.",
                code="unknown_counter",
                branch=branch_id,
                counter=counter_id,
            ) from None

    def profile(self, branch_id: str, counter_id: str) -> dict[str, float]:
        """The counter's work profile expanded to service id → weight (> 0); a fresh copy, so a
        caller may change it without touching the catalog."""
        try:
            return dict(self._profiles[branch_id, counter_id])
        except KeyError:
            self.counter(branch_id, counter_id)
            raise  # pragma: no cover - counter() raised NotFound already

    def branch_services(self, branch_id: str) -> list[Service]:
        """What the branch's kiosk offers: services some counter serves, most popular first."""
        try:
            return list(self._branch_services[branch_id])
        except KeyError:
            self.branch(branch_id)
            raise  # pragma: no cover - branch() raised NotFound already

    def serves(self, branch_id: str, service_id: str) -> bool:
        """Whether some counter of the branch serves the service (False for unknown services)."""
        try:
            return service_id in self._served[branch_id]
        except KeyError:
            self.branch(branch_id)
            raise  # pragma: no cover - branch() raised NotFound already


def expand_serves(
    serves: Mapping[str, float],
    services: Mapping[str, Service],
    by_agency: Mapping[str, list[str]],
) -> dict[str, float]:
    """Expand a counter's `serves` to service id → weight. The most specific entry wins (a
    service over its agency over "*"), and a weight of 0 leaves the service out."""
    profile: dict[str, float] = {}
    if EVERY_SERVICE in serves:
        profile = dict.fromkeys(services, serves[EVERY_SERVICE])
    for key, weight in serves.items():
        for service_id in by_agency.get(key, ()):
            profile[service_id] = weight
    for key, weight in serves.items():
        if key in services:
            profile[key] = weight
    return {service_id: weight for service_id, weight in profile.items() if weight > 0}


def load_catalog(directory: Path) -> Catalog:
    """Load and check the configuration; raise ConfigError listing every problem found."""
    problems: list[str] = []
    catalog = _read(Path(directory), problems)
    if problems or catalog is None:
        raise ConfigError("\n".join(problems) or f"{shown(Path(directory))}: cannot be loaded")
    return catalog


def check_config(directory: Path) -> list[str]:
    """Every problem in the configuration, one line each naming file and key; [] when fine."""
    problems: list[str] = []
    try:
        _read(Path(directory), problems)
    except Exception as exc:  # a bug in the checker must still come out as a report
        problems.append(f"{shown(Path(directory))}: cannot be checked: {exc!r}")
    return problems


# --- reading ---------------------------------------------------------------------------------


def _read(directory: Path, problems: list[str]) -> Catalog | None:
    if not directory.is_dir():
        problems.append(f"{shown(directory)}: not a configuration directory")
        return None
    agencies_file, services_file = directory / AGENCIES_FILE, directory / SERVICES_FILE
    agencies, declared_agencies = _read_list(agencies_file, "agencies", Agency, problems)
    _unique(agencies, agencies_file, "agencies", "agency", problems)
    agency_ids = {agency.id for _, agency in agencies}

    services, declared_services = _read_list(services_file, "services", Service, problems)
    _unique(services, services_file, "services", "service", problems)
    for index, service in services:
        where = f"{shown(services_file)}: services[{index}]"
        if declared_agencies is not None and service.agency not in declared_agencies:
            problems.append(
                f"{where}.agency: unknown agency {service.agency!r} "
                f"(known: {', '.join(sorted(agency_ids))})"
            )
        if service.id in agency_ids:
            problems.append(
                f"{where}.id: {service.id!r} is also an agency id, so counters could not "
                "tell which one they serve"
            )

    agency_map = {agency.id: agency for _, agency in agencies}
    service_map = {service.id: service for _, service in services if service.agency in agency_ids}
    # Names declared in a file count as known even when their entry is broken, so that one bad
    # service is reported once and not again by every counter that serves it.
    declared = (
        None
        if declared_agencies is None or declared_services is None
        else declared_agencies | declared_services
    )
    branches = _read_branches(directory, service_map, agency_ids, declared, problems)
    if problems:
        return None
    return Catalog(agencies=agency_map, services=service_map, branches=branches)


def _read_list(
    path: Path, key: str, model: type[_ModelT], problems: list[str]
) -> tuple[list[tuple[int, _ModelT]], set[str] | None]:
    """Validate each item of a file's one top-level list on its own, so that one bad item
    hides none of the others' problems. Returns (index, model) for the valid items, and the
    ids the file declares (None when the file could not be read as a list at all)."""
    document = read_yaml(path, problems)
    if document is None:
        return [], None
    if not isinstance(document, dict) or set(document) != {key}:
        found = sorted(document) if isinstance(document, dict) else type(document).__name__
        problems.append(f"{shown(path)}: expected one top-level key {key!r}, found {found}")
        return [], None
    items = document[key]
    if not isinstance(items, list) or not items:
        problems.append(f"{shown(path)}: {key}: expected a non-empty list")
        return [], None
    valid: list[tuple[int, _ModelT]] = []
    declared: set[str] = set()
    for index, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            declared.add(item["id"])
        parsed = validate(model, item, shown(path), f"{key}[{index}]", problems)
        if parsed is not None:
            valid.append((index, parsed))
    return valid, declared


def _read_branches(
    directory: Path,
    services: Mapping[str, Service],
    agency_ids: set[str],
    declared: set[str] | None,
    problems: list[str],
) -> dict[str, Branch]:
    """Hand-written branches in file order, then the Community Centres of the CSV in its order;
    a hand-written branch with a centre's id takes the centre's place."""
    written: dict[str, Branch] = {}
    written_in: dict[str, Path] = {}
    branches_dir = directory / BRANCHES_DIRECTORY
    files = (
        sorted(p for p in branches_dir.iterdir() if p.suffix in BRANCH_FILE_SUFFIXES)
        if branches_dir.is_dir()
        else []
    )
    for path in files:
        document = read_yaml(path, problems)
        if document is None:
            continue
        branch = validate(Branch, document, shown(path), "", problems)
        if branch is None:
            continue
        if branch.id in written:
            problems.append(
                f"{shown(path)}: id: branch id {branch.id!r} is already used by "
                f"{shown(written_in[branch.id])}"
            )
            continue
        _check_branch(branch, path, services, agency_ids, declared, problems)
        written[branch.id] = branch
        written_in[branch.id] = path

    centres = _read_centres(directory / COMMUNITY_CENTRES_FILE, problems)
    branches = {branch_id: b for branch_id, b in written.items() if branch_id not in centres}
    for branch_id, centre in centres.items():
        branches[branch_id] = written.get(branch_id, centre)
    if not branches and not files and not centres:
        problems.append(
            f"{shown(directory)}: no branches: add {BRANCHES_DIRECTORY}/*.yaml "
            f"or {COMMUNITY_CENTRES_FILE}"
        )
    return branches


def _read_centres(path: Path, problems: list[str]) -> dict[str, Branch]:
    """One default Community Centre per CSV row: DEFAULT_CENTRE_COUNTERS counters serving "*"."""
    if not path.exists():
        return {}
    centres: dict[str, Branch] = {}
    row_of: dict[str, int] = {}
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COMMUNITY_CENTRE_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                problems.append(f"{shown(path)}: line 1: missing columns {missing}")
                return {}
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        problems.append(f"{shown(path)}: cannot be read: {exc}")
        return {}
    for index, row in enumerate(rows):
        where = f"{shown(path)}: line {index + 2}"
        number = (row.get("number") or "").strip()
        village = (row.get("village") or "").strip()
        if not number.isdigit() or not village:
            problems.append(f"{where}: needs a whole number and a village, got {row!r}")
            continue
        document = {
            "id": f"cc{int(number):02d}-{_slug(village)}",
            "kind": "community_centre",
            "name": {"ka": (row.get("name_ka") or "").strip(), "en": f"{village} Community Centre"}
            | {
                lang: name
                for lang in ("ru", "az", "hy")
                if (name := _optional(row, f"name_{lang}"))
            },
            "municipality": (row.get("municipality") or "").strip() or None,
            "areas": [DEFAULT_CENTRE_AREA],
            "counters": [
                {
                    "id": f"c{n:02d}",
                    "number": n,
                    "area": DEFAULT_CENTRE_AREA["id"],
                    "serves": {EVERY_SERVICE: 1},
                }
                for n in range(1, DEFAULT_CENTRE_COUNTERS + 1)
            ],
        }
        centre = validate(Branch, document, where, "", problems)
        if centre is None:
            continue
        if centre.id in centres:
            problems.append(
                f"{where}: branch id {centre.id!r} repeats line {row_of[centre.id] + 2}"
            )
            continue
        centres[centre.id] = centre
        row_of[centre.id] = index
    return centres


def _check_branch(
    branch: Branch,
    path: Path,
    services: Mapping[str, Service],
    agency_ids: set[str],
    declared: set[str] | None,
    problems: list[str],
) -> None:
    """What pydantic cannot see inside one model: the time zone exists, areas and serves keys
    refer to something known, and every counter serves at least one service."""
    where = shown(path)
    try:
        ZoneInfo(branch.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"{where}: timezone: unknown time zone {branch.timezone!r}")
    area_ids = [area.id for area in branch.areas]
    for index, area_id in enumerate(area_ids):
        if area_id in area_ids[:index]:
            problems.append(f"{where}: areas[{index}].id: area id {area_id!r} repeats")
    by_agency = _services_by_agency(services.values())
    for index, counter in enumerate(branch.counters):
        at = f"{where}: counters[{index}]"
        if area_ids and counter.area not in area_ids:
            problems.append(
                f"{at}.area: unknown area {counter.area!r} (areas: {', '.join(area_ids)})"
            )
        unknown = _unknown_keys(counter.serves, services, agency_ids)
        for key in sorted(unknown):
            if declared is not None and key not in declared:
                problems.append(f"{at}.serves.{key}: not a service id, an agency id or '*'")
        if (
            declared is not None
            and not unknown
            and not expand_serves(counter.serves, services, by_agency)
        ):
            problems.append(f"{at}.serves: serves no service (every weight is 0)")


def _unique(
    items: list[tuple[int, Agency]] | list[tuple[int, Service]],
    path: Path,
    key: str,
    what: str,
    problems: list[str],
) -> None:
    """Drop repeated ids from `items` in place, recording each repeat."""
    first: dict[str, int] = {}
    kept: list[Any] = []
    for index, item in items:
        if item.id in first:
            problems.append(
                f"{shown(path)}: {key}[{index}].id: {what} id {item.id!r} repeats "
                f"{key}[{first[item.id]}]"
            )
            continue
        first[item.id] = index
        kept.append((index, item))
    items[:] = kept


def _services_by_agency(services: Iterable[Service]) -> dict[str, list[str]]:
    by_agency: dict[str, list[str]] = {}
    for service in services:
        by_agency.setdefault(service.agency, []).append(service.id)
    return by_agency


def _unknown_keys(
    serves: Mapping[str, float], services: Container[str], agencies: Container[str]
) -> set[str]:
    return {
        key
        for key in serves
        if key != EVERY_SERVICE and key not in services and key not in agencies
    }


def _optional(row: Mapping[str, str | None], column: str) -> str | None:
    """An optional CSV column's text, or None when absent or blank."""
    return (row.get(column) or "").strip() or None


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
