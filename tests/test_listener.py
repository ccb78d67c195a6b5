"""The hub's per-connection listener and the eager start it hands a board's sends with.

These run on a real event loop with real futures and tasks: what a send that the socket takes
at once looks like (no wait), and what one to a client that stopped reading looks like (a wait
that may never end).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from queue_server.realtime import hub as hub_module
from queue_server.realtime.eager import start_eagerly
from queue_server.realtime.hub import BEAT, Beat, Item, Listener
from queue_server.store.events import Event


def event(seq: int) -> Event:
    return Event("testhall", "epoch", seq, "ticket.called", datetime(2026, 11, 24, tzinfo=UTC), {})


async def test_a_coroutine_that_never_waits_runs_to_its_end_inside_the_call() -> None:
    done: list[str] = []

    async def work() -> None:
        done.append("sent")

    assert start_eagerly(work()) is None
    assert done == ["sent"]  # before start_eagerly returned, with no task and no loop turn


async def test_a_coroutine_that_waits_goes_on_in_a_task_with_what_it_awaited() -> None:
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def work() -> None:
        steps.append("before")
        steps.append(await gate)
        await asyncio.sleep(0)  # a bare yield is relayed too
        steps.append("after")

    task = start_eagerly(work())
    assert task is not None and steps == ["before"]
    gate.set_result("resumed")
    await task
    assert steps == ["before", "resumed", "after"]


async def test_an_error_before_the_first_wait_reaches_the_caller_and_one_after_the_task() -> None:
    async def fails_at_once() -> None:
        raise ValueError("at once")

    with pytest.raises(ValueError, match="at once"):
        start_eagerly(fails_at_once())

    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def fails_later() -> None:
        await gate
        raise ValueError("later")

    task = start_eagerly(fails_later())
    assert task is not None
    gate.set_result(None)
    with pytest.raises(ValueError, match="later"):
        await task


async def stuck(gate: asyncio.Future[None], seen: list[str]) -> None:
    """Waits on `gate` and says in `seen` how its wait ended."""
    try:
        await gate
    except asyncio.CancelledError:
        seen.append("cancelled")
        raise
    finally:
        seen.append("cleaned up")


async def test_cancelling_the_task_cancels_the_wait_inside_the_coroutine() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[str] = []
    task = start_eagerly(stuck(gate, seen))
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled", "cleaned up"]
    assert gate.cancelled()


async def test_a_task_cancelled_before_its_first_step_still_cancels_the_coroutine() -> None:
    """A listener that overflows cancels its pump at once, maybe before the task ever ran."""
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[str] = []
    task = start_eagerly(stuck(gate, seen))
    assert task is not None
    task.cancel()  # no loop turn in between
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled", "cleaned up"]


class Client:
    """Stands in for a socket: takes items at once, or blocks while `reading` is clear."""

    def __init__(self) -> None:
        self.got: list[Item] = []
        self.reading = asyncio.Event()
        self.reading.set()

    async def handle(self, item: Item) -> bool:
        await self.reading.wait()  # no wait at all while the client reads
        self.got.append(item)
        return item is not None


async def test_an_eager_listener_hands_each_item_over_inside_the_offer() -> None:
    listener = Listener("testhall", eager=True)
    client = Client()
    listener.offer(event(1))  # waits: nobody consumes yet
    finished = listener.consume(client.handle)
    assert client.got == [event(1)]
    for seq in (2, 3):
        listener.offer(event(seq))
        assert client.got[-1] == event(seq)  # sent before offer returned
    listener.close()
    assert client.got[-1] is None and finished.done() and finished.result() is None


async def test_a_listener_that_must_wait_keeps_the_order_and_finishes_in_a_task() -> None:
    for eager in (True, False):
        listener = Listener("testhall", eager=eager)
        client = Client()
        client.reading.clear()
        finished = listener.consume(client.handle)
        for seq in range(1, 6):
            listener.offer(event(seq))
        listener.beat()  # not empty: only the flag
        assert listener.ping_due and BEAT not in listener.pending
        await asyncio.sleep(0.01)
        assert client.got == []
        client.reading.set()
        listener.close()
        await asyncio.wait_for(finished, 5)
        assert client.got == [event(seq) for seq in range(1, 6)] + [None]


async def test_a_listener_that_falls_too_far_behind_is_dropped_without_waiting_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_module, "SEND_QUEUE_LIMIT", 8)
    listener = Listener("testhall", eager=True)
    client = Client()
    client.reading.clear()  # stops reading: the first send hangs
    finished = listener.consume(client.handle)
    for seq in range(1, 11):
        listener.offer(event(seq))  # 1 in the hung send, 8 waiting, the 10th overflows
    assert listener.overflowed and finished.done() and finished.result() is None
    assert not listener.pending
    await asyncio.sleep(0)
    client.reading.set()
    await asyncio.sleep(0.01)
    assert client.got == []  # the hung send was cancelled, nothing more was handed over
    listener.offer(event(11))
    assert not listener.pending


async def test_a_handler_error_ends_the_consumption_with_that_error() -> None:
    listener = Listener("testhall", eager=True)

    async def broken(item: Any) -> bool:
        raise ConnectionResetError("gone")

    finished = listener.consume(broken)
    listener.offer(event(1))
    with pytest.raises(ConnectionResetError):
        await finished
    listener.offer(event(2))  # nobody consumes any more: it only waits
    assert list(listener.pending) == [event(2)]


async def test_a_heartbeat_reaches_an_idle_listener_as_a_beat() -> None:
    listener = Listener("testhall")
    got: list[Item] = []

    async def handle(item: Item) -> bool:
        got.append(item)
        return True

    listener.consume(handle)
    listener.beat()
    await asyncio.sleep(0.01)
    assert len(got) == 1 and isinstance(got[0], Beat) and listener.ping_due
