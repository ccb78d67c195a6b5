"""The real display client against the real queue_server (uvicorn on a free port), with real
espeak-ng synthesis: what the lobby hears when operators call, recall, and while it was away.

The stand-in feed (feed_support.py) pins the client's own rules; this file checks that the client
and the server agree: the board the display ends with is the server's snapshot, and the calls it
reads out are the calls the operators made, in order, one at a time, with no backlog.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from display_client.announce import Announcer
from display_client.client import DisplayClient, running
from display_client.config import DisplaySettings
from display_client.players import RecordingPlayer
from queue_server.domain.public import board_key
from rigi_protocol.speech.audio import default_chime
from tests.display.announcing import QUIET_S, WAIT_S, announced, spoken
from tests.support import LiveServer

pytestmark = pytest.mark.speech

B = "/api/v1/branches/testhall"
# What a board call holds (docs/protocol.md, "Board snapshot"), on the display and the server.
CALL_KEYS = (
    "key", "label", "letter", "number", "service_id", "counter_id", "counter_number",
    "called_at", "recalls",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _espeak_ng() -> None:
    if shutil.which("espeak-ng") is None:
        message = "install espeak-ng (Debian: apt-get install espeak-ng)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: this is a story about the display, not about the database."""
    return f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}"


def make_display(server: LiveServer, announcer: Announcer) -> DisplayClient:
    settings = DisplaySettings(
        server_url=server.url, branch="testhall", token=server.device_token("display")
    )
    return DisplayClient(
        settings, announcer, reconnect_min=0.05, reconnect_max=0.2, catch_up_quiet=QUIET_S
    )


async def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def snapshot(staff: httpx.AsyncClient) -> dict[str, Any]:
    return await ok(await staff.get(f"{B}/snapshot"))


async def caught_up(display: DisplayClient, staff: httpx.AsyncClient) -> dict[str, Any]:
    """Wait until the display has applied everything the server has; the server's snapshot."""
    state = await snapshot(staff)
    async with asyncio.timeout(WAIT_S):
        await display.wait_for_seq(state["seq"])
    return state


def called(ticket: dict[str, Any]) -> tuple[str, int, int]:
    return ticket["letter"], ticket["number"], ticket["counter_number"]


def assert_board_is_the_servers(display: DisplayClient, state: dict[str, Any]) -> None:
    mine, theirs = display.board.view(), state["board"]
    assert display.board.seq == state["seq"]
    assert display.board.epoch == state["epoch"]
    assert mine["calls"] == theirs["calls"]  # same tickets, same order, same fields
    assert all(set(c) == set(CALL_KEYS) for c in mine["calls"])
    assert {s: n for s, n in mine["waiting"].items() if n} == theirs["waiting"]
    assert {c: (v.get("number"), v.get("state")) for c, v in mine["counters"].items()} == {
        c: (v["number"], v["state"]) for c, v in theirs["counters"].items()
    }


def assert_one_at_a_time(player: RecordingPlayer, announcements: int) -> None:
    """Each announcement is the chime then ka then en, and no two sounds overlap."""
    assert len(player.played) == 3 * announcements
    assert [p.path for p in player.played[::3]] == [default_chime()] * announcements
    assert player.max_concurrent == 1
    for earlier, later in zip(player.played, player.played[1:], strict=False):
        assert earlier.ended <= later.started


async def test_three_quick_calls_then_a_recall_against_the_real_server(
    live_server: LiveServer, tmp_path: Path
) -> None:
    player = RecordingPlayer()
    announcer = Announcer(player=player, work_dir=tmp_path / "audio")
    display = make_display(live_server, announcer)
    async with live_server.client("manager") as staff, running(display):
        await caught_up(display, staff)
        for counter in ("c01", "c02", "c03"):
            await ok(await staff.post(f"{B}/counters/{counter}/open"))
        for service in ("id_card", "stamp", "passport"):
            await ok(await staff.post(f"{B}/tickets", json={"service_id": service}))
        # Three counters call next one right after another: faster than one announcement.
        calls = [
            await ok(await staff.post(f"{B}/counters/{counter}/call-next"))
            for counter in ("c01", "c02", "c03")
        ]
        done = await announced(announcer, 3)
        assert [spoken(a) for a in done] == [called(t) for t in calls]
        assert_board_is_the_servers(display, await caught_up(display, staff))

        recalled = await ok(await staff.post(f"{B}/counters/{calls[0]['counter_id']}/recall"))
        done = await announced(announcer, 4)
        state = await caught_up(display, staff)

    assert [spoken(a) for a in done] == [called(t) for t in [*calls, recalled]]
    assert [a.call.recall for a in done] == [False, False, False, True]
    assert all(a.error is None for a in done)
    assert all(len(a.files) == 2 for a in done)  # real espeak-ng audio for ka and en
    assert done[0].texts[0][0] == "ka" and done[0].texts[1][0] == "en"
    assert_one_at_a_time(player, 4)
    assert_board_is_the_servers(display, state)
    assert state["board"]["calls"][0]["key"] == board_key(recalled["id"])
    assert display.board.calls[0]["recalls"] == 1


