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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from queue_server.catalog.documents import read_yaml, shown, validate
from queue_server.catalog.models import Agency, Branch, Service
from queue_server.catalog.snapshot import (
    EVERY_SERVICE,
    Catalog,
    expand_serves,
    offered,
    services_by_agency,
    unknown_keys,
)
from queue_server.errors import ConfigError

__all__ = ["EVERY_SERVICE", "Catalog", "check_config", "expand_serves", "load_catalog"]

AGENCIES_FILE = "agencies.yaml"
SERVICES_FILE = "services.yaml"
BRANCHES_DIRECTORY = "branches"
BRANCH_FILE_SUFFIXES = (".yaml", ".yml")
COMMUNITY_CENTRES_FILE = "community_centres.csv"
COMMUNITY_CENTRE_COLUMNS = ("number", "village", "municipality", "name_ka")
MUNICIPALITIES_FILE = "municipalities.csv"
MUNICIPALITY_COLUMNS = ("municipality", "region")

DEFAULT_CENTRE_COUNTERS = 2
# What a Community Centre offers unless its own file says otherwise: the agencies the centres
# serve (docs from the Public Service Development Agency: civil registry, National Archive,
# Public Registry, Social Service Agency, Agricultural Logistics), not the capital's municipal
# services nor the private providers of the big halls. Agencies a configuration lacks are left
# out.
DEFAULT_CENTRE_AGENCIES = ("psda", "national_archives", "napr", "ssa", "alsc")
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
RawList = tuple[str, str, Any]
"""(where, key, items) of a top-level list: items is None when its file could not be read."""
RawBranch = tuple[str, str, Any]
"""(where, key prefix, document) of one branch."""


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


def catalog_from_parts(
    agencies: RawList,
    services: RawList,
    branches: list[RawBranch],
    problems: list[str],
    *,
    centres: Mapping[str, Branch] | None = None,
    version: int = 0,
) -> Catalog | None:
    """Check an organisation given as raw documents, whatever they were read from (files or a
    stored document), with one set of rules; the Catalog, or None with `problems` filled."""
    agency_items, declared_agencies = _validate_items(agencies, Agency, problems)
    _unique(agency_items, agencies[0], agencies[1], "agency", problems)
    agency_ids = {agency.id for _, agency in agency_items}

    service_items, declared_services = _validate_items(services, Service, problems)
    _unique(service_items, services[0], services[1], "service", problems)
    for index, service in service_items:
        where = f"{services[0]}: {services[1]}[{index}]"
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

    agency_map = {agency.id: agency for _, agency in agency_items}
    service_map = {s.id: s for _, s in service_items if s.agency in agency_ids}
    # Names declared in a file count as known even when their entry is broken, so that one bad
    # service is reported once and not again by every counter that serves it.
    declared = (
        None
        if declared_agencies is None or declared_services is None
        else declared_agencies | declared_services
    )
    # Every agency, with the services it has here (none, for an agency without services).
    by_agency: dict[str, list[str]] = {agency_id: [] for agency_id in agency_ids}
    by_agency |= services_by_agency(service_map.values())
    written: dict[str, Branch] = {}
    written_in: dict[str, str] = {}
    for where, prefix, document in branches:
        branch = validate(Branch, document, where, prefix, problems)
        if branch is None:
            continue
        if branch.id in written:
            problems.append(
                f"{where}: {prefix + '.' if prefix else ''}id: branch id {branch.id!r} is "
                f"already used by {written_in[branch.id]}"
            )
            continue
        _check_branch(branch, where, prefix, service_map, by_agency, declared, problems)
        written[branch.id] = branch
        written_in[branch.id] = where
    centres = centres or {}
    # A hand-written branch with a centre's id takes the centre's place.
    branch_map = {branch_id: b for branch_id, b in written.items() if branch_id not in centres}
    for branch_id, centre in centres.items():
        branch_map[branch_id] = written.get(branch_id, centre)
    if not branch_map and not problems:
        problems.append(f"{agencies[0]}: no branches")
    if problems:
        return None
    return Catalog(agency_map, service_map, branch_map, version=version)


