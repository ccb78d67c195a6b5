"""Devices, part 2, against a real server on SQLite and PostgreSQL: a kiosk is created with
its setup link and QR code (shown once), is seen when it authenticates (written at most once a
minute), and its printer's health is listed with it; a printer agent has no setup link."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support import LiveServer

B = "/api/v1/branches/testhall"


async def _device(manager: Any, device_id: str) -> dict[str, Any]:
    listed = (await manager.get(f"{B}/devices")).json()
    return next(d for d in listed if d["id"] == device_id)  # type: ignore[no-any-return]


async def test_a_new_kiosk_comes_with_a_setup_link_and_is_seen_when_it_works(
    live_server: LiveServer,
) -> None:
    async with live_server.client("manager") as manager:
        made = await manager.post(f"{B}/devices", json={"role": "kiosk", "name": "Entrance"})
        assert made.status_code == 201, made.text
        body = made.json()
        token, device = body["token"], body["device"]
        assert body["setup_url"] == f"{live_server.url}/kiosk/testhall?setup={token}"
        assert "<svg" in body["setup_qr_svg"] and "path" in body["setup_qr_svg"]
        listed = await _device(manager, device["id"])
        assert listed["last_seen_at"] is None
        assert token not in str(listed)
        assert listed["health"] == {"printers": []} or listed["health"] is None

        headers = {"Authorization": f"Bearer {token}"}
        async with live_server.client(None, headers=headers) as kiosk:
            assert (await kiosk.get(f"{B}/queues")).status_code == 403  # a kiosk, authenticated
            seen = (await _device(manager, device["id"]))["last_seen_at"]
            assert seen is not None
            await asyncio.sleep(2.5)  # past the token cache: the row is read again
            assert (await kiosk.get(B)).status_code == 200
            assert (await _device(manager, device["id"]))["last_seen_at"] == seen  # once a minute

        setup = await manager.get(body["setup_url"].removeprefix(live_server.url))
        assert setup.status_code == 200  # the page the QR code opens

        printer = await manager.post(f"{B}/devices", json={"role": "printer", "name": "P1"})
        assert printer.json()["setup_url"] is None and printer.json()["setup_qr_svg"] is None
