"""A slice's sums read from the visit facts, added up by the database: the reports of a counter
or an operator (the rollups do not keep them). Python counted them one visit at a time: a
counter's year on SQLite is ~43,000 rows fetched, each made a `kpis.Visit` and added (~1 s of
its 1.3); one statement now returns a row per service and branch and one per day.

The sums are `kpis.Sums.add_visit`'s exactly: durations in whole milliseconds rounded half to
even as Python's `round` (SQLite's own `round` takes halves away from zero, and a wait of whole
microseconds ending in 500 can be exactly a half: 0.0025 s × 1000 = 2.5), buckets as
`kpis.bucket_of`, a visit counted in the outcome it ended with and in `open` while it has none.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    union_all,
)

from queue_server.domain import kpis
from queue_server.domain.tickets import Outcome
from queue_server.store.schema_reports import visit_facts

_FACTS = visit_facts.c
TOTAL, SERVICE, BRANCH, DAY = range(4)  # `added_up`'s groupings, in this order
_HISTOGRAMS = {"wait_hist": _FACTS.wait_s, "service_hist": _FACTS.service_s}


def sums_query(filtered: Select[Any], by_day: bool, sqlite: bool) -> Select[Any]:
    """The sums of a slice's facts per service and branch, and (`by_day`) per day, by one
    statement: each visit is worked out once, into the sums of its service, branch and day,
    and those few thousand rows are summed again both ways. `filtered`: a select of the facts
    with the slice's conditions (its columns are replaced). Its rows, for `added_up`: SERVICE
    or DAY, the service, the branch, the day, the `_SUMMED` sums, the longest wait and service
    in seconds (rounded in Python: rounding keeps the order), and per service the histograms'
    buckets, one number a visit (a statement grouped by bucket sorted every visit again)."""
    keys = [_FACTS.service_id, _FACTS.branch_id, _FACTS.local_date if by_day else _NO_DAY]
    per_visit = [*_per_visit(sqlite), *_buckets(sqlite)]
    days = filtered.with_only_columns(*keys, *per_visit).group_by(*keys).cte("fact_days")
    summed = [func.sum(days.c[name]) for name in _SUMMED]
    longest = [func.max(days.c[name]) for name in _LONGEST]
    joined = [_joined(days.c[name], sqlite) for name in _HISTOGRAMS]
    service, branch = days.c.service_id, days.c.branch_id
    by = [
        select(literal(SERVICE), service, branch, _NO_DAY, *summed, *longest, *joined).group_by(
            service, branch
        )
    ]
    if by_day:  # a report's days carry sums, not histograms
        no_group = (null().cast(service.type), null().cast(branch.type))
        no_histograms = [null().cast(Text)] * len(_HISTOGRAMS)
        by.append(
            select(
                literal(DAY), *no_group, days.c.local_date, *summed, *longest, *no_histograms
            ).group_by(days.c.local_date)
        )
    return by[0] if len(by) == 1 else union_all(*by)  # type: ignore[return-value]


_NO_DAY = null().cast(_FACTS.local_date.type).label("local_date")


def _per_visit(sqlite: bool) -> list[ColumnElement[Any]]:
    """The sums of `_SUMMED` and `_LONGEST` by the statement's groups."""
    wait = _FACTS.wait_s
    wait_ms = _ms(wait, sqlite)
    error_ms = _ms(_FACTS.wait_estimate_s, sqlite) - wait_ms  # NULL unless both: not summed
    count = _count_sqlite if sqlite else _count
    sums: dict[str, ColumnElement[Any]] = {
        "visits": func.count(),
        "open": count(_FACTS.outcome.is_(None)),
        **{outcome.value: count(_FACTS.outcome == outcome.value) for outcome in Outcome},
        "waited": func.count(wait),
        "wait_sum_ms": func.sum(wait_ms),
        "within_target": count(wait <= _FACTS.target_wait_s),
        "serviced": func.count(_FACTS.service_s),
        "service_sum_ms": func.sum(_ms(_FACTS.service_s, sqlite)),
        "recalls": func.sum(_FACTS.recalls),
        "estimated": func.count(wait + _FACTS.wait_estimate_s),  # NULL unless both
        "estimate_error_sum_ms": func.sum(error_ms),
        "estimate_abs_error_sum_ms": func.sum(func.abs(error_ms)),
        "ranged": func.count(wait + _FACTS.wait_p90_s),
        "within_range": count(wait <= _FACTS.wait_p90_s),
        "wait_max_s": func.max(wait),
        "service_max_s": func.max(_FACTS.service_s),
    }
    return [sums[name].label(name) for name in (*_SUMMED, *_LONGEST)]


