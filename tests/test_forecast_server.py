"""The server shows the wait forecast: a range once the branch's forecast is ready, pushed to
the phone when it moves; a walk-in issued while the forecast is current is told its range at
issue, the ticket keeps its p90, and the reports count how often that promise held."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from websockets.asyncio.client import connect

from queue_server.settings import Settings
from queue_server.store.schema import tickets
from tests.support import LiveServer, test_settings
from tests.test_api import B, counter, issue


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The forecast is on by default; said here, as these tests are about it."""
    return test_settings(database_url, tmp_path, forecast_runs=32)


async def _forecast_view(client: Any, ticket_id: str) -> dict:
    """The ticket's view once the branch's forecast includes it (the first read after a
    change asks for a refresh off the loop)."""
    view: dict = {}
    for _ in range(200):
        view = (await client.get(f"/api/v1/tickets/{ticket_id}")).json()
        if view["wait_range"] is not None:
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"no forecast for the ticket: {view}")


async def _next_frame(phone: Any, timeout_s: float) -> dict | None:
    """The phone's next ticket view within `timeout_s` (heartbeats skipped), or None."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (left := deadline - loop.time()) > 0:
        try:
            frame = json.loads(await asyncio.wait_for(phone.recv(), left))
        except TimeoutError:
            return None
        if frame.get("type") == "ticket":
            return dict(frame["ticket"])
    return None


async def test_a_phone_is_told_when_its_forecast_moves_though_nothing_happened_in_the_hall(
    settings: Settings,
) -> None:
    # time passes with the visit in hand running far past its usual length, so the next
    # citizen's wait drops from about a visit to a fraction of one: the forecast refreshed
    # without any event of the branch must reach the phone; a refresh that moves nothing
    # sends nothing
    ahead = [timedelta(0)]  # how far the server's clock is ahead of the real one
    server = LiveServer(settings, clock=lambda: datetime.now(UTC) + ahead[0]).start()
    try:
        async with server.client("manager") as client:
            await client.post(counter(2) + "/open")  # c02 serves ID cards
            tickets = [await issue(client) for _ in range(2)]
            await client.post(counter(2) + "/call-next")
            last = tickets[-1]["id"]
            await _forecast_view(client, last)  # its read after the call asks for a refresh
            # ... which ends here, so that no earlier one is still on its way to the phone
            server.run(_refresh(server.rigi.store.forecasts))
            shown = (await client.get(f"/api/v1/tickets/{last}")).json()["wait_range"]
            async with connect(f"{server.ws_url}/ws/tickets/{last}") as phone:
                first = await _next_frame(phone, 10)
                assert first is not None and first["wait_range"] == shown
                forecasts = server.rigi.store.forecasts
                server.run(_refresh(forecasts))  # seconds later: nothing moved materially
                assert await _next_frame(phone, 1.5) is None
                ahead[0] = timedelta(hours=2)
                server.run(_refresh(forecasts))
                moved = await _next_frame(phone, 10)
        assert moved is not None and moved["people_ahead"] == first["people_ahead"]
        assert moved["wait_range"]["median_min"] < shown["median_min"]
    finally:
        server.stop()


async def _refresh(forecasts: Any) -> None:
    forecasts.request("testhall")
    await forecasts.refreshed("testhall")


async def test_a_waiting_citizen_sees_a_range_once_the_branch_is_forecast(
    live_server: LiveServer,
) -> None:
    async with live_server.client("manager") as client:
        await client.post(counter(2) + "/open")  # c02 serves ID cards
        tickets = [await issue(client) for _ in range(4)]
        await client.post(counter(2) + "/call-next")
        last = tickets[-1]  # told a range at issue only if a refresh fell between the issues
        view: dict = {}
        for _ in range(100):  # the first read after a change asks for a refresh off the loop
            view = (await client.get(f"/api/v1/tickets/{last['id']}")).json()
            if view["wait_range"] is not None:
                break
            await asyncio.sleep(0.05)
        assert view["people_ahead"] == 2
        wait = view["wait_range"]
        assert wait is not None and 0 < wait["median_min"] <= wait["p90_min"]
        assert view["wait_minutes"] == wait["median_min"] and view["served_now"] is True


async def test_a_service_no_open_counter_serves_says_so_instead_of_zero_minutes(
    live_server: LiveServer,
) -> None:
    async with live_server.client("manager") as client:
        ticket = await issue(client, "passport")  # every counter is closed
        view: dict = {}
        for _ in range(100):
            view = (await client.get(f"/api/v1/tickets/{ticket['id']}")).json()
            if view["served_now"] is False and view["wait_range"] is None:
                break
            await asyncio.sleep(0.05)
        assert view["served_now"] is False
        assert view["next_open_at"] is None  # no rota is known
        assert (await client.get(f"{B}/snapshot")).status_code == 200


REPORTED_WITHIN_S = 30


def _promised(server: LiveServer, ticket_id: str) -> tuple[Any, Any]:
    async def read() -> tuple[Any, Any]:
        async with server.rigi.database.read() as conn:
            row = (
                await conn.execute(
                    select(tickets.c.wait_estimate_s, tickets.c.wait_p90_s).where(
                        tickets.c.id == ticket_id
                    )
                )
            ).one()
        return row.wait_estimate_s, row.wait_p90_s

    return server.run(read())  # type: ignore[no-any-return]


async def test_a_ticket_issued_on_a_current_forecast_keeps_its_range_and_the_reports_count_it(
    settings: Settings,
) -> None:
    server = LiveServer(settings).start()
    try:
        async with server.client("manager") as client:
            await client.post(counter(2) + "/open")  # c02 serves ID cards
            first = await issue(client)  # no forecast yet: estimate_wait's figure, no range
            assert first["wait_range"] is None
            await client.post(counter(2) + "/call-next")
            await client.post(counter(2) + "/start")
            server.run(_refresh(server.rigi.store.forecasts))
            second = await issue(client)
            promised = second["wait_range"]  # a newcomer's forecast, told at issue
            assert promised is not None and 0 < promised["median_min"] <= promised["p90_min"]
            median_s, p90_s = _promised(server, second["id"])
            assert median_s <= p90_s and abs(math.ceil(p90_s / 60) - promised["p90_min"]) <= 1
            assert _promised(server, first["id"])[1] is None
            await client.post(counter(2) + "/finish", json={"outcome": "served"})
            called = await client.post(counter(2) + "/call-next")
            assert called.json()["id"] == second["id"]  # seconds after issue: within its range
            today = datetime.now(ZoneInfo("Asia/Tbilisi")).date().isoformat()
            figures: dict[str, Any] = {}
            for _ in range(REPORTED_WITHIN_S * 10):
                report = await client.get(f"{B}/reports", params={"from": today, "to": today})
                figures = report.json()["kpis"]
                if figures["ranged"]:
                    break
                await asyncio.sleep(0.1)
        assert figures["ranged"] == 1 and figures["range_coverage"] == 1.0
    finally:
        server.stop()
