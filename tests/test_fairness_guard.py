"""The fairness guard in the server (issue 16): a walk-in that has waited 1.5 × its service's
target is called before a priority ticket, however long that one has waited too; with
`RIGI_FAIRNESS_GUARD=0` the priority ticket keeps its head start.

The real server on SQLite and PostgreSQL, its clock moved by the test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support import LiveServer, test_settings

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
COUNTER = "c02"  # serves ID cards and extracts
TARGET = timedelta(minutes=10)  # the ID card's target wait in the test catalog
START = datetime(2025, 6, 2, 6, 0, tzinfo=UTC)  # a Monday, 10:00 in Tbilisi


class Clock:
    """The server's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=[1.5, 0.0], ids=["guard-on", "guard-off"])
def clocked(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[tuple[LiveServer, Clock, float]]:
    clock = Clock(START)
    settings = test_settings(database_url, tmp_path, fairness_guard=request.param)
    server = LiveServer(settings, clock=clock).start()
    yield server, clock, request.param
    server.stop()


async def _issue(kiosk: Any) -> str:
    response = await kiosk.post(f"{B}/tickets", json={"service_id": "id_card"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _call_next(operator: Any) -> dict[str, Any]:
    response = await operator.post(f"{B}/counters/{COUNTER}/call-next")
    assert response.status_code == 200, response.text
    called: dict[str, Any] = response.json()
    for step, body in (("start", None), ("finish", {"outcome": "served"})):
        answer = await operator.post(f"{B}/counters/{COUNTER}/{step}", json=body)
        assert answer.status_code == 200, answer.text
    return called


async def test_a_walk_in_waiting_one_and_a_half_targets_is_called_before_priority_tickets(
    clocked: tuple[LiveServer, Clock, float],
) -> None:
    server, clock, guard = clocked
    async with server.client("kiosk", BRANCH) as kiosk, server.client("operator", BRANCH) as op:
        walk_in = await _issue(kiosk)
        clock.now = START + TARGET / 2
        first = await _issue(kiosk)
        clock.now += timedelta(seconds=1)  # not the same instant: no tie broken by id
        second = await _issue(kiosk)
        for ticket in (first, second):
            granted = await op.post(f"{B}/tickets/{ticket}/priority")
            assert granted.status_code == 200, granted.text
        assert (await op.post(f"{B}/counters/{COUNTER}/open")).status_code == 200

        # a minute short of 1.5 targets: the walk-in (1.4 targets) is behind a priority ticket
        # that has used 0.9 of its target plus its head start of one, guard or not
        clock.now = START + TARGET * 1.5 - timedelta(minutes=1)
        assert (await _call_next(op))["id"] == first

        # at 1.5 targets the guard puts the walk-in first; without it the priority ticket
        # (1.0 used + 1 head start) still outranks it (1.5)
        clock.now = START + TARGET * 1.5
        listed = (await op.get(f"{B}/counters/{COUNTER}/waiting")).json()
        called = await _call_next(op)
        expected = [walk_in, second] if guard else [second, walk_in]
        assert [ticket["id"] for ticket in listed] == expected, "the console lists in call order"
        assert called["id"] == expected[0]
        assert ("fairness guard" in called["reason"]) is bool(guard), called["reason"]
        assert (await _call_next(op))["id"] == expected[1]