def _read(directory: Path, problems: list[str]) -> Catalog | None:
    if not directory.is_dir():
        problems.append(f"{shown(directory)}: not a configuration directory")
        return None
    agencies = _read_list(directory / AGENCIES_FILE, "agencies", problems)
    services = _read_list(directory / SERVICES_FILE, "services", problems)
    branches_dir = directory / BRANCHES_DIRECTORY
    files = (
        sorted(p for p in branches_dir.iterdir() if p.suffix in BRANCH_FILE_SUFFIXES)
        if branches_dir.is_dir()
        else []
    )
    regions = _read_regions(directory / MUNICIPALITIES_FILE, problems)
    branches: list[RawBranch] = []
    for path in files:
        document = read_yaml(path, problems)
        if document is not None:
            _place(document, regions, shown(path), problems)
            branches.append((shown(path), "", document))
    agency_ids = {
        item["id"] for item in agencies[2] or () if isinstance(item, dict) and "id" in item
    }
    centre_offers = [a for a in DEFAULT_CENTRE_AGENCIES if a in agency_ids] or None
    centres = _read_centres(directory / COMMUNITY_CENTRES_FILE, centre_offers, regions, problems)
    if not files and not centres and not problems:
        problems.append(
            f"{shown(directory)}: no branches: add {BRANCHES_DIRECTORY}/*.yaml "
            f"or {COMMUNITY_CENTRES_FILE}"
        )
        return None
    return catalog_from_parts(agencies, services, branches, problems, centres=centres)


def _read_list(path: Path, key: str, problems: list[str]) -> RawList:
    """A file's one top-level list, unvalidated (None after recording why it is not one)."""
    document = read_yaml(path, problems)
    if document is None:
        return shown(path), key, None
    if not isinstance(document, dict) or set(document) != {key}:
        found = sorted(document) if isinstance(document, dict) else type(document).__name__
        problems.append(f"{shown(path)}: expected one top-level key {key!r}, found {found}")
        return shown(path), key, None
    return shown(path), key, document[key]


def _validate_items(
    raw: RawList, model: type[_ModelT], problems: list[str]
) -> tuple[list[tuple[int, _ModelT]], set[str] | None]:
    """Validate each item of a top-level list on its own, so that one bad item hides none of
    the others' problems. Returns (index, model) for the valid items, and the ids the list
    declares (None when it is not a list at all)."""
    where, key, items = raw
    if items is None:
        return [], None
    if not isinstance(items, list) or not items:
        problems.append(f"{where}: {key}: expected a non-empty list")
        return [], None
    valid: list[tuple[int, _ModelT]] = []
    declared: set[str] = set()
    for index, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            declared.add(item["id"])
        parsed = validate(model, item, where, f"{key}[{index}]", problems)
        if parsed is not None:
            valid.append((index, parsed))
    return valid, declared


def _read_regions(path: Path, problems: list[str]) -> dict[str, str] | None:
    """Municipality → region, from the optional list of Georgia's municipalities."""
    if not path.exists():
        return None
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in MUNICIPALITY_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                problems.append(f"{shown(path)}: line 1: missing columns {missing}")
                return None
            return {
                row["municipality"].strip(): row["region"].strip()
                for row in reader
                if row.get("municipality") and row.get("region")
            }
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        problems.append(f"{shown(path)}: cannot be read: {exc}")
        return None


def _place(
    document: Any, regions: Mapping[str, str] | None, where: str, problems: list[str]
) -> None:
    """Fill a branch's region from its municipality, and check the two agree, when the
    configuration lists municipalities (an export writes the region out, so it needs none)."""
    if regions is None or not isinstance(document, dict):
        return
    municipality = document.get("municipality")
    if not isinstance(municipality, str):
        return
    region = regions.get(municipality)
    if region is None:
        problems.append(
            f"{where}: municipality: unknown municipality {municipality!r} "
            f"(see {MUNICIPALITIES_FILE})"
        )
    elif document.setdefault("region", region) != region:
        problems.append(
            f"{where}: region: {municipality} lies in {region!r}, not {document['region']!r}"
        )


