"""Report figures from visit facts and their rollups: pure functions over plain data.

A visit is one ticket row (a transfer starts a new visit). Rollups hold sums, counts and fixed
histograms, so that a year of them merges in memory and gives the same figures as the facts
they were built from; medians and p90s come from the histograms (`BUCKET_S` resolution).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

BUCKET_S = 30  # histogram resolution: a median or p90 is exact to within this
BUCKETS = 240  # 30 s buckets up to 2 h; one more bucket holds every longer wait
LONGEST_WAITS = 10  # how many of the longest waits a report lists


class Channel(StrEnum):
    """How a visit reached the queue."""

    KIOSK = "kiosk"  # on site: a kiosk, or staff issuing for a citizen
    PHONE = "phone"  # a remote ticket taken without a device or staff account
    APPOINTMENT = "appointment"
    TRANSFER = "transfer"  # a new visit made by transferring an earlier one


# Outcomes a visit can end with (domain/tickets.py `Outcome`).
SERVED = "served"
NOT_SERVED = "not_served"
REFERRED = "referred"
NO_SHOW = "no_show"
CANCELLED = "cancelled"
TRANSFERRED = "transferred"
SERVICE_ENDS = frozenset({SERVED, NOT_SERVED, REFERRED, TRANSFERRED})  # was served at a counter


def channel_of(actor: str | None, priority: str, transferred_from: str | None) -> Channel:
    """The channel of an issued visit, from who issued it and how."""
    if transferred_from:
        return Channel.TRANSFER
    if priority == "appointment":
        return Channel.APPOINTMENT
    if actor is None or actor == "anonymous":
        return Channel.PHONE
    return Channel.KIOSK


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a duration."""
    return min(max(int(seconds // BUCKET_S), 0), BUCKETS)


def percentile(histogram: Mapping[int, int], share: float, maximum: float) -> float | None:
    """The nearest-rank percentile of the durations a histogram counts: the upper edge of the
    bucket holding that rank, never above the longest duration seen. None when empty."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(share * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return float(min((bucket + 1) * BUCKET_S, maximum))
    return float(maximum)  # pragma: no cover - the loop always reaches the rank


@dataclass(frozen=True, slots=True)
class Visit:
    """What a report needs of one visit (a row of the visit facts)."""

    issued_at: datetime | None  # None where the reader needs no times (a report's sums)
    outcome: str | None  # None while the visit is still open
    wait_s: float | None  # issue to (last) call; None if never called
    service_s: float | None  # start to end of service; None if not served
    recalls: int
    target_wait_s: float
    wait_estimate_s: float | None
    wait_p90_s: float | None = None  # the upper end of the range promised at issue, if any


@dataclass
class Sums:
    """Sums, counts and histograms of a set of visits: what a rollup row holds. Durations are
    whole milliseconds, so sums are exact and the same in whatever order visits are added or
    taken out again (a rollup row kept by deltas equals one made from its facts at once)."""

    visits: int = 0
    served: int = 0
    not_served: int = 0
    referred: int = 0
    no_show: int = 0
    cancelled: int = 0
    transferred: int = 0
    open: int = 0
    waited: int = 0  # visits called (they have a wait)
    wait_sum_ms: int = 0
    wait_max_ms: int = 0
    within_target: int = 0  # called within their service's target wait
    serviced: int = 0  # visits with a service time
    service_sum_ms: int = 0
    service_max_ms: int = 0
    recalls: int = 0
    estimated: int = 0  # called visits that had a wait estimate at issue
    estimate_error_sum_ms: int = 0  # estimate minus real wait: the bias
    estimate_abs_error_sum_ms: int = 0
    ranged: int = 0  # called visits promised a range ("9 in 10 within ...") at issue
    within_range: int = 0  # ... called within its upper end: the range's coverage
    wait_hist: dict[int, int] = field(default_factory=dict)
    service_hist: dict[int, int] = field(default_factory=dict)

    def add_visit(self, visit: Visit, sign: int = 1) -> None:
        """Count a visit in (sign 1) or take it out again (sign -1: a visit that changed).
        A maximum is never lowered: a visit's wait and service time only grow."""
        self.visits += sign
        self.recalls += sign * visit.recalls
        if visit.outcome is None:
            self.open += sign
        else:
            setattr(self, visit.outcome, getattr(self, visit.outcome) + sign)
        if visit.wait_s is not None:
            wait = _ms(visit.wait_s)
            self.waited += sign
            self.wait_sum_ms += sign * wait
            self.wait_max_ms = max(self.wait_max_ms, wait)
            self.within_target += sign * (visit.wait_s <= visit.target_wait_s)
            _count(self.wait_hist, bucket_of(visit.wait_s), sign)
            if visit.wait_estimate_s is not None:
                error = _ms(visit.wait_estimate_s) - wait
                self.estimated += sign
                self.estimate_error_sum_ms += sign * error
                self.estimate_abs_error_sum_ms += sign * abs(error)
            if visit.wait_p90_s is not None:
                self.ranged += sign
                self.within_range += sign * (visit.wait_s <= visit.wait_p90_s)
        if visit.service_s is not None:
            service = _ms(visit.service_s)
            self.serviced += sign
            self.service_sum_ms += sign * service
            self.service_max_ms = max(self.service_max_ms, service)
            _count(self.service_hist, bucket_of(visit.service_s), sign)

    def add(self, other: Sums) -> None:
        # By the field lists made once below (`dataclasses.fields` on every call was a third of
        # the projector's time in adding deltas up).
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in _MAXIMA:
            setattr(self, name, max(getattr(self, name), getattr(other, name)))
        for mine, theirs in (
            (self.wait_hist, other.wait_hist),
            (self.service_hist, other.service_hist),
        ):
            for bucket, count in theirs.items():
                _count(mine, bucket, count)


_HISTOGRAMS = ("wait_hist", "service_hist")
_MAXIMA = tuple(item.name for item in fields(Sums) if item.name.endswith("_max_ms"))
_SUMMED = tuple(item.name for item in fields(Sums) if item.name not in (*_HISTOGRAMS, *_MAXIMA))


def sums_of(visits: Iterable[Visit]) -> Sums:
    sums = Sums()
    for visit in visits:
        sums.add_visit(visit)
    return sums


def merged(parts: Iterable[Sums]) -> Sums:
    total = Sums()
    for part in parts:
        total.add(part)
    return total


def figures(sums: Sums) -> dict[str, Any]:
    """The KPIs of a set of visits. Rates are shares (0..1) of the visits that ended; means
    and percentiles are seconds, rounded to a tenth; None where nothing was measured."""
    ended = sums.visits - sums.open
    return {
        "visits": sums.visits,
        "served": sums.served,
        "not_served": sums.not_served,
        "referred": sums.referred,
        "no_show": sums.no_show,
        "cancelled": sums.cancelled,
        "transferred": sums.transferred,
        "open": sums.open,
        "recalls": sums.recalls,
        "mean_wait_s": _mean(sums.wait_sum_ms, sums.waited),
        "median_wait_s": percentile(sums.wait_hist, 0.5, sums.wait_max_ms / 1000),
        "p90_wait_s": percentile(sums.wait_hist, 0.9, sums.wait_max_ms / 1000),
        "max_wait_s": round(sums.wait_max_ms / 1000, 1) if sums.waited else None,
        "service_level": _share(sums.within_target, sums.waited),
        "mean_service_s": _mean(sums.service_sum_ms, sums.serviced),
        "p90_service_s": percentile(sums.service_hist, 0.9, sums.service_max_ms / 1000),
        "no_show_rate": _share(sums.no_show, ended),
        "cancellation_rate": _share(sums.cancelled, ended),
        "estimate_mae_s": _mean(sums.estimate_abs_error_sum_ms, sums.estimated),
        "estimate_bias_s": _mean(sums.estimate_error_sum_ms, sums.estimated),
        # the share called within the p90 promised at issue (a calibrated range: about 0.9)
        "range_coverage": _share(sums.within_range, sums.ranged),
        "ranged": sums.ranged,
    }


@dataclass
class CounterTime:
    """Seconds a counter spent in each state (serving a visit, open and idle, paused, closed)."""

    serving_s: float = 0.0
    idle_s: float = 0.0
    paused_s: float = 0.0
    closed_s: float = 0.0

    def add(self, other: CounterTime) -> None:
        self.serving_s += other.serving_s
        self.idle_s += other.idle_s
        self.paused_s += other.paused_s
        self.closed_s += other.closed_s

    def figures(self) -> dict[str, Any]:
        staffed = self.serving_s + self.idle_s + self.paused_s
        return {
            "serving_s": round(self.serving_s, 1),
            "idle_s": round(self.idle_s, 1),
            "paused_s": round(self.paused_s, 1),
            "closed_s": round(self.closed_s, 1),
            "utilisation": _share(self.serving_s, staffed),  # serving share of open time
        }


def previous_period(first: Any, last: Any) -> tuple[Any, Any]:
    """The period of the same length just before [first, last] (dates, inclusive)."""
    length = last - first
    step = type(length)(days=length.days + 1)
    return first - step, last - step


def _count(histogram: dict[int, int], bucket: int, count: int = 1) -> None:
    total = histogram.get(bucket, 0) + count
    if total:
        histogram[bucket] = total
    else:
        histogram.pop(bucket, None)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _mean(total_ms: int, count: int) -> float | None:
    """A mean in seconds, to a tenth, of durations summed in milliseconds."""
    return round(total_ms / count / 1000, 1) if count else None


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None