_SUMMED = [
    name for name in kpis.Sums.__dataclass_fields__ if not name.endswith(("_hist", "_max_ms"))
]
_LONGEST = ("wait_max_s", "service_max_s")


def _buckets(sqlite: bool) -> list[ColumnElement[Any]]:
    """Each histogram's buckets of a group's visits, joined by commas (none for a visit without
    that duration)."""
    return [
        _joined(case((seconds.is_not(None), _bucket(seconds, sqlite))), sqlite).label(name)
        for name, seconds in _HISTOGRAMS.items()
    ]


def _joined(values: ColumnElement[Any], sqlite: bool) -> ColumnElement[Any]:
    """Values of a group joined by commas (NULLs left out)."""
    if sqlite:
        return func.group_concat(values)
    return func.string_agg(cast(values, Text), literal_column("','"))


def added_up(rows: Any) -> list[dict[Any, kpis.Sums]]:
    """The rows of `sums_query` as the report's groupings: the total (under None), by service,
    by branch and by day (the days without histograms)."""
    grouped: list[dict[Any, kpis.Sums]] = [{}, {}, {}, {}]
    for grouping, service, branch, day, *numbers in rows:
        sums = _sums(numbers)
        if grouping == DAY:
            grouped[DAY][day] = sums
            continue
        for name, buckets in zip(_HISTOGRAMS, numbers[-len(_HISTOGRAMS) :], strict=True):
            if buckets:
                held = getattr(sums, name)
                for bucket, visits in Counter(buckets.split(",")).items():
                    held[int(bucket)] = held.get(int(bucket), 0) + visits
        for at, key in ((SERVICE, service), (BRANCH, branch), (TOTAL, None)):
            held_sums = grouped[at].get(key)
            if held_sums is None:  # a copy: no two groupings share a histogram
                held_sums = grouped[at][key] = kpis.Sums()
            held_sums.add(sums)
    return grouped


def _sums(numbers: list[Any]) -> kpis.Sums:
    sums = kpis.Sums()
    for name, number in zip(_SUMMED, numbers, strict=False):
        setattr(sums, name, int(number or 0))
    longest = numbers[len(_SUMMED) : len(_SUMMED) + len(_LONGEST)]
    for name, seconds in zip(("wait_max_ms", "service_max_ms"), longest, strict=True):
        setattr(sums, name, 0 if seconds is None else round(seconds * 1000))  # as `kpis._ms`
    return sums


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def _count_sqlite(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    """SQLite's comparisons are 0 or 1 (NULL: not summed), so they are summed as they are: a
    `CASE` per visit and outcome was a third of a counter's year."""
    return func.sum(condition, type_=Integer)  # a sum, not a truth: 2 would come back True


def _ms(seconds: Any, sqlite: bool) -> ColumnElement[Any]:
    """Seconds in whole milliseconds, halves to even (`kpis._ms`: Python's `round`). On SQLite
    by a truncation and its fraction (a duration is never negative: a visit is called after it
    is issued, served after it is called), adding up its comparisons: a `CASE` was ~3× slower."""
    value = seconds * 1000
    if not sqlite:  # PostgreSQL's round of a double is rint: halves to even
        return cast(func.round(value), BigInteger)
    whole = cast(value, Integer)  # toward zero: the floor of a duration
    rest = value - whole  # exact: a double's fraction
    return whole + (rest > 0.5) + and_(rest == 0.5, whole % 2 != 0)  # type: ignore[no-any-return]


def _bucket(seconds: Any, sqlite: bool) -> ColumnElement[Any]:
    """`kpis.bucket_of`: the duration's whole BUCKET_S, at least 0, at most BUCKETS."""
    width, last, zero = (literal_column(str(n), Integer) for n in (kpis.BUCKET_S, kpis.BUCKETS, 0))
    if sqlite:  # a cast truncates toward zero: the floor of any duration that is not negative
        return func.max(func.min(cast(seconds / width, Integer), last), zero)
    return func.greatest(func.least(cast(func.floor(seconds / width), Integer), last), zero)
