"""A real display client against a stand-in board feed: what the lobby hears, and when not."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import pytest
from feed_support import BRANCH, TOKEN, FakeBoardFeed

from display_client.announce import Announcer, Call
from display_client.client import DisplayClient, running
from display_client.config import load_settings
from display_client.errors import PlaybackFailed
from display_client.players import AplayPlayer, RecordingPlayer
from rigi_protocol.speech.audio import default_chime
from rigi_protocol.speech.phrases import load_phrasebook, parse_phrasebook
from tests.display.announcing import QUIET_S, WAIT_S, announced, spoken

pytestmark = [
    pytest.mark.speech,
    pytest.mark.skipif(
        shutil.which("espeak-ng") is None,
        reason="install espeak-ng (Debian: apt-get install espeak-ng)",
    ),
]


def make_client(feed: FakeBoardFeed, announcer: Announcer) -> DisplayClient:
    settings = load_settings({"server_url": feed.url, "branch": BRANCH, "token": TOKEN}, environ={})
    return DisplayClient(
        settings, announcer, reconnect_min=0.05, reconnect_max=0.2, catch_up_quiet=QUIET_S
    )


async def test_three_quick_calls_are_announced_in_order_never_at_once() -> None:
    player = RecordingPlayer()
    announcer = Announcer(player=player)
    async with FakeBoardFeed() as feed:
        client = make_client(feed, announcer)
        async with running(client):
            await client.connected.wait()
            await client.wait_for_seq(0)
            await feed.call("A", 12, 5)
            await feed.call("B", 7, 2)
            await feed.call("A", 13, 3)
            done = await announced(announcer, 3)

    assert [spoken(a) for a in done] == [("A", 12, 5), ("B", 7, 2), ("A", 13, 3)]
    assert all(a.error is None for a in done)
    assert done[0].texts == [("ka", "ბილეთი ა 12, ფანჯარა 5"), ("en", "Ticket A-12, counter 5")]
    # Every announcement is a chime then one file per language, and nothing overlaps.
    assert len(player.played) == 3 * 3
    assert [p.path for p in player.played[::3]] == [default_chime()] * 3
    assert player.max_concurrent == 1
    for earlier, later in zip(player.played, player.played[1:], strict=False):
        assert earlier.ended <= later.started
    assert client.board.view()["calls"] == feed.board()["calls"]


async def test_operator_recall_announces_again() -> None:
    announcer = Announcer(player=RecordingPlayer())
    async with FakeBoardFeed() as feed:
        client = make_client(feed, announcer)
        async with running(client):
            await client.wait_for_seq(0)
            await feed.call("A", 12, 5)
            await feed.call("A", 12, 5, recall=True)
            done = await announced(announcer, 2)
        board = client.board.view()

    assert [(spoken(a), a.call.recall) for a in done] == [
        (("A", 12, 5), False),
        (("A", 12, 5), True),
    ]
    assert board["calls"] == feed.board()["calls"]
    assert board["calls"][0]["recalls"] == 1


async def test_reconnect_after_ten_missed_calls_reads_no_backlog() -> None:
    announcer = Announcer(player=RecordingPlayer())
    async with FakeBoardFeed() as feed:
        client = make_client(feed, announcer)
        async with running(client):
            await client.wait_for_seq(0)
            await feed.call("A", 1, 1)
            await announced(announcer, 1)
            feed.accepting = False
            await feed.drop_connections()
            for number in range(2, 12):
                await feed.call("A", number, number % 4 + 1)
            feed.accepting = True
            async with asyncio.timeout(WAIT_S):
                await client.wait_for_seq(feed.seq)
            done = await announced(announcer, 2)
        board = client.board.view()

    assert [spoken(a) for a in done] == [("A", 1, 1), ("A", 11, 11 % 4 + 1)]
    assert board["calls"] == feed.board()["calls"]
    assert len(board["calls"]) == 11
    resumed = feed.hellos[-1]
    assert resumed["epoch"] == feed.epoch and resumed["after_seq"] == 1


async def test_snapshot_replaces_the_board_and_announces_nothing_old() -> None:
    announcer = Announcer(player=RecordingPlayer())
    async with FakeBoardFeed(history_limit=3) as feed:
        for number in range(1, 6):
            await feed.call("B", number, 2)
        client = make_client(feed, announcer)
        async with running(client):
            await client.wait_for_seq(5)
            await client.disconnect()
            feed.accepting = False
            for number in range(6, 16):  # more than the history holds: a snapshot is due
                await feed.call("B", number, 3)
            feed.accepting = True
            async with asyncio.timeout(WAIT_S):
                await client.wait_for_seq(feed.seq)
            await feed.call("C", 1, 4)
            done = await announced(announcer, 1)
        board = client.board.view()

    assert [spoken(a) for a in done] == [("C", 1, 4)]
    assert board["calls"] == feed.board()["calls"]
    assert feed.hellos[0]["after_seq"] is None


async def test_a_gap_in_live_events_is_filled_by_resuming() -> None:
    announcer = Announcer(player=RecordingPlayer())
    async with FakeBoardFeed() as feed:
        client = make_client(feed, announcer)
        async with running(client):
            await client.wait_for_seq(0)
            feed.skip_live = {2}
            for number in (1, 2, 3):
                await feed.call("A", number, 1)
            async with asyncio.timeout(WAIT_S):
                await client.wait_for_seq(3)
        board = client.board.view()
    assert board["calls"] == feed.board()["calls"]
    assert len(feed.hellos) == 2


async def test_token_goes_in_the_hello_never_in_the_url() -> None:
    async with FakeBoardFeed() as feed:
        client = make_client(feed, Announcer(player=RecordingPlayer()))
        async with running(client):
            await client.wait_for_seq(0)
    assert feed.paths[0] == f"/ws/branches/{BRANCH}/board"
    assert TOKEN not in feed.paths[0]
    assert feed.hellos[0]["token"] == TOKEN


async def test_failed_speech_is_logged_and_the_board_still_updates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = parse_phrasebook(
        {"languages": {"ka": {"voice": "no-such-voice", "template": "ბილეთი {letter} {number}"}}}
    )
    player = RecordingPlayer()
    announcer = Announcer(player=player, phrasebook=broken)
    caplog.set_level(logging.ERROR, logger="display_client")
    async with FakeBoardFeed() as feed:
        client = make_client(feed, announcer)
        async with running(client):
            await client.wait_for_seq(0)
            seq = await feed.call("A", 12, 5)
            await client.wait_for_seq(seq)
            done = await announced(announcer, 1)
        board = client.board.view()

    assert board["calls"] == feed.board()["calls"]
    assert done[0].error and "no-such-voice" in done[0].error
    assert player.played == []
    assert any("speech failed" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(shutil.which("aplay") is None, reason="install alsa-utils for aplay")
def test_aplay_plays_to_the_null_device_and_reports_a_missing_one(tmp_path: Path) -> None:
    AplayPlayer("null").play(default_chime())
    with pytest.raises(PlaybackFailed):
        AplayPlayer("no_such_alsa_device").play(default_chime())


@pytest.mark.skipif(shutil.which("aplay") is None, reason="install alsa-utils for aplay")
def test_playback_failure_is_logged_and_the_next_call_still_comes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from display_client.announce import Call

    caplog.set_level(logging.WARNING, logger="display_client")
    announcer = Announcer(player=AplayPlayer("no_such_alsa_device"), languages=["ka"]).start()
    try:
        announcer.announce(Call("A", 1, 1))
        announcer.announce(Call("A", 2, 1))
        for _ in range(1000):
            if len(announcer.done) == 2:
                break
            asyncio.run(asyncio.sleep(0.01))
    finally:
        announcer.stop()
    assert [a.call.number for a in announcer.done] == [1, 2]
    assert all(a.error for a in announcer.done)
    assert any("not played" in r.getMessage() for r in caplog.records)


def test_phrasebook_has_all_five_languages_georgian_first() -> None:
    book = load_phrasebook()
    assert set(book.languages) == {"ka", "en", "ru", "az", "hy"}
    assert book.default_languages == ("ka", "en")


async def test_an_announcer_stopped_and_started_again_still_speaks() -> None:
    announcer = Announcer(player=RecordingPlayer()).start()
    try:
        announcer.announce(Call("A", 1, 1))
        await announced(announcer, 1)
        announcer.stop()  # removes its own audio folder
        announcer.start()
        announcer.announce(Call("A", 2, 2))
        done = await announced(announcer, 2)
    finally:
        announcer.stop()
    assert [spoken(a) for a in done] == [("A", 1, 1), ("A", 2, 2)]
    assert all(a.error is None for a in done)
