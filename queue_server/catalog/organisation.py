"""The organisation as one document: what is stored, exported, imported and edited.

A document is `{"agencies": [...], "services": [...], "branches": [...]}` in the shape of the
configuration files, so a stored version, an export directory and the shipped `config/` are the
same thing in two spellings. `catalog_from_document` checks a document with the very rules of
`check-config` (loader.catalog_from_parts), naming each problem's field; `write_directory` writes
the files that `load_catalog` reads back into the same document, byte for byte on a second
export.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from queue_server.catalog.loader import (
    AGENCIES_FILE,
    BRANCHES_DIRECTORY,
    SERVICES_FILE,
    RawBranch,
    catalog_from_parts,
)
from queue_server.catalog.snapshot import Catalog
from queue_server.errors import ConfigError, ValidationFailed

DOCUMENT_KEYS = ("agencies", "services", "branches")
WHERE = "organisation"
YAML_WIDTH = 100


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    problem: str


class OrganisationInvalid(ValidationFailed):
    """An edit or import the loader's rules refuse; `details.fields` names each field."""

    code = "invalid_organisation"


def to_document(catalog: Catalog) -> dict[str, Any]:
    """The catalog as a plain JSON document, defaults left out (they are the models')."""

    def dump(items: Iterable[Any]) -> list[dict[str, Any]]:
        return [item.model_dump(mode="json", exclude_defaults=True) for item in items]

    return {
        "agencies": dump(catalog.agencies.values()),
        "services": dump(catalog.services.values()),
        "branches": dump(catalog.branches.values()),
    }


def catalog_from_document(document: Any, *, version: int = 0) -> Catalog:
    """The checked Catalog of a document, or OrganisationInvalid listing every problem."""
    problems: list[str] = []
    catalog = None
    if not isinstance(document, dict) or set(document) != set(DOCUMENT_KEYS):
        found = sorted(document) if isinstance(document, dict) else type(document).__name__
        problems.append(f"{WHERE}: (top level): expected the keys {list(DOCUMENT_KEYS)}, {found}")
    else:
        branches: list[RawBranch] = []
        raw_branches = document["branches"]
        if not isinstance(raw_branches, list):
            problems.append(f"{WHERE}: branches: expected a list")
            raw_branches = []
        for index, raw in enumerate(raw_branches):
            name = raw.get("id") if isinstance(raw, dict) else None
            label = f"branches.{name}" if isinstance(name, str) else f"branches[{index}]"
            branches.append((WHERE, label, raw))
        catalog = catalog_from_parts(
            (WHERE, "agencies", document["agencies"]),
            (WHERE, "services", document["services"]),
            branches,
            problems,
            version=version,
        )
    if catalog is None or problems:
        fields = [_problem(text) for text in problems]
        raise OrganisationInvalid(
            "The organisation was not changed: "
            + "; ".join(f"{p.field}: {p.problem}" for p in fields[:3]),
            fields=[{"field": p.field, "problem": p.problem} for p in fields],
        )
    return catalog


def _problem(text: str) -> Problem:
    """`organisation: branches.tbilisi.counters[2].serves.x: not a service` → its parts."""
    parts = text.split(": ", 2)
    if len(parts) == 3:
        return Problem(parts[1], parts[2])
    return Problem("(top level)", parts[-1])


def write_directory(document: dict[str, Any], directory: Path) -> list[Path]:
    """Write a document as configuration files into an empty (or new) directory; the files."""
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"{directory}: not empty; export into a new directory")
    branches_dir = directory / BRANCHES_DIRECTORY
    branches_dir.mkdir(parents=True, exist_ok=True)
    written = [
        _write_yaml(directory / AGENCIES_FILE, {"agencies": document["agencies"]}),
        _write_yaml(directory / SERVICES_FILE, {"services": document["services"]}),
    ]
    for branch in document["branches"]:
        written.append(_write_yaml(branches_dir / f"{branch['id']}.yaml", branch))
    return written


def _write_yaml(path: Path, data: Any) -> Path:
    text = yaml.safe_dump(
        data, allow_unicode=True, sort_keys=False, default_flow_style=False, width=YAML_WIDTH
    )
    path.write_text(text, encoding="utf-8")
    return path


def same(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether two documents say the same (key order aside)."""
    return _key(first) == _key(second)


def _key(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, sort_keys=True)


def touched_branches(before: Catalog | None, after: Catalog) -> set[str]:
    """The branches whose kiosk, boards or consoles an edit changes: the branch itself, its
    offered services, or their agencies differ. All of them when there was nothing before."""
    if before is None:
        return set(after.branches)
    old, new = _Faces(before), _Faces(after)
    return {
        branch_id
        for branch_id in after.branches
        if branch_id not in before.branches or old.of(branch_id) != new.of(branch_id)
    }


class _Faces:
    """What each branch shows, as comparable text; every service and agency dumped once."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.services = {k: _key(v.model_dump(mode="json")) for k, v in catalog.services.items()}
        self.agencies = {k: _key(v.model_dump(mode="json")) for k, v in catalog.agencies.items()}

    def of(self, branch_id: str) -> tuple[str, ...]:
        services = self.catalog.branch_services(branch_id)
        agencies = sorted({service.agency for service in services})
        return (
            _key(self.catalog.branches[branch_id].model_dump(mode="json")),
            *(self.services[service.id] for service in services),
            *(self.agencies[agency] for agency in agencies),
        )
