"""A booking made centrally during an outage is honoured at the centre: the node checks it in
from its signed code though the booking never reached it, and when central's bookings arrive
later the node keeps what happened at its door (docs/offline.md)."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from queue_server.store.bookings import branch_bookings, mirror_bookings
from queue_server.store.schema_bookings import bookings
from tests.support import LiveServer, free_port, test_settings
from tests.test_bookings import BRANCH, B, Clock, book_and_confirm, booking_server, free_slots

BOOKING_KEY = "a booking key central and its nodes share " + "k" * 8


async def test_a_central_booking_checks_in_at_the_node_while_the_link_is_down(
    tmp_path: Path,
) -> None:
    central, clock = booking_server(
        f"sqlite+aiosqlite:///{tmp_path / 'central.sqlite3'}", tmp_path / "central",
        booking_key=BOOKING_KEY,
    )  # fmt: skip
    nobody_listens = f"http://127.0.0.1:{free_port()}"  # the link is down from the start
    node_settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'node.sqlite3'}", tmp_path / "node",
        booking_key=BOOKING_KEY, node_central_url=nobody_listens, node_token="rigi_unused",
        node_branch=BRANCH,
    )  # fmt: skip
    node_clock = Clock(clock.now)
    node = LiveServer(node_settings, clock=node_clock).start()
    try:
        async with central.client() as phone:
            slot = (await free_slots(phone))[6]["slot"]
            booking = await book_and_confirm(central, phone, slot)
        arrival = datetime.fromisoformat(slot) - timedelta(minutes=20)
        node_clock.now = arrival
        async with node.client("kiosk") as kiosk:
            arrived = await kiosk.post(f"{B}/check-in", json={"code": booking["token"]})
            assert arrived.status_code == 201, arrived.text
            ticket = arrived.json()["ticket"]
            assert ticket["priority"] == "appointment" and ticket["service_id"] == "id_card"
            again = await kiosk.post(f"{B}/check-in", json={"code": booking["token"]})
            assert (again.status_code, again.json()["code"]) == (409, "booking_used")
            forged = await kiosk.post(f"{B}/check-in", json={"code": booking["token"][:-2]})
            assert forged.status_code in (404, 409, 422) and forged.json()["code"]
        assert node.rigi.node.status(arrival)["connected"] is False

        # The link returns: central's bookings reach the node; its check-in stands.
        found = central.run(
            central.rigi.database.reading(
                functools.partial(branch_bookings, branch_id=BRANCH, since=arrival - timedelta(1))
            )
        )
        assert [item["id"] for item in found] == [booking["id"]]
        for _ in range(2):  # at least once: a second delivery changes nothing
            node.run(
                node.rigi.database.transaction(
                    functools.partial(mirror_bookings, found=found, now=arrival)
                )
            )
        held = node.run(_statuses(node))
        assert held == {booking["id"]: "checked_in"}
    finally:
        node.stop()
        central.stop()


async def _statuses(node: LiveServer) -> dict[str, str]:
    async with node.rigi.database.read() as conn:
        rows = await conn.execute(select(bookings.c.id, bookings.c.status))
        return {row.id: row.status for row in rows}
