"""The booking reminder: "your booking is tomorrow at 09:30", sent once per confirmed booking
`RIGI_NOTIFY_REMINDER_HOURS` (default 24) before its slot, to the contact it was booked with.

A background task looks every `REMINDER_EVERY_S` for bookings that came inside that window and
puts a `reminder` message in the outbox, keyed by the booking's id: the outbox's UNIQUE key makes
it once across processes and restarts, and the worker sends it like any other message (retries,
per-recipient limit). A booking made less than `REMINDER_MIN_AHEAD` before its slot is not
reminded: its citizen has just booked. A cancelled booking's queued reminder finds no contact
and is not sent. A moved booking is reminded of its new slot (the kind carries the number of
its moves: `reminder+1`), and a reminder of its old slot still queued is not sent (the worker
compares the kind with the booking's moves).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row

from queue_server.catalog.loader import Catalog
from queue_server.store import notify as queries
from queue_server.store.change import Clock
from queue_server.store.database import Database

log = logging.getLogger(__name__)

REMINDER_EVERY_S = 60.0
REMINDER_MIN_AHEAD = timedelta(hours=2)
REMINDER_BATCH = 500


class Reminders:
    def __init__(
        self,
        database: Database,
        catalog: Catalog,
        clock: Clock,
        *,
        ahead: timedelta,
        wake: asyncio.Event,
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.clock = clock
        self.ahead = ahead
        self.wake = wake  # the worker's: a reminder enqueued is sent at once

    async def run(self) -> None:
        while True:
            try:
                await self.enqueue_due()
            except Exception:
                log.exception("booking reminders failed; retried in %.0f s", REMINDER_EVERY_S)
            await asyncio.sleep(REMINDER_EVERY_S)

    async def enqueue_due(self) -> int:
        """Queue the reminders that are due now; returns how many were new."""
        now = self.clock()
        added = 0
        while True:
            batch = await self.database.transaction(functools.partial(self._enqueue, now=now))
            added += batch
            if batch < REMINDER_BATCH:
                break
        if added:
            log.info("queued %d booking reminders", added)
            self.wake.set()
        return added

    def _enqueue(self, conn: Connection, now: datetime) -> int:
        due = queries.bookings_to_remind(
            conn, now + REMINDER_MIN_AHEAD, now + self.ahead, REMINDER_BATCH
        )
        outgoing = [
            queries.OutgoingRow(
                booking.id,
                booking.branch_id,
                booking.id,
                booking.channel,
                queries.reminder_kind(booking.reschedules),
                booking.language,
                self._params(booking, now),
            )
            for booking in due
        ]
        queries.enqueue(conn, outgoing, now)
        return len(due)

    def _params(self, booking: Row[Any], now: datetime) -> dict[str, Any]:
        branch = self.catalog.branch(booking.branch_id)
        service = self.catalog.service(booking.service_id)
        language = booking.language
        zone = ZoneInfo(branch.timezone)
        slot = booking.slot_at.astimezone(zone)
        return {
            "tomorrow": slot.date() == now.astimezone(zone).date() + timedelta(days=1),
            "date": slot.strftime("%d.%m"),
            "time": slot.strftime("%H:%M"),
            "service": service.name.get(language),
            "branch": branch.name.get(language),
            "code": booking.short_code,
        }
