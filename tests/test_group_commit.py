"""Group commit: requests that arrive during a write go together in the next one."""

from __future__ import annotations

import asyncio

import pytest

from queue_server.store.batching import GroupCommit


class Ledger:
    """A stand-in transaction log: each batch is written after the gate opens."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def write(self, key: str, batch: list[str]) -> list[str | Exception]:
        await self.gate.wait()
        if "poison" in batch and len(batch) > 1:
            raise RuntimeError("the whole transaction failed")
        self.batches.append(list(batch))
        return [
            ValueError(f"{request} is refused") if request.startswith("bad") else request.upper()
            for request in batch
        ]


async def test_requests_that_arrive_during_a_write_share_the_next_one() -> None:
    ledger = Ledger()
    commit: GroupCommit[str, str] = GroupCommit(ledger.write)
    ledger.gate.clear()
    first = asyncio.create_task(commit.submit("hall", "one"))
    await asyncio.sleep(0)  # the first batch is now being written, alone
    rest = [asyncio.create_task(commit.submit("hall", f"r{n}")) for n in range(10)]
    ledger.gate.set()
    assert await first == "ONE"
    assert await asyncio.gather(*rest) == [f"R{n}" for n in range(10)]
    assert ledger.batches == [["one"], [f"r{n}" for n in range(10)]]


async def test_one_refused_request_does_not_fail_its_batch() -> None:
    ledger = Ledger()
    commit: GroupCommit[str, str] = GroupCommit(ledger.write)
    outcomes = await asyncio.gather(
        *(commit.submit("hall", r) for r in ("a", "bad-b", "c")), return_exceptions=True
    )
    assert outcomes[0] == "A" and outcomes[2] == "C"
    assert isinstance(outcomes[1], ValueError)


async def test_a_failed_transaction_is_written_again_request_by_request() -> None:
    ledger = Ledger()
    commit: GroupCommit[str, str] = GroupCommit(ledger.write)
    outcomes = await asyncio.gather(
        *(commit.submit("hall", r) for r in ("a", "poison", "c")), return_exceptions=True
    )
    assert outcomes == ["A", "POISON", "C"]
    assert ledger.batches == [["a"], ["poison"], ["c"]]


async def test_batches_are_bounded_and_branches_do_not_wait_for_each_other() -> None:
    ledger = Ledger()
    commit: GroupCommit[str, str] = GroupCommit(ledger.write, max_batch=4)
    ledger.gate.clear()
    hall = [asyncio.create_task(commit.submit("hall", f"h{n}")) for n in range(10)]
    centre = asyncio.create_task(commit.submit("centre", "x"))
    await asyncio.sleep(0)
    ledger.gate.set()
    await asyncio.gather(*hall, centre)
    assert sorted(len(batch) for batch in ledger.batches) == [1, 2, 4, 4]
    assert [r for batch in ledger.batches if batch != ["x"] for r in batch] == [
        f"h{n}" for n in range(10)
    ]


async def test_a_caller_that_gives_up_does_not_cancel_the_others() -> None:
    ledger = Ledger()
    commit: GroupCommit[str, str] = GroupCommit(ledger.write)
    ledger.gate.clear()
    impatient = asyncio.create_task(commit.submit("hall", "gone"))
    patient = asyncio.create_task(commit.submit("hall", "stays"))
    await asyncio.sleep(0)
    impatient.cancel()
    ledger.gate.set()
    assert await patient == "STAYS"
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert ledger.batches == [["gone", "stays"]]  # it was still written: the ticket exists
