"""The national view's figures: one row per branch and the country's totals, from plain counts.

Pure, so the server's feed and the tests compute alerts the same way. A branch's alert is its
worst problem now, in this order: a queue past its target, people waiting and no counter open,
a printer out of paper or offline, a queue near its target (80 %), nothing wrong, or closed
(nobody waiting, no counter open).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

NEAR_TARGET = 0.8
# From the worst to the best; the page colours and sorts by this order.
ALERTS = ("over_target", "no_counter", "printer", "near_target", "ok", "closed")


@dataclass(frozen=True, slots=True)
class ServiceQueue:
    """One service's waiting tickets at a branch: how many, since when the oldest waits."""

    service_id: str
    waiting: int
    oldest_queued_at: datetime
    target_wait_s: int


@dataclass(frozen=True, slots=True)
class PrinterHealth:
    connected: bool
    online: bool | None
    paper: str | None

    @property
    def problem(self) -> str | None:
        """`offline` (agent or printer), `paper_out`, or None when it can print."""
        if not self.connected or self.online is False:
            return "offline"
        if self.paper == "out":
            return "paper_out"
        return None


def branch_row(
    queues: Sequence[ServiceQueue],
    counter_states: Mapping[str, int],
    counters_total: int,
    printers: Sequence[PrinterHealth],
    now: datetime,
) -> dict[str, Any]:
    """What the national view shows of one branch now. The longest wait is the queue furthest
    past its target (wait ÷ target), so a short-target queue is not hidden by a long one."""
    waiting = sum(q.waiting for q in queues)
    worst: tuple[float, int, ServiceQueue] | None = None
    for queue in queues:
        waited = max(0, round((now - queue.oldest_queued_at).total_seconds()))
        ratio = waited / queue.target_wait_s if queue.target_wait_s else float(waited > 0)
        if worst is None or ratio > worst[0]:
            worst = (ratio, waited, queue)
    problems = [p.problem for p in printers if p.problem]
    open_now = counter_states.get("open", 0)
    row = {
        "waiting": waiting,
        "longest_wait_s": worst[1] if worst else 0,
        "longest_target_s": worst[2].target_wait_s if worst else None,
        "longest_service": worst[2].service_id if worst else None,
        "counters_open": open_now,
        "counters_paused": counter_states.get("paused", 0),
        "counters_total": counters_total,
        "printers": len(printers),
        "printers_paper_out": problems.count("paper_out"),
        "printers_offline": problems.count("offline"),
    }
    row["alert"] = _alert(row, worst[0] if worst else 0.0)
    return row


def _alert(row: Mapping[str, Any], worst_ratio: float) -> str:
    if worst_ratio > 1:
        return "over_target"
    if row["waiting"] and not row["counters_open"]:
        return "no_counter"
    if row["printers_paper_out"] or row["printers_offline"]:
        return "printer"
    if worst_ratio >= NEAR_TARGET:
        return "near_target"
    if not row["waiting"] and not row["counters_open"]:
        return "closed"
    return "ok"


def country_totals(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The whole network's figures: sums, the longest wait anywhere, branches per alert."""
    totals: dict[str, Any] = {
        "branches": 0,
        "waiting": 0,
        "longest_wait_s": 0,
        "counters_open": 0,
        "counters_total": 0,
        "printers_paper_out": 0,
        "printers_offline": 0,
        "alerts": dict.fromkeys(ALERTS, 0),
    }
    for row in rows:
        totals["branches"] += 1
        for key in ("waiting", "counters_open", "counters_total"):
            totals[key] += row[key]
        for key in ("printers_paper_out", "printers_offline"):
            totals[key] += row[key]
        totals["longest_wait_s"] = max(totals["longest_wait_s"], row["longest_wait_s"])
        totals["alerts"][row["alert"]] += 1
    return totals
