"""The worker: claims due messages from the outbox, sends them, records the outcome.

Claiming moves a message to `sending` with a lease in one transaction (PostgreSQL: `FOR UPDATE
SKIP LOCKED`, so processes claim side by side and never the same row). A process that dies
mid-send leaves its claim to expire; the message is then claimed again, so a crash can repeat
one message, never lose it. Failures are retried with exponential backoff up to
`max_attempts`; a permanent refusal fails at once. Each recipient is rate-limited (the shared
limiter, keyed by the contact's hash).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from queue_server.access.ratelimit import Limit, MemoryLimiter, RedisLimiter
from queue_server.errors import RateLimited
from queue_server.notify.channels.base import Channel, ChannelError, Outgoing
from queue_server.notify.contacts import ContactVault
from queue_server.notify.texts import render
from queue_server.store import notify as queries
from queue_server.store.change import Clock
from queue_server.store.database import Database

log = logging.getLogger(__name__)

CLAIM_BATCH = 20
POLL_S = 1.0  # other processes' messages are found this often without a local wake-up
BACKOFF_BASE_S = 5
BACKOFF_MAX_S = 3600
PRUNE_EVERY_S = 60
ERROR_MAX = 200


def _moved_since(row: Any, contact: Any) -> bool:
    """A booking reminder for a slot the booking has since moved from (its contact is the
    booking's row, which counts its moves)."""
    return row.kind.startswith(queries.REMINDER_KIND) and row.kind != queries.reminder_kind(
        contact.reschedules
    )


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s, … after the 1st, 2nd, 3rd failed attempt, at most an hour."""
    return timedelta(seconds=min(BACKOFF_BASE_S * 2 ** (attempts - 1), BACKOFF_MAX_S))


class Worker:
    def __init__(
        self,
        database: Database,
        channels: Mapping[str, Channel],
        vault: ContactVault,
        limiter: MemoryLimiter | RedisLimiter,
        clock: Clock,
        *,
        recipient_limit: Limit,
        max_attempts: int,
        lease: timedelta,
        wake: asyncio.Event,
    ) -> None:
        self.database = database
        self.channels = channels
        self.vault = vault
        self.limiter = limiter
        self.clock = clock
        self.recipient_limit = recipient_limit
        self.max_attempts = max_attempts
        self.lease = lease  # a claim older than this belonged to a process that died
        self.wake = wake
        self.sent = 0  # messages this process sent (for the benchmark)

    async def run(self) -> None:
        last_prune = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                busy = await self.send_due()
                if loop.time() - last_prune > PRUNE_EVERY_S:
                    last_prune = loop.time()
                    now = self.clock()
                    pruned = await self.database.transaction(
                        functools.partial(queries.prune_subscriptions, now=now)
                    )
                    if pruned:
                        log.info("deleted %d contacts after their retention", pruned)
            except Exception:
                log.exception("the notification worker failed; retrying")
                busy = False
            if not busy:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), POLL_S)

    async def send_due(self) -> int:
        """Claim and send one batch; returns how many were claimed."""
        now = self.clock()
        claimed = await self.database.transaction(
            lambda c: queries.claim_due(c, now, CLAIM_BATCH, self.lease)
        )
        if not claimed:
            return 0
        ids = {row.subscription_id for row in claimed}
        contacts = await self.database.reading(lambda c: queries.contacts_of(c, ids))
        # One citizen's messages go one after another, in the order they were queued ("go to
        # counter 1" before "your visit is finished", when one batch holds both); different
        # citizens' go side by side.
        per_person: dict[Any, list[Any]] = {}
        for row in claimed:
            per_person.setdefault(row.subscription_id, []).append(row)
        sent = await asyncio.gather(
            *(self._send_in_order(rows, contacts) for rows in per_person.values())
        )
        outcome_of = {row.id: outcome for done in sent for row, outcome in done}
        outcomes = [outcome_of[row.id] for row in claimed]
        await self.database.transaction(lambda c: self._settle(c, claimed, outcomes))
        return len(claimed)

    async def _send_in_order(
        self, rows: list[Any], contacts: Mapping[str, Any]
    ) -> list[tuple[Any, dict[str, Any]]]:
        return [(row, await self._send(row, contacts)) for row in rows]

    async def _send(self, row: Any, contacts: Mapping[str, Any]) -> dict[str, Any]:
        now = self.clock()
        sub = contacts.get(row.subscription_id)
        channel = self.channels.get(row.channel)
        contact = self.vault.open(sub.channel, sub.contact_secret) if sub else None
        if sub is None or contact is None or channel is None:
            problem = "no channel configured" if channel is None else "the contact is gone"
            return {"state": queries.FAILED, "last_error": problem}
        if _moved_since(row, sub):
            return {"state": queries.FAILED, "last_error": queries.MOVED}
        try:
            await self.limiter.hit(f"notify-to:{sub.contact_hash}", self.recipient_limit)
        except RateLimited as limited:
            # Not an attempt: wait for the recipient's window and try again.
            return {
                "state": queries.QUEUED,
                "attempts": row.attempts,
                "next_attempt_at": now + timedelta(seconds=limited.retry_after),
            }
        subject, text = render(row.kind, row.language, json.loads(row.params))
        try:
            await channel.send(Outgoing(contact.value, subject, text, f"rigi-{row.id}"))
        except ChannelError as error:
            attempts = row.attempts + 1
            final = error.permanent or attempts >= self.max_attempts
            log.warning("message %d (%s by %s) attempt %d failed: %s", row.id, row.kind,
                        row.channel, attempts, error)  # fmt: skip
            return {
                "state": queries.FAILED if final else queries.QUEUED,
                "next_attempt_at": now + backoff(attempts),
                "last_error": str(error)[:ERROR_MAX],
            }
        self.sent += 1
        return {"state": queries.SENT, "sent_at": now, "last_error": None}

    @staticmethod
    def _settle(conn: Any, claimed: list[Any], outcomes: list[dict[str, Any]]) -> None:
        for row, values in zip(claimed, outcomes, strict=True):
            queries.settle(conn, row.id, values)
