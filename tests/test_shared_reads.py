"""SharedReads: the phones (or consoles) of a branch share one read of their views per event."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import pytest

from queue_server.realtime.shared_reads import SharedReadFailed, SharedReads
from queue_server.store.events import Event


def after(seq: int, epoch: str = "e1") -> Event:
    return Event("testhall", epoch, seq, "ticket.called", datetime(2026, 11, 24, tzinfo=UTC), {})


class Reads:
    """A stand-in for the store that records each read and answers when released."""

    def __init__(self) -> None:
        self.calls: list[frozenset[str]] = []
        self.release = asyncio.Event()

    async def __call__(self, branch: str, ticket_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        assert branch == "testhall"
        self.calls.append(frozenset(ticket_ids))
        n = len(self.calls)
        await self.release.wait()
        return {t: {"id": t, "read": n} for t in ticket_ids if t != "gone"}  # "gone": no such


async def test_phones_asking_for_one_event_share_one_read_of_every_followed_ticket() -> None:
    reads = Reads()
    watch = SharedReads(reads)
    with watch.follow("testhall", "a"), watch.follow("testhall", "b"):
        asks = [asyncio.create_task(watch.view(t, after(5))) for t in ("a", "b", "a")]
        await asyncio.sleep(0)
        reads.release.set()
        views = await asyncio.gather(*asks)
        assert reads.calls == [frozenset({"a", "b"})]
        assert views == [{"id": "a", "read": 1}, {"id": "b", "read": 1}, {"id": "a", "read": 1}]
        assert await watch.view("b", after(4)) == {"id": "b", "read": 1}  # older: still covered
        assert await watch.view("b", after(6)) == {"id": "b", "read": 2}  # newer: read again
        assert await watch.view("b", after(1, "e2")) == {"id": "b", "read": 3}  # new epoch
        assert await watch.view("gone", after(1, "e2")) is None  # not in that read: a new one
        assert reads.calls[-1] == frozenset({"a", "b", "gone"})


async def test_a_phone_that_leaves_during_the_read_does_not_cancel_it_for_the_others() -> None:
    reads = Reads()
    watch = SharedReads(reads)
    with watch.follow("testhall", "a"), watch.follow("testhall", "b"):
        leaving = asyncio.create_task(watch.view("a", after(1)))
        staying = asyncio.create_task(watch.view("b", after(1)))
        await asyncio.sleep(0)
        leaving.cancel()
        await asyncio.sleep(0)
        reads.release.set()
        assert await staying == {"id": "b", "read": 1}
        assert leaving.cancelled()
    assert not watch._followed and not watch._latest  # the branch is forgotten when nobody follows


async def test_a_failed_read_is_logged_once_and_every_waiting_client_is_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def flaky(branch: str, keys: frozenset[str]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls == 1:
            raise OSError("database went away")
        return {key: calls for key in keys}

    reads = SharedReads(flaky)
    with reads.follow("testhall", "a"), reads.follow("testhall", "b"):
        asks = [reads.view(key, after(1)) for key in ("a", "b", "a")]
        outcomes = await asyncio.gather(*asks, return_exceptions=True)
        assert all(isinstance(o, SharedReadFailed) for o in outcomes)
        failures = [r for r in caplog.records if "shared read" in r.getMessage()]
        assert len(failures) == 1 and failures[0].exc_info is not None
        assert await reads.view("b", after(2)) == 2  # the next event reads afresh
