"""What the wait forecast reads of a branch besides its line and counters: the counters' stated
rota, the day's service times and no-show share, and the arrivals to expect (by the hour, from
the same weekday of the last weeks when the reports have them; else the branch's last hour)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, case, func, select

from queue_server.catalog.loader import Catalog
from queue_server.catalog.models import WEEKDAYS, Counter
from queue_server.domain import forecast
from queue_server.domain.calendar import clock_time, day_periods
from queue_server.domain.forecast_state import (
    HISTORY_PRIOR_VISITS,
    MIN_OBSERVATIONS,
    PRIOR_VISITS,
)
from queue_server.domain.tickets import Priority, TicketStatus
from queue_server.store.schema import tickets
from queue_server.store.schema_reports import visit_facts, visit_rollups

RATE_WINDOW = timedelta(hours=1)  # arrival rates: the issues of the last hour
MIN_RATE_WINDOW = timedelta(minutes=15)  # ... or since the day's first, but at least this
HISTORY_WEEKS = 8  # arrivals by the hour: the same weekday over this many weeks
MIN_HISTORY_DAYS = 2  # ... when the reports hold at least this many of them
DEFAULT_NO_SHOW_SHARE = 0.04  # assumed until the day has MIN_CALLS_FOR_SHARES calls
MIN_CALLS_FOR_SHARES = 50

HourlyVisits = dict[tuple[str, int], float]  # (service, local hour) → visits a day


def rota(counter: Counter, day: date, timezone: str) -> tuple[tuple[datetime, datetime], ...]:
    """The counter's staffed periods of `day` from its stated rota (none when not stated)."""
    periods = counter.hours.get(WEEKDAYS[day.weekday()], ())  # type: ignore[call-overload]
    local = [(clock_time(period.opens), clock_time(period.closes)) for period in periods]
    return day_periods(day, local, timezone)


def no_show_share(conn: Connection, branch_id: str, day: date) -> float:
    """The share of the day's called visitors who did not come (a default until enough calls)."""
    counts: dict[str, int] = dict(
        conn.execute(
            select(tickets.c.status, func.count())
            .where(
                tickets.c.branch_id == branch_id,
                tickets.c.day == day,
                tickets.c.status.in_((TicketStatus.DONE, TicketStatus.NO_SHOW)),
            )
            .group_by(tickets.c.status)
        ).all()
    )
    called = sum(counts.values())
    if called < MIN_CALLS_FOR_SHARES:
        return DEFAULT_NO_SHOW_SHARE
    return counts.get(TicketStatus.NO_SHOW, 0) / called


def past_service_times(
    conn: Connection, branch_id: str, day: date
) -> dict[str, forecast.ServiceTimeStats]:
    """Each service's service times at the branch over the `HISTORY_WEEKS` weeks before
    `day` (the reports' visit facts), where it had `MIN_OBSERVATIONS` visits or more."""
    seconds = visit_facts.c.service_s
    sums = conn.execute(
        select(
            visit_facts.c.service_id,
            func.count(seconds),
            func.sum(seconds),
            func.sum(seconds * seconds),
        )
        .where(
            visit_facts.c.branch_id == branch_id,
            visit_facts.c.local_date >= day - timedelta(weeks=HISTORY_WEEKS),
            visit_facts.c.local_date < day,
            seconds > 0,
        )
        .group_by(visit_facts.c.service_id)
    )
    found = {}
    for service_id, count, total, squares in sums:
        if count < MIN_OBSERVATIONS:
            continue
        mean = total / count
        variance = max(squares / count - mean * mean, 0.0) * count / (count - 1)
        found[service_id] = forecast.ServiceTimeStats(mean, math.sqrt(variance) / mean)
    return found


def service_times(
    conn: Connection,
    catalog: Catalog,
    branch_id: str,
    day: date,
    past: Mapping[str, forecast.ServiceTimeStats],
) -> dict[str, forecast.ServiceTimeStats]:
    """The day's service-time distributions: every visit finished today, with the weeks
    before's (`past`) counting as `HISTORY_PRIOR_VISITS` of them, else the configured time as
    `PRIOR_VISITS`."""
    learner = forecast.ServiceTimeLearner(
        {**catalog.service_seconds, **{sid: stats.mean_s for sid, stats in past.items()}},
        prior_visits=PRIOR_VISITS,
        configured_cv={sid: stats.cv for sid, stats in past.items()},
        prior_weight=dict.fromkeys(past, HISTORY_PRIOR_VISITS),
    )
    finished = conn.execute(
        select(tickets.c.service_id, tickets.c.started_at, tickets.c.finished_at).where(
            tickets.c.branch_id == branch_id,
            tickets.c.day == day,
            tickets.c.status == TicketStatus.DONE,
            tickets.c.started_at.is_not(None),
        )
    )
    for row in finished:
        learner.observe(row.service_id, (row.finished_at - row.started_at).total_seconds())
    return learner.all_stats()


