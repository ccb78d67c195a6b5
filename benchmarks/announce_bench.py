"""Time from a display receiving a call event to its announcement audio being ready.

A stand-in board feed on loopback sends calls one at a time to a real DisplayClient; each
phrase is synthesized by espeak-ng (Georgian then English). Playback is silent,
so the figure is what a citizen waits before the chime could start.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from pathlib import Path

CALLS = 60


async def _measure(calls: int) -> list[float]:
    from feed_support import BRANCH, TOKEN, FakeBoardFeed

    from display_client.announce import Announcer
    from display_client.client import DisplayClient, running
    from display_client.config import load_settings
    from display_client.players import SilentPlayer

    announcer = Announcer(player=SilentPlayer())
    async with FakeBoardFeed() as feed:
        settings = load_settings(
            {"server_url": feed.url, "branch": BRANCH, "token": TOKEN, "player": "silent"},
            environ={},
        )
        client = DisplayClient(settings, announcer)
        async with running(client):
            await client.wait_for_seq(0)
            for index in range(calls):
                await feed.call("A", index + 1, index % 9 + 1)
                async with asyncio.timeout(30):
                    while len(announcer.done) <= index:  # noqa: ASYNC110 - a thread fills it
                        await asyncio.sleep(0.001)
    return [a.latency_s for a in announcer.done if a.latency_s is not None]


def main() -> None:
    # The stand-in feed lives with the display tests; the benchmark reuses it as-is.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "display"))
    latencies = sorted(asyncio.run(_measure(CALLS)))
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"announce: call event → audio ready (ka+en, {len(latencies)} calls): "
        f"median {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
