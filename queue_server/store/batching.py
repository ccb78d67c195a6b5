"""Group commit: requests that arrive while one batch is being written form the next batch.

A durable commit costs the same for one ticket as for twenty, and on both backends a branch's
writes queue up behind one lock (SQLite's single writer; PostgreSQL's row locks on the branch's
numbering and event stream). So instead of one transaction per request, each key (a branch)
has at most one batch in flight, and everything that arrives meanwhile is written together in
the next one. Under light load a batch holds one request and nothing waits for company; under
a burst the batches grow and the commits per ticket shrink.

Each caller still gets its own answer only after the commit that holds its request. If a batch
fails as a whole, its requests are written again one by one, so one bad request never fails
the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

Request = TypeVar("Request")
Result = TypeVar("Result")

MAX_BATCH = 64  # requests per transaction: bounds the lock hold time and the statement size


@dataclass(eq=False, slots=True)
class _Pending(Generic[Request, Result]):
    request: Request
    answer: asyncio.Future[Result] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


# Writes one batch in one transaction and returns one outcome per request, in order: a result,
# or the error for that request alone (the others still commit).
WriteBatch = Callable[[str, list[Request]], Awaitable[list[Result | Exception]]]


class GroupCommit(Generic[Request, Result]):
    """Batches concurrent requests per key (a branch) into one transaction each."""

    def __init__(self, write_batch: WriteBatch[Request, Result], max_batch: int = MAX_BATCH):
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._waiting: dict[str, list[_Pending[Request, Result]]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}

    async def submit(self, key: str, request: Request) -> Result:
        """Write `request` with the next batch of `key`; returns once that batch committed."""
        pending: _Pending[Request, Result] = _Pending(request)
        pending.answer.add_done_callback(_retrieve)
        self._waiting.setdefault(key, []).append(pending)
        if key not in self._writers:
            self._writers[key] = asyncio.get_running_loop().create_task(self._drain(key))
        # A caller that gives up (client gone) does not cancel the batch others wait on.
        return await asyncio.shield(pending.answer)

    async def _drain(self, key: str) -> None:
        try:
            while waiting := self._waiting.pop(key, None):
                batch, rest = waiting[: self._max_batch], waiting[self._max_batch :]
                if rest:
                    self._waiting[key] = rest + self._waiting.get(key, [])
                await self._write(key, batch)
        finally:
            # No await between finding the queue empty and leaving: a request submitted from
            # now on starts a new writer. Requests still here mean the writer was cancelled
            # (shutdown): nobody may wait forever.
            del self._writers[key]
            for pending in self._waiting.pop(key, []):
                pending.answer.cancel()

    async def _write(self, key: str, batch: list[_Pending[Request, Result]]) -> None:
        try:
            outcomes = await self._write_batch(key, [p.request for p in batch])
        except Exception as error:
            if len(batch) == 1:
                _answer(batch[0], error)
                return
            log.info("a batch of %d failed (%r): writing them one by one", len(batch), error)
            for pending in batch:
                await self._write(key, [pending])
            return
        except BaseException:  # cancelled at shutdown: nobody may wait forever
            for pending in batch:
                pending.answer.cancel()
            raise
        for pending, outcome in zip(batch, outcomes, strict=True):
            _answer(pending, outcome)


def _answer(pending: _Pending[Request, Result], outcome: Result | Exception) -> None:
    if pending.answer.done():
        return
    if isinstance(outcome, Exception):
        pending.answer.set_exception(outcome)
    else:
        pending.answer.set_result(outcome)


def _retrieve(answer: asyncio.Future[Any]) -> None:
    """Mark an error as seen even when its caller gave up, so asyncio does not log it."""
    if not answer.cancelled():
        answer.exception()
