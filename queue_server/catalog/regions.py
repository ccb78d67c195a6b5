"""Regions of Georgia by municipality (`municipalities.csv`), for grouping branches by region.

The catalog knows a branch's municipality only; the national view groups by the coarser region.
A configuration may carry its own `municipalities.csv`; without one the shipped file is read. A
branch whose municipality is unknown (or unset) falls in no region and is shown under "other".
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from queue_server.catalog.models import Branch

FILE_NAME = "municipalities.csv"
SHIPPED = Path(__file__).resolve().parent.parent.parent / "config" / FILE_NAME
OTHER = "other"


@dataclass(frozen=True, slots=True)
class Region:
    id: str  # the English name, as the file spells it
    name_ka: str


def region_of(branch: Branch, by_municipality: Mapping[str, Region]) -> str | None:
    """A branch's region: the one the organisation sets (an admin may edit it), else its
    municipality's, None where neither is known. Reports and the national view both group by
    this, so a branch is in the same region on both."""
    if branch.region:
        return branch.region
    region = by_municipality.get(branch.municipality or "")
    return region.id if region else None


def regions_by_municipality(config_dir: Path) -> dict[str, Region]:
    """Municipality → its region, from the configuration's file or else the shipped one."""
    own = config_dir / FILE_NAME
    return _read(own if own.is_file() else SHIPPED)


@lru_cache(maxsize=4)
def _read(path: Path) -> dict[str, Region]:
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as source:
        return {
            row["municipality"].strip(): Region(row["region"].strip(), row["region_ka"].strip())
            for row in csv.DictReader(source)
            if row.get("municipality") and row.get("region")
        }
