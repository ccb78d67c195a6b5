"""The notifications part of the app: its lifespan, and the operations its routes call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from queue_server.access.ratelimit import Limit
from queue_server.access.sessions import development_secret
from queue_server.domain.tickets import TicketStatus
from queue_server.errors import Conflict, RateLimited
from queue_server.notify.channels.base import Channel, create_channel
from queue_server.notify.contacts import EMAIL, PUSH, SMS, Contact, ContactVault
from queue_server.notify.outbox import NearRule, Outbox
from queue_server.notify.reminders import Reminders
from queue_server.notify.worker import Worker
from queue_server.store import notify as queries
from queue_server.store.events import current_head

if TYPE_CHECKING:
    from queue_server.app import Rigi


log = logging.getLogger(__name__)

SUBSCRIBE_WINDOW = timedelta(hours=1)
OPEN_STATUSES = (TicketStatus.WAITING.value, TicketStatus.CALLED.value, TicketStatus.SERVING.value)


@dataclass
class Notifications:
    """What the routes use: the vault, the outbox (to nudge) and the channels (tests read the
    memory ones)."""

    rigi: Rigi
    vault: ContactVault
    outbox: Outbox
    worker: Worker
    reminders: Reminders
    channels: dict[str, Channel]
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def subscribe(self, ticket_id: str, contact: Contact, language: str | None) -> str:
        """Keep `contact` to message the ticket's holder; returns the subscription's language."""
        settings = self.rigi.settings
        limit = Limit.parse(settings.notify_subscribe_rate)
        contact_hash = self.vault.hash(contact.channel, contact.value)
        try:
            await self.rigi.limiter.hit(f"notify-sub:{contact_hash}", limit)
        except RateLimited as limited:
            raise RateLimited(
                "This contact has subscribed too many tickets; try again later.",
                retry_after=limited.retry_after,
                code="subscribe_limited",
            ) from None
        now = self.rigi.store.clock()
        sealed = self.vault.seal(contact)

        def body(conn: Any) -> tuple[str, str]:
            ticket = queries.ticket_row(conn, ticket_id)
            if ticket.status not in OPEN_STATUSES:
                raise Conflict("This visit has ended.", code="ticket_ended")
            chosen = language or ticket.language
            queries.save_subscription(
                conn,
                {
                    "id": uuid.uuid4().hex,
                    "ticket_id": ticket_id,
                    "branch_id": ticket.branch_id,
                    "channel": contact.channel,
                    "contact_hash": contact_hash,
                    "contact_secret": sealed,
                    "language": chosen,
                    "created_at": now,
                },
            )
            if queries.read_cursor(conn, ticket.branch_id) is None:
                head = current_head(conn, ticket.branch_id)
                queries.advance_cursor(conn, ticket.branch_id, head.seq if head else 0)
            return ticket.branch_id, chosen

        branch_id, chosen = await self.rigi.database.transaction(body)
        self.outbox.nudge(branch_id)
        return chosen

    def start(self, coroutine: Any, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped", task.get_name(), exc_info=task.exception())


def _secret(settings: Any) -> str:
    if settings.secret_key is not None:
        return str(settings.secret_key.get_secret_value())
    return development_secret(settings.data_dir)


def _channels(settings: Any) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    if settings.notify_sms_url is not None:
        channels[SMS] = create_channel(settings.notify_sms_url.get_secret_value())
    if settings.notify_email_url is not None:
        channels[EMAIL] = create_channel(settings.notify_email_url.get_secret_value())
    if settings.notify_push_url is not None:
        channels[PUSH] = create_channel(settings.notify_push_url.get_secret_value())
    return channels


@contextlib.asynccontextmanager
async def notifications(rigi: Rigi) -> AsyncIterator[None]:
    """Lifespan part: the outbox listener, the worker, the channels; torn down in reverse."""
    settings = rigi.settings
    vault = ContactVault(_secret(settings))
    outbox = Outbox(
        rigi.database,
        rigi.catalog,
        rigi.store.tickets,
        rigi.store.clock,
        near=NearRule(
            settings.notify_near_ahead, settings.notify_near_minutes, settings.notify_near
        ),
        retention=timedelta(minutes=settings.notify_retention_minutes),
    )
    channels = _channels(settings)
    worker = Worker(
        rigi.database,
        channels,
        vault,
        rigi.limiter,
        rigi.store.clock,
        recipient_limit=Limit.parse(settings.notify_recipient_rate),
        max_attempts=settings.notify_max_attempts,
        lease=timedelta(seconds=settings.notify_lease_s),
        wake=outbox.enqueued,
    )
    reminders = Reminders(
        rigi.database,
        rigi.catalog,
        rigi.store.clock,
        ahead=timedelta(hours=settings.notify_reminder_hours),
        wake=outbox.enqueued,
    )
    service = Notifications(rigi, vault, outbox, worker, reminders, channels)
    rigi.notify = service
    rigi.database.listeners.append(outbox.on_events)
    rigi.store.forecasts.listeners.append(outbox.forecast_changed)
    service.start(outbox.run(), "notify-outbox")
    service.start(worker.run(), "notify-worker")
    if settings.notify_reminder_hours:
        service.start(reminders.run(), "notify-reminders")
    try:
        yield
    finally:
        rigi.store.forecasts.listeners.remove(outbox.forecast_changed)
        rigi.database.listeners.remove(outbox.on_events)
        for task in list(service.tasks):
            task.cancel("the server is stopping")
        await asyncio.gather(*service.tasks, return_exceptions=True)
        for channel in channels.values():
            await channel.close()
