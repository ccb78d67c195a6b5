"""`queue-server demo-history`: a realistic past for the reports, from the simulator.

Each past day of a branch is drawn and run by the simulator (the scenario's hourly arrival
profile, the real dispatcher and wait estimator) on the branch's own services and counters, and
written as the server would have written it: ticket rows and their events, in bulk, one
transaction per day. The projector then makes the facts from those events like any others.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Connection, func, select

from queue_server.catalog.loader import Catalog
from queue_server.domain.numbering import ticket_label
from queue_server.simulation.arrivals import draw_visits
from queue_server.simulation.engine import simulate_day
from queue_server.simulation.scenario import Counter, Scenario, Service, load_scenario
from queue_server.store.database import Database
from queue_server.store.schema import branch_streams, events, tickets
from queue_server.store.statements import upsert_insert
from rigi_protocol.wire import compact_json

HALL_SCENARIO = "tbilisi-hall"
CENTRE_SCENARIO = "community-centre"
UTILISATION = 0.8  # offered load of every simulated day
WALK_S = 20.0  # from being called to the start of service
ACTOR_KIOSK = "kiosk:demo"


class HistoryExists(Exception):
    """The branch already has tickets on one of the days asked for."""


def branch_scenario(catalog: Catalog, branch_id: str) -> Scenario:
    """The simulator's scenario for a branch: its services (the popular ones more often) and
    counters with their work profiles, over the hours and arrival profile of a hall or a
    centre, loaded to `UTILISATION`."""
    branch = catalog.branch(branch_id)
    template = load_scenario(HALL_SCENARIO if branch.kind == "hall" else CENTRE_SCENARIO)
    offered = catalog.branch_services(branch_id)
    weights = [service.popularity + 1 for service in offered]
    services = tuple(
        Service(
            id=service.id,
            name=service.id,
            agency=service.agency,
            daily_visits=100.0 * weight / sum(weights),
            mean_service_s=service.service_time_min * 60,
            target_wait_s=service.target_wait_min * 60,
        )
        for service, weight in zip(offered, weights, strict=True)
    )
    served = {service.id for service in offered}
    counters = tuple(
        Counter(
            id=counter.id,
            profile={
                s: w for s, w in catalog.profile(branch_id, counter.id).items() if s in served
            },
            duty=((template.open_s, template.close_s),),
        )
        for counter in branch.counters
    )
    scenario = dataclasses.replace(template, services=services, counters=counters)
    return scenario.with_utilisation(UTILISATION)


def simulated_day(
    catalog: Catalog, branch_id: str, scenario: Scenario, day: date, seed: int
) -> tuple[list[dict[str, Any]], list[tuple[datetime, str, dict[str, Any], str]]]:
    """One day's ticket rows and its events (when, kind, data, actor), in time order."""
    zone = ZoneInfo(catalog.branch(branch_id).timezone)
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    rng = np.random.default_rng([seed, day.toordinal(), sum(map(ord, branch_id))])
    visits = draw_visits(scenario, rng)
    result = simulate_day(scenario, visits, "rigi", estimate=True)
    close = midnight + timedelta(seconds=scenario.close_s)
    counters = {c.id: c.number for c in catalog.branch(branch_id).counters}
    free_at = {c.id: midnight for c in scenario.counters}
    numbers: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    happened: list[tuple[datetime, str, dict[str, Any], str]] = []
    order = np.argsort(np.nan_to_num(result.arrival_s + result.wait_s, nan=np.inf), kind="stable")
    for index in order.tolist():
        service = scenario.services[int(visits.service[index])]
        letter = catalog.service(service.id).letter
        numbers[letter] = numbers.get(letter, 0) + 1
        issued = midnight + timedelta(seconds=float(visits.arrival_s[index]))
        priority = "priority" if result.priority[index] else "normal"
        estimate = result.estimate_s[index]
        ticket: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "branch_id": branch_id,
            "service_id": service.id,
            "letter": letter,
            "number": numbers[letter],
            "day": day,
            "priority": priority,
            "language": "ka",
            "issued_at": issued,
            "queued_at": issued,
            "recalls": 0,
            "visit": 1,
            "wait_estimate_s": None if math.isnan(estimate) else round(float(estimate)),
        }
        view = {
            "id": ticket["id"],
            "branch": branch_id,
            "label": ticket_label(letter, numbers[letter]),
            "service_id": service.id,
            "priority": priority,
        }
        happened.append((issued, "ticket.issued", {"ticket": view}, ACTOR_KIOSK))
        wait = float(result.wait_s[index])
        if math.isnan(wait):  # never called: left before closing time
            ticket |= {"status": "cancelled", "outcome": "cancelled"}
            happened.append((close, "ticket.cancelled", {"ticket": view}, "citizen"))
            rows.append(ticket)
            continue
        called = issued + timedelta(seconds=wait)
        capable = [c.id for c in scenario.counters if c.profile.get(service.id, 0) > 0]
        chosen = min(capable, key=lambda c: (max(free_at[c], called), c))
        operator = f"operator:demo-{chosen}"
        call = {"ticket": view, "counter_id": chosen, "counter_number": counters[chosen]}
        happened.append((called, "ticket.called", call, operator))
        ticket |= {"counter_id": chosen, "called_at": called}
        if visits.no_show[index]:
            gone = called + timedelta(seconds=scenario.no_show_timeout_s)
            ticket |= {"status": "no_show", "outcome": "no_show", "finished_at": gone}
            happened.append((gone, "ticket.no_show", {"ticket": view}, operator))
        else:
            started = called + timedelta(seconds=WALK_S)
            gone = started + timedelta(seconds=float(visits.service_s[index]))
            ticket |= {"status": "done", "outcome": "served"}
            ticket |= {"started_at": started, "finished_at": gone}
            happened.append((started, "ticket.started", {"ticket": view}, operator))
            happened.append((gone, "ticket.finished", {"ticket": view}, operator))
        free_at[chosen] = gone
        rows.append(ticket)
    opened = midnight + timedelta(seconds=scenario.open_s)
    for counter in scenario.counters:
        state = {"branch": branch_id, "counter_id": counter.id, "current_ticket_id": None}
        actor = f"operator:demo-{counter.id}"
        happened.append((opened, "counter.opened", state | {"state": "open"}, actor))
        closed = max(close, free_at[counter.id])
        happened.append((closed, "counter.closed", state | {"state": "closed"}, actor))
    happened.sort(key=lambda item: (item[0], item[1] != "counter.opened"))
    return rows, happened


