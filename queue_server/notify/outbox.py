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
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from queue_server.catalog.loader import Catalog
from queue_server.domain.tickets import Priority
from queue_server.store import notify as queries
from queue_server.store.change import Clock
from queue_server.store.database import Database
from queue_server.store.events import Event, current_head, events_after

log = logging.getLogger(__name__)

BATCH_EVENTS = 500
NEAR_CHUNK = 16  # tickets per service line looked at in one round of the "near" check
ENDED_KINDS = ("ticket.finished", "ticket.no_show", "ticket.cancelled")
# After these the people ahead of a waiting ticket may have dropped.
NEAR_TRIGGERS = ("ticket.called", "ticket.cancelled", "ticket.no_show", "ticket.delayed")


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
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.tickets = tickets
        self.clock = clock
        self.near = near
        self.retention = retention
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

    def nudge(self, branch_id: str) -> None:
        """A ticket of the branch just subscribed: it may already be near its turn."""
        self._near_due.add(branch_id)
        self._dirty.add(branch_id)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
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
            added = await self.database.transaction(
                functools.partial(self._enqueue, branch_id=branch_id, batch=batch)
            )
            if any(e.kind in NEAR_TRIGGERS for e in batch):
                added += await self._check_near(branch_id)
            if added:
                self.enqueued.set()
            if len(batch) < BATCH_EVENTS:
                return

    def _enqueue(self, conn: Connection, branch_id: str, batch: Sequence[Event]) -> int:
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

    async def _check_near(self, branch_id: str) -> int:
        """Tell subscribed waiting tickets that came near (`NearRule`). Cheap when nobody in the
        branch waits subscribed: one small query. With many subscribed, only the front of each
        service's line is looked at: normal tickets of one service leave in the order they
        queued, so once one is not near, none behind it is (tickets that may jump the line —
        priority, appointments, transfers to one counter — are always looked at)."""
        candidates = await self.database.reading(lambda c: queries.near_candidates(c, branch_id))
        if not candidates:
            return 0
        subs: dict[str, list[Any]] = {}
        for sub in candidates:
            subs.setdefault(sub.ticket_id, []).append(sub)
        lines: dict[str, list[str]] = {}
        jumpers: list[str] = []
        seen: set[str] = set()
        for sub in sorted(candidates, key=lambda c: c.queued_at):
            if sub.ticket_id in seen:
                continue
            seen.add(sub.ticket_id)
            if sub.priority != Priority.NORMAL or sub.target_counter_id is not None:
                jumpers.append(sub.ticket_id)
            else:
                lines.setdefault(sub.service_id, []).append(sub.ticket_id)
        outgoing: list[queries.OutgoingRow] = []
        wanted = jumpers + [t for line in lines.values() for t in line[:NEAR_CHUNK]]
        start = 0
        while wanted:
            views = await self.tickets(wanted)
            near = [t for t in wanted if t in views and self.near.reached(branch_id, views[t])]
            for ticket_id in near:
                view = views[ticket_id]
                params = {"label": view["label"], "ahead": view.get("people_ahead")}
                outgoing.extend(
                    queries.OutgoingRow(ticket_id, branch_id, sub.id, sub.channel, "near",
                                        sub.language, params)
                    for sub in subs[ticket_id]
                )  # fmt: skip
            start += NEAR_CHUNK
            told = set(near)
            wanted = [
                ticket_id
                for line in lines.values()
                if len(line) > start and all(t in told for t in line[start - NEAR_CHUNK : start])
                for ticket_id in line[start : start + NEAR_CHUNK]
            ]
        if not outgoing:
            return 0
        now = self.clock()
        return await self.database.transaction(lambda c: queries.enqueue(c, outgoing, now))
