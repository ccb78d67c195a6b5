"""A booking made centrally during an outage is honoured at the centre: the node checks it in
from its signed code though the booking never reached it, and when the link returns and
central's bookings come down it, the node keeps what happened at its door (docs/offline.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from queue_server.store.schema_bookings import bookings
from tests.offline_link import LinkProxy
from tests.support import LiveServer, test_settings
from tests.test_bookings import BRANCH, B, Clock, book_and_confirm, booking_server, free_slots

BOOKING_KEY = "a booking key central and its nodes share " + "k" * 8


async def test_a_central_booking_checks_in_at_the_node_while_the_link_is_down(
    tmp_path: Path,
) -> None:
    central, clock = booking_server(
        f"sqlite+aiosqlite:///{tmp_path / 'central.sqlite3'}", tmp_path / "central",
        booking_key=BOOKING_KEY,
    )  # fmt: skip
    proxy = await LinkProxy([central.port]).start()
    proxy.cut()  # the link is down from the start
    async with central.client("admin") as admin:
        made = await admin.post(f"/api/v1/branches/{BRANCH}/node-token", json={})
    node_settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'node.sqlite3'}", tmp_path / "node",
        booking_key=BOOKING_KEY, node_central_url=proxy.url, node_token=made.json()["token"],
        node_branch=BRANCH,
    )  # fmt: skip
    node_clock = Clock(clock.now)
    node = LiveServer(node_settings, clock=node_clock).start()
    try:
        async with central.client() as phone:
            slot = (await free_slots(phone))[6]["slot"]
            booking = await book_and_confirm(central, phone, slot)
        node_clock.now = datetime.fromisoformat(slot) - timedelta(minutes=20)
        async with node.client("kiosk") as kiosk:
            arrived = await kiosk.post(f"{B}/check-in", json={"code": booking["token"]})
            assert arrived.status_code == 201, arrived.text
            ticket = arrived.json()["ticket"]
            assert ticket["priority"] == "appointment" and ticket["service_id"] == "id_card"
            again = await kiosk.post(f"{B}/check-in", json={"code": booking["token"]})
            assert (again.status_code, again.json()["code"]) == (409, "booking_used")
            forged = await kiosk.post(f"{B}/check-in", json={"code": booking["token"][:-2]})
            assert forged.status_code == 404 and forged.json()["code"] == "booking_not_found"
        assert node.rigi.node.status(node_clock.now)["connected"] is False

        proxy.restore()  # central's bookings come down the link; the node's check-in stands
        for _ in range(200):  # 20 s at most: the shipper's pause after the cut, then the pull
            if node.rigi.node.state.down_at is not None:
                break
            await asyncio.sleep(0.1)
        assert node.rigi.node.state.down_at is not None, node.rigi.node.status(node_clock.now)
        assert await _on(node, _statuses(node)) == {booking["id"]: "checked_in"}
        pulled = await _on(node, node.rigi.node.pull_down(now_all=True))  # again: no change
        assert pulled == 0 and await _on(node, _statuses(node)) == {booking["id"]: "checked_in"}
    finally:
        node.stop()
        central.stop()
        await proxy.close()


async def _on(server: LiveServer, work: Coroutine[Any, Any, Any]) -> Any:
    """Run on the server's loop without blocking this one (the link proxy runs here)."""
    assert server.loop is not None
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, server.loop))


async def _statuses(node: LiveServer) -> dict[str, str]:
    async with node.rigi.database.read() as conn:
        rows = await conn.execute(select(bookings.c.id, bookings.c.status))
        return {row.id: row.status for row in rows}