def write_day(
    conn: Connection,
    branch_id: str,
    rows: list[dict[str, Any]],
    happened: list[tuple[datetime, str, dict[str, Any], str]],
) -> int:
    """Insert a day's tickets and its events after the branch's newest event; returns how
    many events. Refused if the branch already has tickets that day."""
    day = rows[0]["day"] if rows else None
    if day is not None:
        taken = conn.execute(
            select(func.count())
            .select_from(tickets)
            .where(tickets.c.branch_id == branch_id, tickets.c.day == day)
        ).scalar_one()
        if taken:
            raise HistoryExists(f"{branch_id} already has tickets on {day}")
    insert = upsert_insert(conn.dialect.name)(branch_streams)
    head = conn.execute(
        insert.values(branch_id=branch_id, epoch=uuid.uuid4().hex, last_seq=len(happened))
        .on_conflict_do_update(
            index_elements=[branch_streams.c.branch_id],
            set_={"last_seq": branch_streams.c.last_seq + len(happened)},
        )
        .returning(branch_streams.c.epoch, branch_streams.c.last_seq)
    ).one()
    if rows:
        columns = [c.name for c in tickets.columns]
        conn.execute(tickets.insert(), [{c: row.get(c) for c in columns} for row in rows])
    first = head.last_seq - len(happened) + 1
    conn.execute(
        events.insert(),
        [
            {
                "branch_id": branch_id,
                "epoch": head.epoch,
                "seq": first + offset,
                "kind": kind,
                "at": at.astimezone(UTC),
                "data": compact_json(data),
                "actor": actor,
            }
            for offset, (at, kind, data, actor) in enumerate(happened)
        ],
    )
    return len(happened)


async def fill_history(
    database: Database,
    catalog: Catalog,
    branch_ids: Iterable[str],
    days: Iterable[date],
    seed: int = 1,
) -> dict[str, int]:
    """Write the simulated days of each branch; returns the visits written per branch."""
    written: dict[str, int] = {}
    days = list(days)
    for branch_id in branch_ids:
        scenario = branch_scenario(catalog, branch_id)
        for day in days:
            rows, happened = simulated_day(catalog, branch_id, scenario, day, seed)
            await database.transaction(
                functools.partial(write_day, branch_id=branch_id, rows=rows, happened=happened)
            )
            written[branch_id] = written.get(branch_id, 0) + len(rows)
    return written