def _read_centres(
    path: Path,
    offers: list[str] | None,
    regions: Mapping[str, str] | None,
    problems: list[str],
) -> dict[str, Branch]:
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
            "offers": offers,
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
        _place(document, regions, where, problems)
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
    where: str,
    prefix: str,
    services: Mapping[str, Service],
    by_agency: Mapping[str, list[str]],
    declared: set[str] | None,
    problems: list[str],
) -> None:
    """What pydantic cannot see inside one model: the time zone exists, areas, offers, screens
    and serves keys refer to something known, every counter serves at least one service, and
    two agencies do not share a ticket letter in the branch."""
    at_branch = f"{where}: {prefix + '.' if prefix else ''}"
    try:
        ZoneInfo(branch.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"{at_branch}timezone: unknown time zone {branch.timezone!r}")
    area_ids = [area.id for area in branch.areas]
    for index, area_id in enumerate(area_ids):
        if area_id in area_ids[:index]:
            problems.append(f"{at_branch}areas[{index}].id: area id {area_id!r} repeats")
    agency_ids = by_agency.keys()
    for key in sorted(unknown_keys(branch.offers or (), services, agency_ids)):
        if declared is not None and key not in declared:
            problems.append(f"{at_branch}offers: {key!r} is not a service id, an agency id or '*'")
    for index, counter in enumerate(branch.counters):
        at = f"{at_branch}counters[{index}]"
        if area_ids and counter.area not in area_ids:
            problems.append(
                f"{at}.area: unknown area {counter.area!r} (areas: {', '.join(area_ids)})"
            )
        unknown = unknown_keys(counter.serves, services, agency_ids)
        for key in sorted(unknown):
            if declared is not None and key not in declared:
                problems.append(f"{at}.serves.{key}: not a service id, an agency id or '*'")
        if (
            declared is not None
            and not unknown
            and not _surely_serves(counter.serves, services)
            and not expand_serves(counter.serves, services, by_agency)
        ):
            problems.append(f"{at}.serves: serves no service (every weight is 0)")
    for index, screen in enumerate(branch.screens):
        for area_id in screen.areas:
            if area_id not in area_ids:
                problems.append(f"{at_branch}screens[{index}].areas: unknown area {area_id!r}")
        for service_id in screen.services:
            if service_id not in services:
                problems.append(
                    f"{at_branch}screens[{index}].services: unknown service {service_id!r}"
                )
    _check_letters(branch, at_branch, services, by_agency, problems)


def _surely_serves(serves: Mapping[str, float], services: Mapping[str, Service]) -> bool:
    """A quick yes for the common profiles ("*" or a service with a weight above 0), so that
    only the rare doubtful one is expanded to check that it serves something."""
    return any(w > 0 and (key == EVERY_SERVICE or key in services) for key, w in serves.items())


def _check_letters(
    branch: Branch,
    at_branch: str,
    services: Mapping[str, Service],
    by_agency: Mapping[str, list[str]],
    problems: list[str],
) -> None:
    """Tickets are numbered per letter in a branch, so two agencies sharing a letter there would
    hand out one number sequence and one label for two queues."""
    holder: dict[str, Service] = {}
    for service_id in sorted(offered(branch, services, by_agency)):
        service = services[service_id]
        first = holder.setdefault(service.letter, service)
        if first.agency != service.agency:
            problems.append(
                f"{at_branch}offers: services {first.id!r} ({first.agency}) and {service.id!r} "
                f"({service.agency}) share the letter {service.letter}"
            )
            return


def _unique(
    items: list[tuple[int, Agency]] | list[tuple[int, Service]],
    where: str,
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
                f"{where}: {key}[{index}].id: {what} id {item.id!r} repeats {key}[{first[item.id]}]"
            )
            continue
        first[item.id] = index
        kept.append((index, item))
    items[:] = kept


def _optional(row: Mapping[str, str | None], column: str) -> str | None:
    """An optional CSV column's text, or None when absent or blank."""
    return (row.get(column) or "").strip() or None


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