async def issue_and_open(staff: httpx.AsyncClient, tickets: int) -> None:
    for number in range(1, 11):
        await ok(await staff.post(f"{B}/counters/c{number:02d}/open"))
    for _ in range(tickets):
        await ok(await staff.post(f"{B}/tickets", json={"service_id": "stamp"}))


async def ten_calls(staff: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every counter calls next once; c01 first sends its earlier visitor away as a no-show."""
    await ok(await staff.post(f"{B}/counters/c01/no-show"))
    return [
        await ok(await staff.post(f"{B}/counters/c{number:02d}/call-next"))
        for number in range(1, 11)
    ]


async def test_reconnecting_after_ten_calls_reads_out_no_backlog(
    live_server: LiveServer, tmp_path: Path
) -> None:
    player = RecordingPlayer()
    announcer = Announcer(player=player, work_dir=tmp_path / "audio")
    display = make_display(live_server, announcer)
    async with live_server.client("manager") as staff:
        await issue_and_open(staff, 11)
        async with running(display):
            await caught_up(display, staff)
            first = await ok(await staff.post(f"{B}/counters/c01/call-next"))
            assert [spoken(a) for a in await announced(announcer, 1)] == [called(first)]
            seen = display.board.seq
            assert seen is not None  # the board has taken the server's snapshot
        # The display is stopped (its connection closed) while ten calls are made.
        missed = await ten_calls(staff)
        async with running(display):  # the same display comes back and resumes from its seq
            state = await caught_up(display, staff)
            done = await announced(announcer, 2)

    assert [spoken(a) for a in done] == [called(first), called(missed[-1])]
    assert_one_at_a_time(player, 2)
    assert_board_is_the_servers(display, state)
    assert state["seq"] > seen + 10
    assert display.connections == 2
    assert {c["key"] for c in display.board.calls} >= {board_key(t["id"]) for t in missed}


async def test_a_restarted_display_takes_the_snapshot_and_reads_out_nothing_old(
    live_server: LiveServer, tmp_path: Path
) -> None:
    async with live_server.client("manager") as staff:
        await issue_and_open(staff, 12)
        await ok(await staff.post(f"{B}/counters/c01/call-next"))
        await ten_calls(staff)
        # A display PC switched on now: the hall's calls so far are on its board, not spoken.
        player = RecordingPlayer()
        announcer = Announcer(player=player, work_dir=tmp_path / "audio")
        display = make_display(live_server, announcer)
        async with running(display):
            state = await caught_up(display, staff)
            assert_board_is_the_servers(display, state)
            await asyncio.sleep(QUIET_S * 3)
            assert announcer.done == []
            nxt = await ok(await staff.post(f"{B}/counters/c01/no-show"))
            nxt = await ok(await staff.post(f"{B}/counters/c01/call-next"))
            done = await announced(announcer, 1)
            state = await caught_up(display, staff)

    assert [spoken(a) for a in done] == [called(nxt)]
    assert_one_at_a_time(player, 1)
    assert_board_is_the_servers(display, state)
    assert len(state["board"]["calls"]) == 12


async def test_a_display_whose_token_is_refused_knows_it(live_server: LiveServer) -> None:
    """The server's refusal (4401) is recognised as such: logged as a token problem and retried
    slowly, not hammered like a network blip."""
    settings = DisplaySettings(server_url=live_server.url, branch="testhall", token="not-a-token")
    display = DisplayClient(settings, None, reconnect_min=0.05, reconnect_max=0.2)
    async with running(display):
        async with asyncio.timeout(WAIT_S):
            while display.refused is None:  # noqa: ASYNC110 - a bounded poll of a plain field
                await asyncio.sleep(0.02)
    assert display.refused == 4401
    assert display.board.seq is None  # nothing of the branch reached it
