"""Regions of Georgia by municipality (`municipalities.csv`), for grouping branches by region.

The catalog knows a branch's municipality only; the national view groups by the coarser region.
A configuration may carry its own `municipalities.csv`; without one the shipped file is read. A
branch whose municipality is unknown (or unset) falls in no region and is shown under "other".
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

FILE_NAME = "municipalities.csv"
SHIPPED = Path(__file__).resolve().parent.parent.parent / "config" / FILE_NAME
OTHER = "other"


@dataclass(frozen=True, slots=True)
class Region:
    id: str  # the English name, as the file spells it
    name_ka: str


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
