"""Waiting for what an announcer has said, shared by the display tests."""

from __future__ import annotations

import asyncio

from display_client.announce import Announcement, Announcer

WAIT_S = 30.0  # hang guard only
QUIET_S = 0.2  # the client's catch-up window, shortened for the tests


async def announced(announcer: Announcer, count: int) -> list[Announcement]:
    """Wait until `count` announcements are finished, then a little longer for any extra."""
    async with asyncio.timeout(WAIT_S):
        while len(announcer.done) < count:  # noqa: ASYNC110 - the announcer is a thread
            await asyncio.sleep(0.02)
    await asyncio.sleep(QUIET_S * 3)
    return list(announcer.done)


def spoken(announcement: Announcement) -> tuple[str, int, int]:
    call = announcement.call
    return call.letter, call.number, call.counter_number
