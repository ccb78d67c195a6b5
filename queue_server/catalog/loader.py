"""Load and cross-check the organisation in `config/`; errors name the file and the key."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ValidationError

from queue_server.catalog.models import Agency, Branch, Service
from queue_server.errors import ConfigError, NotFound

ALL_SERVICES = "*"


@dataclass(frozen=True)
class Catalog:
    agencies: Mapping[str, Agency]
    services: Mapping[str, Service]
    branches: Mapping[str, Branch]
    _profiles: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict, repr=False)

    def branch(self, branch_id: str) -> Branch:
        try:
            return self.branches[branch_id]
        except KeyError:
            raise NotFound(f"No branch {branch_id!r}.", code="unknown_branch") from None

    def service(self, service_id: str) -> Service:
        try:
            return self.services[service_id]
        except KeyError:
            raise NotFound(f"No service {service_id!r}.", code="unknown_service") from None

    def counter(self, branch_id: str, counter_id: str) -> Any:
        for counter in self.branch(branch_id).counters:
            if counter.id == counter_id:
                return counter
        raise NotFound(f"No counter {counter_id!r} in {branch_id}.", code="unknown_counter")

    def profile(self, branch_id: str, counter_id: str) -> dict[str, float]:
        """Service id → weight for one counter, with agencies and `*` expanded (cached)."""
        key = (branch_id, counter_id)
        cached = self._profiles.get(key)
        if cached is None:
            cached = self._expand(self.counter(branch_id, counter_id).serves)
            self._profiles[key] = cached
        return cached

    def branch_services(self, branch_id: str) -> list[Service]:
        offered = {
            s for c in self.branch(branch_id).counters for s in self.profile(branch_id, c.id)
        }
        return sorted((self.services[s] for s in offered), key=lambda s: (-s.popularity, s.id))

    def serves(self, branch_id: str, service_id: str) -> bool:
        return any(
            service_id in self.profile(branch_id, c.id) for c in self.branch(branch_id).counters
        )

    def _expand(self, serves: Mapping[str, float]) -> dict[str, float]:
        weights: dict[str, float] = {}
        for name, weight in serves.items():
            if name == ALL_SERVICES:
                targets = list(self.services)
            elif name in self.agencies:
                targets = [s.id for s in self.services.values() if s.agency == name]
            else:
                targets = [name]
            for service_id in targets:
                if weight > 0:
                    weights[service_id] = max(weights.get(service_id, 0.0), weight)
        return weights


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file is missing") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def _validate(model: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ConfigError(f"{where}.{key}: {first['msg']}") from None


def _items(path: Path, key: str) -> list[Any]:
    data = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise ConfigError(f"{path}: expected a top-level list '{key}:'")
    return data[key]


def load_catalog(directory: Path) -> Catalog:
    """Read agencies, services and branches and check that they refer to each other."""
    directory = Path(directory)
    agencies_file, services_file = directory / "agencies.yaml", directory / "services.yaml"
    agencies: dict[str, Agency] = {}
    for i, item in enumerate(_items(agencies_file, "agencies")):
        agency = _validate(Agency, item, f"{agencies_file}: agencies[{i}]")
        agencies[agency.id] = agency
    services: dict[str, Service] = {}
    for i, item in enumerate(_items(services_file, "services")):
        service = _validate(Service, item, f"{services_file}: services[{i}]")
        if service.agency not in agencies:
            raise ConfigError(
                f"{services_file}: services[{i}].agency: unknown agency {service.agency!r}"
            )
        if service.id in services:
            raise ConfigError(f"{services_file}: services[{i}].id: {service.id!r} repeats")
        services[service.id] = service
    branches: dict[str, Branch] = {}
    centres = directory / "community_centres.csv"
    if centres.exists():
        for branch in _community_centres(centres):
            branches[branch.id] = branch
    hand_written: set[str] = set()
    for path in sorted((directory / "branches").glob("*.yaml")):
        branch = _validate(Branch, _read_yaml(path), str(path) + ":")
        if branch.id in hand_written:
            raise ConfigError(f"{path}: id: branch {branch.id!r} is defined twice")
        hand_written.add(branch.id)
        _check_branch(branch, path, agencies, services)
        branches[branch.id] = branch
    if not branches:
        raise ConfigError(f"{directory}: no branches (add branches/*.yaml)")
    return Catalog(agencies, services, branches)


def _check_branch(
    branch: Branch, path: Path, agencies: Mapping[str, Agency], services: Mapping[str, Service]
) -> None:
    try:
        ZoneInfo(branch.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{path}: timezone: unknown time zone {branch.timezone!r}") from None
    for i, counter in enumerate(branch.counters):
        for name in counter.serves:
            if name != ALL_SERVICES and name not in services and name not in agencies:
                raise ConfigError(
                    f"{path}: counters[{i}].serves.{name}: not a service, agency or '*'"
                )


def _community_centres(path: Path) -> list[Branch]:
    """Every Community Centre of the list, with two counters that serve everything."""
    branches = []
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            slug = row["village"].lower().replace(" ", "-").replace("'", "")
            branch_id = f"cc{int(row['number']):02d}-{slug}"
            branches.append(
                _validate(
                    Branch,
                    {
                        "id": branch_id,
                        "kind": "community_centre",
                        "name": {
                            "ka": row.get("village_ka") or row["village"],
                            "en": f"{row['village']} Community Centre",
                        },
                        "municipality": row["municipality"],
                        "counters": [
                            {"id": f"c{n}", "number": n, "area": "main", "serves": {"*": 1}}
                            for n in (1, 2)
                        ],
                    },
                    f"{path}: row {row['number']}",
                )
            )
    return branches


def check_config(directory: Path) -> list[str]:
    """Every problem found, as lines naming file and key; [] when the configuration is fine."""
    try:
        load_catalog(directory)
    except ConfigError as exc:
        return [str(exc)]
    return []
