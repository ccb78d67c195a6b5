"""A report's sums: the slice's whole, grouped the ways the reports page shows them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from queue_server.domain import kpis


@dataclass
class Report:
    """The sums of a slice, whole and grouped the ways the reports page shows them."""

    total: kpis.Sums = field(default_factory=kpis.Sums)
    by_service: dict[str, kpis.Sums] = field(default_factory=lambda: defaultdict(kpis.Sums))
    by_branch: dict[str, kpis.Sums] = field(default_factory=lambda: defaultdict(kpis.Sums))
    by_day: dict[date, kpis.Sums] = field(default_factory=lambda: defaultdict(kpis.Sums))
    arrivals: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    counters: dict[tuple[str, str, str], kpis.CounterTime] = field(
        default_factory=lambda: defaultdict(kpis.CounterTime)
    )
    longest: list[dict[str, Any]] = field(default_factory=list)
