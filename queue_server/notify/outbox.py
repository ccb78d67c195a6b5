"""From committed events to queued messages, in the background.

The listener on `Database.listeners` only marks the event's branch as dirty and returns: a
counter action never waits for notifications. A task then reads the branch's event log from
its cursor (`notify_cursors`), turns the events of subscribed tickets into outbox rows and moves
the cursor in the same transaction. So a crash between an action's commit and the enqueue
loses nothing (the next start reads from the cursor), and two processes reading the same
events enqueue each message once (the outbox's UNIQUE key).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from queue_server.catalog.loader import Catalog
from queue_server.domain import estimate
from queue_server.domain.numbering import ticket_label
from queue_server.store import notify as queries
from queue_server.store import rows
from queue_server.store.change import Clock
from queue_server.store.database import Database
from queue_server.store.events import Event, current_head, events_after

log = logging.getLogger(__name__)

BATCH_EVENTS = 500
# After a wake-up the outbox waits until the branch has been quiet for QUIET_S (no new event),
# and at most GATHER_S: the events of one moment (a call and the no-show or start that follows)
# are read in one batch, and the work they start (the "near" check, the sends) runs once the
# lobby screens have been handed the call and the counter has moved on, rather than while the
# screens read it. A "near" message a fraction of a second later changes nothing for its reader;
# the screens' frame is what must not wait (docs/benchmarks.md, issue 20).
QUIET_S = 0.1
GATHER_S = 1.0
NEAR_CHUNK = 16  # tickets per service line looked at in one round of the "near" check
ENDED_KINDS = ("ticket.finished", "ticket.no_show", "ticket.cancelled")
# After these the people ahead of a waiting ticket may have dropped. (Not after a no-show:
# only a called ticket can be one, and it had already left the line.)
NEAR_TRIGGERS = ("ticket.called", "ticket.cancelled", "ticket.delayed")
# After these (and the ones above) the estimated wait may have dropped, though nobody ahead
# left: a counter opened, a visit ended and freed its counter, a counter's work changed. Only
# a branch with a "near" by minutes looks again after them.
WAIT_TRIGGERS = ("ticket.started", "ticket.finished", "ticket.no_show", "ticket.transferred",
                 "counter.")  # fmt: skip


@dataclass(frozen=True)
class NearRule:
    """When a waiting ticket is "near": `ahead` people or fewer before it, or (when `minutes` is
    not 0) an estimated wait of `minutes` or less — the wait forecast's median when the forecast
    runs (`RIGI_FORECAST_RUNS`), else the plain estimate. `overrides` by "branch" or
    "branch/service" (`RIGI_NOTIFY_NEAR`)."""

    ahead: int
    minutes: int = 0
    overrides: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def of(self, branch_id: str, service_id: str) -> tuple[int, int]:
        rule = {"ahead": self.ahead, "minutes": self.minutes}
        rule |= self.overrides.get(branch_id, {})
        rule |= self.overrides.get(f"{branch_id}/{service_id}", {})
        return rule["ahead"], rule["minutes"]

    def by_minutes(self, branch_id: str) -> bool:
        """Whether a wait in minutes can make a ticket of the branch near (any of its
        services)."""
        return bool(self.of(branch_id, "")[1]) or any(
            rule.get("minutes") for rule in self._overrides_in(branch_id)
        )

    def most_ahead(self, branch_id: str) -> int:
        """The most people ahead at which a ticket of the branch (any service) is near."""
        rules = self._overrides_in(branch_id)
        return max(
            [self.of(branch_id, "")[0], *(rule["ahead"] for rule in rules if "ahead" in rule)]
        )

    def _overrides_in(self, branch_id: str) -> list[Mapping[str, int]]:
        prefix = f"{branch_id}/"
        return [rule for where, rule in self.overrides.items()
                if where == branch_id or where.startswith(prefix)]  # fmt: skip

    def reached(self, branch_id: str, view: Mapping[str, Any]) -> bool:
        ahead, minutes = self.of(branch_id, view["service_id"])
        people = view.get("people_ahead")
        wait = view.get("wait_minutes")
        if people is not None and people <= ahead:
            return True
        return (
            bool(minutes) and wait is not None and view.get("served_now", True) and wait <= minutes
        )


class Outbox:
    """Turns a branch's ticket events into messages for the tickets' subscriptions."""

    def __init__(
        self,
        database: Database,
        catalog: Catalog,
        tickets: Any,  # the QueueStore's `tickets` read: views with people ahead
        clock: Clock,
        *,
        near: NearRule,
        retention: timedelta,
        quiet_s: float = QUIET_S,
        gather_s: float = GATHER_S,
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.tickets = tickets
        self.clock = clock
        self.near = near
        self.retention = retention
        self.quiet_s = quiet_s
        self.gather_s = gather_s
        self.enqueued = asyncio.Event()  # set when messages were added: the worker wakes
        self._dirty: set[str] = set(catalog.branches)  # at start: catch up on every branch
        self._near_due: set[str] = set()
        self._wake = asyncio.Event()
        self._wake.set()

    async def on_events(self, events: Sequence[Event]) -> None:
        """The database listener: mark, wake, return (never blocks the writer)."""
        for event in events:
            if event.kind.startswith("ticket."):
                self._dirty.add(event.branch)
                self._wake.set()
            if event.kind.startswith(WAIT_TRIGGERS) and self.near.by_minutes(event.branch):
                self.nudge(event.branch)

    def nudge(self, branch_id: str) -> None:
        """A ticket of the branch just subscribed, or its waits shortened: it may be near."""
        self._near_due.add(branch_id)
        self._dirty.add(branch_id)
        self._wake.set()

    def forecast_changed(self, branch_id: str, ticket_ids: frozenset[str]) -> None:
        """`Forecasts.listeners`: a refresh moved waits of the branch, with or without an event
        (time passed): a "near" by minutes may be reached now."""
        if self.near.by_minutes(branch_id):
            self.nudge(branch_id)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await self._quiet()
            self._wake.clear()
            while self._dirty:
                branch_id = self._dirty.pop()
                try:
                    await self.process(branch_id)
                    if branch_id in self._near_due:
                        self._near_due.discard(branch_id)
                        if await self._check_near(branch_id):
                            self.enqueued.set()
                except Exception:
                    log.exception(
                        "notifications of branch %s failed; retried on its next event", branch_id
                    )

    async def _quiet(self) -> None:
        """Return once no event has woken the outbox for `quiet_s`, or `gather_s` after the
        first wake-up (a steady stream of events is still read at that pace)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.gather_s
        while (left := deadline - loop.time()) > 0:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), min(self.quiet_s, left))
            except TimeoutError:
                return

    async def process(self, branch_id: str) -> None:
        """Read the branch's new events and enqueue what they mean for subscribers."""
        while True:
            cursor = await self.database.reading(lambda c: queries.read_cursor(c, branch_id))
            if cursor is None:
                return  # nobody ever subscribed in this branch (subscribing sets the cursor)
            async with self.database.read() as conn:
                batch = await events_after(conn, branch_id, cursor, BATCH_EVENTS)
            if batch is None:  # pruned past the cursor: what is gone cannot be told any more
                head = await self.database.reading(lambda c: current_head(c, branch_id))
                last = head.seq if head else cursor
                await self.database.transaction(
                    functools.partial(queries.advance_cursor, branch_id=branch_id, seq=last)
                )
                return
            if not batch:
                return
            near = any(e.kind in NEAR_TRIGGERS for e in batch)
            by_minutes = self.near.by_minutes(branch_id)
            added = await self.database.transaction(
                functools.partial(self._enqueue, branch_id=branch_id, batch=batch,
                                  near=near and not by_minutes)
            )  # fmt: skip
            if near and by_minutes:
                added += await self._check_near(branch_id)
            if added:
                self.enqueued.set()
            if len(batch) < BATCH_EVENTS:
                return

    def _enqueue(
        self, conn: Connection, branch_id: str, batch: Sequence[Event], near: bool = False
    ) -> int:
        """What the batch's events mean for subscribers, queued, and the cursor moved past it,
        in one transaction; with `near`, the "near" check by people ahead too (`_near_rows`)."""
        now = self.clock()
        wanted = {
            e.data["ticket"]["id"]
            for e in batch
            if e.kind in ("ticket.called", "ticket.transferred", *ENDED_KINDS)
        }
        subs = queries.subscriptions_of(conn, wanted)
        by_ticket: dict[str, list[Any]] = {}
        for sub in subs:
            by_ticket.setdefault(sub.ticket_id, []).append(sub)
        transferred = [
            e.data["ticket"]["id"]
            for e in batch
            if e.kind == "ticket.transferred" and e.data["ticket"]["id"] in by_ticket
        ]
        successors = queries.successors(conn, transferred)
        outgoing: list[queries.OutgoingRow] = []
        ended: list[str] = []
        for event in batch:
            ticket = event.data.get("ticket") or {}
            for sub in by_ticket.get(str(ticket.get("id")), ()):
                params = self._params(event, ticket, sub.language, successors)
                if params is not None:
                    kind = event.kind.removeprefix("ticket.")
                    outgoing.append(
                        queries.OutgoingRow(
                            ticket["id"],
                            branch_id,
                            sub.id,
                            sub.channel,
                            kind,
                            sub.language,
                            params,
                        )
                    )
            if event.kind in ENDED_KINDS and ticket.get("id") in by_ticket:
                ended.append(ticket["id"])
        if near:
            outgoing += self._near_rows(conn, branch_id, now)
        added = queries.enqueue(conn, outgoing, now)
        for old_id, new in successors.items():
            queries.move_subscriptions(conn, old_id, new.id)
        queries.end_subscriptions(conn, ended, now + self.retention)
        queries.advance_cursor(conn, branch_id, batch[-1].seq)
        return added

    def _params(
        self, event: Event, ticket: dict[str, Any], language: str, successors: dict[str, Any]
    ) -> dict[str, Any] | None:
        params: dict[str, Any] = {"label": ticket["label"]}
        if event.kind == "ticket.called":
            return params | {"counter": event.data.get("counter_number")}
        if event.kind == "ticket.finished":
            return params
        if event.kind == "ticket.transferred":
            new = successors.get(ticket["id"])
            if new is None:
                return None
            service = self.catalog.service(new.service_id)
            return params | {"service": service.name.get(language)}
        return None

    def _near_rows(
        self, conn: Connection, branch_id: str, now: datetime
    ) -> list[queries.OutgoingRow]:
        """The messages for subscribed waiting tickets that came near by people ahead and were
        not told yet. Only the heads of the branch's lines are read (`rows.branch_heads`, a
        few rows per line, not the whole line): a ticket near by people has fewer than
        `most_ahead` + 1 ahead, so it and everyone ahead of it are among them. A plain
        synchronous body: it runs inside the transaction that reads the events, in the
        SQLite writer's thread, so a call's screens never wait on it."""
        heads = rows.branch_heads(conn, branch_id, now, self.catalog,
                                  self.near.most_ahead(branch_id) + 1)  # fmt: skip
        subs = queries.untold_near(conn, [ticket.id for ticket in heads])
        if not subs:
            return []
        line = estimate.WaitingLine(heads)
        branch = self.catalog.branch(branch_id)
        profiles = [self.catalog.profile(branch_id, counter.id) for counter in branch.counters]
        by_id = {ticket.id: ticket for ticket in heads}
        outgoing = []
        for sub in subs:
            ticket = by_id[sub.ticket_id]
            ahead = estimate.people_ahead(ticket, line, profiles, now)
            if ahead <= self.near.of(branch_id, ticket.service_id)[0]:
                params = {"label": ticket_label(sub.letter, sub.number), "ahead": ahead}
                outgoing.append(queries.OutgoingRow(ticket.id, branch_id, sub.id, sub.channel,
                                                    "near", sub.language, params))  # fmt: skip
        return outgoing

    async def _check_near(self, branch_id: str) -> int:
        """Tell subscribed waiting tickets that came near (`NearRule`): by people ahead from the
        heads of the lines (`_near_rows`), and in a branch with a rule in minutes from each
        ticket's wait (`_check_near_by_wait`)."""
        if self.near.by_minutes(branch_id):
            return await self._check_near_by_wait(branch_id)
        now = self.clock()
        outgoing = await self.database.reading(
            functools.partial(self._near_rows, branch_id=branch_id, now=now)
        )
        if not outgoing:
            return 0
        return await self.database.transaction(lambda c: queries.enqueue(c, outgoing, now))

    async def _check_near_by_wait(self, branch_id: str) -> int:
        """Tell subscribed waiting tickets that came near (`NearRule`). Only the front of each
        service's line is looked at, NEAR_CHUNK tickets at a time, cut by the database: normal
        tickets of one service leave in the order they queued, so once one is not near, none
        behind it is (tickets that may jump the line — priority, appointments, transfers to
        one counter — are always looked at). Cheap when nobody in the branch waits subscribed:
        one small query."""
        outgoing: list[queries.OutgoingRow] = []
        first = 0
        services: list[str] | None = None
        while True:
            candidates = await self.database.reading(
                functools.partial(queries.near_candidates, branch_id=branch_id, first=first,
                                  count=NEAR_CHUNK, services=services)
            )  # fmt: skip
            if not candidates:
                break
            subs: dict[str, list[Any]] = {}
            lines: dict[str, set[str]] = {}
            for sub in candidates:
                subs.setdefault(sub.ticket_id, []).append(sub)
                if sub.place:
                    lines.setdefault(sub.service_id, set()).add(sub.ticket_id)
            # People ahead need no forecast: only a rule in minutes asks for a fresh one.
            views = await self.tickets(list(subs), forecast=self.near.by_minutes(branch_id))
            near = {t for t in subs if t in views and self.near.reached(branch_id, views[t])}
            for ticket_id in near:
                params = {"label": views[ticket_id]["label"],
                          "ahead": views[ticket_id].get("people_ahead")}  # fmt: skip
                outgoing.extend(
                    queries.OutgoingRow(ticket_id, branch_id, sub.id, sub.channel, "near",
                                        sub.language, params)
                    for sub in subs[ticket_id]
                )  # fmt: skip
            # A line goes on to its next tickets only when all it showed this round were near.
            services = [service for service, shown in lines.items()
                        if len(shown) == NEAR_CHUNK and shown <= near]  # fmt: skip
            if not services:
                break
            first += NEAR_CHUNK
        if not outgoing:
            return 0
        now = self.clock()
        return await self.database.transaction(lambda c: queries.enqueue(c, outgoing, now))
