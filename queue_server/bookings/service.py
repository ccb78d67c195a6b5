"""The bookings part of the app: the calendar, booking with a one-time code, rescheduling,
cancelling and checking in at the kiosk. Every refusal is a RigiError with a stable code and
changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from queue_server.access.ratelimit import Limit
from queue_server.bookings.arrival import check_in
from queue_server.bookings.texts import code_message
from queue_server.bookings.tokens import BookingKeys, one_time_code, short_code
from queue_server.catalog.models import WEEKDAYS, Branch
from queue_server.domain.calendar import OpeningHours, Slot, clock_time, day_slots, slot_capacity
from queue_server.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    RigiError,
    ValidationFailed,
)
from queue_server.notify.channels.base import ChannelError, Outgoing
from queue_server.notify.contacts import Contact
from queue_server.store import bookings as queries
from queue_server.store.bookings import CANCELLED, CONFIRMED, PENDING, REMOTE, SLOT

if TYPE_CHECKING:
    from queue_server.app import Rigi

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 10.0
MISSED_AFTER = timedelta(days=1)  # an unclaimed booking is marked a no-show after a day


class Unavailable(RigiError):
    status = 503


@dataclass
class Bookings:
    rigi: Rigi
    keys: BookingKeys

    @property
    def settings(self) -> Any:
        return self.rigi.settings

    def _now(self) -> datetime:
        return self.rigi.store.clock()  # type: ignore[no-any-return]

    # ---- the calendar ---------------------------------------------------------------------

    def slots_of_day(self, branch_id: str, service_id: str, day: date) -> list[Slot]:
        catalog = self.rigi.catalog
        branch = catalog.branch(branch_id)
        service = catalog.service(service_id)
        if not catalog.serves(branch_id, service_id):
            raise NotFound(
                f"{service_id} is not offered at {branch_id}.", code="service_not_offered"
            )
        counters = sum(
            1 for c in branch.counters if catalog.profile(branch_id, c.id).get(service_id, 0) > 0
        )
        settings = self.settings
        slots: list[Slot] = []
        for hours in self.opening(branch, day):
            slots += day_slots(
                day,
                hours,
                branch.timezone,
                counters=counters,
                service_time_min=service.service_time_min,
                walkin_share=settings.booking_setting(branch_id, "walkin_share"),
            )
        return slots

    def opening(self, branch: Branch, day: date) -> list[OpeningHours]:
        """The branch's open periods on `day`, one notion of hours for the whole server: its
        own hours and holidays from the organisation, the settings' default when it has none."""
        if day in branch.holidays:
            return []
        if not branch.hours:
            settings = self.settings
            weekdays = frozenset(settings.booking_weekdays)
            return [OpeningHours(settings.booking_opens, settings.booking_closes, weekdays)]
        periods = branch.hours.get(WEEKDAYS[day.weekday()], ())  # type: ignore[call-overload]
        today = frozenset({day.weekday()})
        return [OpeningHours(clock_time(p.opens), clock_time(p.closes), today) for p in periods]

    async def free_slots(self, branch_id: str, service_id: str, day: date) -> list[dict[str, Any]]:
        """The slots of a day that can still be booked, with how many places each has left."""
        slots = self.slots_of_day(branch_id, service_id, day)
        now = self._now()
        if not slots:
            return []
        start, end = slots[0].at, slots[-1].at + timedelta(seconds=1)
        load = await self.rigi.database.reading(
            lambda c: queries.slot_load(c, branch_id, service_id, start, end, now)
        )
        return [
            {"slot": slot.at.isoformat(), "free": slot.capacity - load.get(slot.at, 0)}
            for slot in slots
            if slot.at > now and slot.capacity > load.get(slot.at, 0)
        ]

    def _check_slot(self, branch_id: str, service_id: str, slot_at: datetime) -> int:
        """The slot's capacity; refuses a time that is no slot, past, or too far ahead."""
        slot_at = slot_at.astimezone(UTC)
        now = self._now()
        zone = ZoneInfo(self.rigi.catalog.branch(branch_id).timezone)
        day = slot_at.astimezone(zone).date()
        capacity = slot_capacity(self.slots_of_day(branch_id, service_id, day), slot_at)
        last_day = now.astimezone(zone).date() + timedelta(days=self.settings.booking_days_ahead)
        if capacity == 0 or slot_at <= now or day > last_day:
            raise ValidationFailed(
                "This time is not a bookable slot; pick one from the list of free slots.",
                code="bad_slot",
            )
        return capacity

    def _check_open_now(self, branch_id: str, service_id: str) -> datetime:
        """Now, if the branch serves the service today and is open: a remote ticket joins
        today's queue only while its holder can still be served."""
        now = self._now()
        zone = ZoneInfo(self.rigi.catalog.branch(branch_id).timezone)
        local = now.astimezone(zone)
        settings = self.settings
        if not self.slots_of_day(branch_id, service_id, local.date()) or not (
            settings.booking_opens <= local.time() < settings.booking_closes
        ):
            raise Conflict(
                "The branch is closed now: join its queue when it is open, or book a time.",
                code="branch_closed",
            )
        return now

    # ---- booking ----------------------------------------------------------------------------

    async def book(
        self, branch_id: str, service_id: str, slot_at: datetime | None, contact: Contact,
        language: str, address: str,
    ) -> dict[str, Any]:  # fmt: skip
        """A pending booking (of a slot; of a place in today's queue when `slot_at` is None),
        and its one-time code sent to the contact."""
        settings = self.settings
        kind = SLOT if slot_at is not None else REMOTE
        if slot_at is None:
            capacity, slot_at = 0, self._check_open_now(branch_id, service_id)
        else:
            capacity = self._check_slot(branch_id, service_id, slot_at)
        slot_at = slot_at.astimezone(UTC)
        notify = self.rigi.notify
        channel = notify.channels.get(contact.channel) if notify else None
        if notify is None or channel is None:
            raise Unavailable(
                "Codes cannot be sent to this kind of contact here; try the other one.",
                code="channel_unavailable",
            )
        vault = notify.vault
        contact_hash = vault.hash(contact.channel, contact.value)
        await self._limit(f"book-addr:{address}", settings.booking_rate_address)
        await self._limit(f"book-contact:{contact_hash}", settings.booking_rate_contact)
        now = self._now()
        booking_id = uuid.uuid4().hex
        code = one_time_code()
        code_expires_at = now + timedelta(minutes=settings.booking_code_minutes)
        row = {
            "id": booking_id,
            "branch_id": branch_id,
            "service_id": service_id,
            "slot_at": slot_at,
            "status": PENDING,
            "short_code": short_code(),
            "channel": contact.channel,
            "contact_hash": contact_hash,
            "contact_secret": vault.seal(contact),
            "language": language,
            "code_hash": self.keys.code_hash(booking_id, code),
            "code_expires_at": code_expires_at,
            "attempts": 0,
            "reschedules": 0,
            "created_at": now,
            "kind": kind,
        }

        def body(conn: Any) -> None:
            self._sweep(conn, now)
            queries.lock(conn, f"person:{contact_hash}", f"slot:{branch_id}:{service_id}:{slot_at}")
            self._check_person(conn, contact_hash, service_id, now)
            if kind == SLOT:
                self._check_room(conn, branch_id, service_id, slot_at, capacity, now)
            queries.insert(conn, row)

        await self.rigi.database.transaction(body)
        subject, text = code_message(language, code, settings.booking_code_minutes)
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await channel.send(Outgoing(contact.value, subject, text, f"booking-{booking_id}"))
        except (ChannelError, TimeoutError) as exc:
            log.warning("booking code %s not sent: %s", booking_id, type(exc).__name__)
            await self.rigi.database.transaction(
                lambda c: queries.change(c, booking_id, PENDING, status=CANCELLED, expires_at=now)
            )
            raise Unavailable(
                "The code could not be sent; check the number or address and try again.",
                code="code_not_sent",
            ) from None
        return {
            "id": booking_id,
            "kind": kind,
            "status": PENDING,
            "branch_id": branch_id,
            "service_id": service_id,
            "slot": slot_at.isoformat(),
            "channel": contact.channel,
            "code_expires_at": code_expires_at.isoformat(),
        }

    async def _limit(self, key: str, rate: str) -> None:
        try:
            await self.rigi.limiter.hit(key, Limit.parse(rate))
        except RateLimited as limited:
            raise RateLimited(
                "Too many bookings from here; try again later.",
                retry_after=limited.retry_after,
                code="booking_rate_limited",
            ) from None

    def _missed_before(self, now: datetime) -> datetime:
        """Slots before this had their arrival window close (the longest of any branch)."""
        settings = self.settings
        late = max(
            [settings.booking_late_minutes]
            + [o.get("late_minutes", 0) for o in settings.booking_branches.values()]
        )
        return now - timedelta(minutes=late)

    def _sweep(self, conn: Any, now: datetime) -> None:
        """Yesterday's unclaimed bookings become no-shows; expired contacts are blanked."""
        settings = self.settings
        retention = now + timedelta(minutes=settings.notify_retention_minutes)
        remote_since = now - timedelta(minutes=settings.booking_remote_minutes)
        queries.sweep(conn, now, now - MISSED_AFTER, retention, remote_since)

    def _check_person(self, conn: Any, contact_hash: str, service_id: str, now: datetime) -> None:
        settings = self.settings
        record = queries.person_record(
            conn,
            contact_hash,
            service_id,
            now,
            now - timedelta(days=settings.booking_period_days),
            now - timedelta(days=settings.booking_noshow_block_days),
            self._missed_before(now),
        )
        if record.no_shows >= settings.booking_noshow_limit:
            raise Forbidden(
                f"Booking is paused for {settings.booking_noshow_block_days} days after "
                "missed appointments; you can still take a ticket in the hall.",
                code="booking_blocked",
            )
        if record.active_for_service > 0:
            raise Conflict(
                "You already have a booking for this service; cancel it or reschedule it.",
                code="booking_exists",
            )
        if record.in_period >= settings.booking_max_per_person:
            raise Conflict(
                f"At most {settings.booking_max_per_person} bookings per person in "
                f"{settings.booking_period_days} days.",
                code="booking_limit_reached",
            )

    def _check_room(
        self, conn: Any, branch_id: str, service_id: str, slot_at: datetime, capacity: int,
        now: datetime,
    ) -> None:  # fmt: skip
        end = slot_at + timedelta(seconds=1)
        load = queries.slot_load(conn, branch_id, service_id, slot_at, end, now)
        if load.get(slot_at, 0) >= capacity:
            raise Conflict("This slot has just been taken; pick another.", code="slot_full")

    async def confirm(self, booking_id: str, code: str) -> dict[str, Any]:
        """Confirm with the one-time code: the short code and the signed check-in token."""
        settings = self.settings
        now = self._now()

        def body(conn: Any) -> tuple[Any, RigiError | None]:
            row = queries.booking_row(conn, booking_id)
            if row.status != PENDING:
                return row, Conflict("This booking is not waiting for a code.", code="not_pending")
            if row.attempts >= settings.booking_code_attempts:
                return row, Forbidden(
                    "Too many wrong codes: this booking is locked; book again later.",
                    code="code_locked",
                )
            if row.code_expires_at <= now:
                return row, Conflict("The code has expired; book again.", code="code_expired")
            if not hmac.compare_digest(row.code_hash, self.keys.code_hash(booking_id, code)):
                queries.change(conn, booking_id, PENDING, attempts=row.attempts + 1)
                left = settings.booking_code_attempts - row.attempts - 1
                return row, Forbidden(
                    f"Wrong code; {left} attempts left.", code="wrong_code", attempts_left=left
                )
            queries.change(conn, booking_id, PENDING, status=CONFIRMED, confirmed_at=now)
            return queries.booking_row(conn, booking_id), None

        row, refusal = await self.rigi.database.transaction(body)
        if refusal is not None:  # the attempt is counted (committed), the answer is a refusal
            raise refusal
        return self._holder_view(row)

    def _holder_view(self, row: Any) -> dict[str, Any]:
        remote = row.kind == REMOTE
        until = row.slot_at + timedelta(minutes=self.settings.booking_remote_minutes)
        return {
            "id": row.id,
            "kind": row.kind,
            "status": row.status,
            "branch_id": row.branch_id,
            "service_id": row.service_id,
            "slot": row.slot_at.isoformat(),
            "short_code": row.short_code,
            "token": self.keys.sign(
                row.id, row.branch_id, row.slot_at, row.service_id, row.language
            ),
            "ticket_id": row.ticket_id,
            "activate_by": until.isoformat() if remote else None,
        }

    def _holder(self, conn: Any, booking_id: str, token: str) -> Any:
        claim = self.keys.verify(token)
        if claim is None or claim.booking_id != booking_id:
            raise Forbidden("This booking's token is missing or wrong.", code="bad_booking_token")
        return queries.booking_row(conn, booking_id)

    async def cancel(self, booking_id: str, token: str) -> dict[str, Any]:
        now = self._now()
        retention = now + timedelta(minutes=self.settings.notify_retention_minutes)

        def body(conn: Any) -> Any:
            row = self._holder(conn, booking_id, token)
            if not queries.change(
                conn, booking_id, CONFIRMED, status=CANCELLED, expires_at=retention
            ):
                raise Conflict("Only a confirmed booking can be cancelled.", code="not_confirmed")
            return queries.booking_row(conn, row.id)

        return self._holder_view(await self.rigi.database.transaction(body))

    async def reschedule(self, booking_id: str, token: str, slot_at: datetime) -> dict[str, Any]:
        """Move a confirmed booking to another free slot, a limited number of times (people
        who push themselves back again and again crowd out the walk-ins)."""
        settings = self.settings
        now = self._now()

        def body(conn: Any) -> Any:
            row = self._holder(conn, booking_id, token)
            if row.status != CONFIRMED:
                raise Conflict("Only a confirmed booking can be moved.", code="not_confirmed")
            if row.kind == REMOTE:
                raise Conflict(
                    "A place in today's queue cannot be moved; cancel it instead.",
                    code="not_movable",
                )
            if row.reschedules >= settings.booking_reschedules:
                raise Conflict(
                    f"A booking can be moved {settings.booking_reschedules} times; cancel it "
                    "and book again instead.",
                    code="reschedule_limit",
                )
            capacity = self._check_slot(row.branch_id, row.service_id, slot_at)
            new_slot = slot_at.astimezone(UTC)
            queries.lock(conn, f"slot:{row.branch_id}:{row.service_id}:{new_slot}")
            self._check_room(conn, row.branch_id, row.service_id, new_slot, capacity, now)
            queries.change(
                conn, booking_id, CONFIRMED, slot_at=new_slot, reschedules=row.reschedules + 1
            )
            return queries.booking_row(conn, booking_id)

        return self._holder_view(await self.rigi.database.transaction(body))

    async def check_in(self, branch_id: str, code: str, actor: str) -> dict[str, Any]:
        """Check a booking or a remote ticket in once, on arrival (bookings/arrival.py)."""
        return await check_in(self, branch_id, code, actor)


@contextlib.asynccontextmanager
async def bookings_part(rigi: Rigi) -> AsyncIterator[None]:
    """Lifespan part: the booking keys from the server's secret (after notifications)."""
    from queue_server.access.sessions import development_secret

    settings = rigi.settings
    secret = (
        settings.secret_key.get_secret_value()
        if settings.secret_key
        else development_secret(settings.data_dir)
    )
    if settings.booking_key is not None:  # shared by central and the branch nodes
        secret = settings.booking_key.get_secret_value()
    rigi.bookings = Bookings(rigi, BookingKeys(secret))
    yield