def hourly_history(conn: Connection, branch_id: str, day: date) -> HourlyVisits:
    """Visits a day per service and local hour on `day`'s weekday over the last
    `HISTORY_WEEKS` weeks (from the reports' rollups); empty with fewer than
    `MIN_HISTORY_DAYS` such days."""
    where = (
        visit_rollups.c.branch_id == branch_id,
        visit_rollups.c.weekday == day.weekday(),
        visit_rollups.c.local_date >= day - timedelta(weeks=HISTORY_WEEKS),
        visit_rollups.c.local_date < day,
    )
    days = conn.execute(
        select(func.count(func.distinct(visit_rollups.c.local_date))).where(*where)
    ).scalar_one()
    if days < MIN_HISTORY_DAYS:
        return {}
    sums = conn.execute(
        select(
            visit_rollups.c.service_id, visit_rollups.c.local_hour, func.sum(visit_rollups.c.visits)
        )
        .where(*where)
        .group_by(visit_rollups.c.service_id, visit_rollups.c.local_hour)
    )
    return {(service_id, hour): visits / days for service_id, hour, visits in sums}


def arrivals(
    conn: Connection,
    catalog: Catalog,
    branch_id: str,
    now: datetime,
    history: HourlyVisits,
) -> list[forecast.ArrivalRate]:
    """The tickets to expect from now, each service's with the day's share of priority
    tickets: by the hour from `history` when there is one, else the branch's tickets over
    the last hour (or since its first today) for another hour, spread over its services by
    the day's mix so far (a service with a handful of tickets an hour is noise on its own)."""
    branch = catalog.branch(branch_id)
    zone = ZoneInfo(branch.timezone)
    day = now.astimezone(zone).date()
    since = now - RATE_WINDOW
    recent = case((tickets.c.issued_at >= since, 1), else_=0)
    counts = conn.execute(
        select(
            tickets.c.service_id,
            tickets.c.priority,
            func.count(),
            func.sum(recent),
            func.min(tickets.c.issued_at),
        )
        .where(tickets.c.branch_id == branch_id, tickets.c.day == day)
        .group_by(tickets.c.service_id, tickets.c.priority)
    ).all()
    offered = {service.id: service for service in catalog.branch_services(branch_id)}
    mix = dict.fromkeys(offered, 1.0)  # one ticket each: a service not seen yet may come
    urgent = issued = in_window = 0
    first = now
    for service_id, priority, count, last_hour, first_issued in counts:
        mix[service_id] = mix.get(service_id, 1.0) + count
        issued += count
        in_window += int(last_hour or 0)
        urgent += count if priority == Priority.PRIORITY else 0
        first = min(first, first_issued)
    share = urgent / issued if issued else 0.0
    if history:
        return [
            forecast.ArrivalRate(
                service_id=service_id,
                start=max(now, start),
                end=start + timedelta(hours=1),
                per_hour=visits,
                target_wait_s=offered[service_id].target_wait_min * 60,
                priority_share=share,
            )
            for (service_id, hour), visits in sorted(history.items())
            if service_id in offered
            and visits > 0
            and (start := datetime.combine(day, time(hour), zone)) + timedelta(hours=1) > now
        ]
    window_s = min(RATE_WINDOW.total_seconds(), (now - first).total_seconds())
    per_hour = in_window * 3600.0 / max(window_s, MIN_RATE_WINDOW.total_seconds())
    total_mix = sum(mix.values())
    return [
        forecast.ArrivalRate(
            service_id=service_id,
            start=now,
            end=now + RATE_WINDOW,
            per_hour=per_hour * weight / total_mix,
            target_wait_s=catalog.service(service_id).target_wait_min * 60,
            priority_share=share,
        )
        for service_id, weight in mix.items()
        if per_hour > 0.0
    ]
