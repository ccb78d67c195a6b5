"""The server shows the wait forecast: a range once the branch's forecast is ready."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from queue_server.settings import Settings
from tests.support import LiveServer, test_settings
from tests.test_api import B, counter, issue


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The forecast is off by default (its refresh cost is far from its goal): on here."""
    return test_settings(database_url, tmp_path, forecast_runs=32)


async def test_a_waiting_citizen_sees_a_range_once_the_branch_is_forecast(
    live_server: LiveServer,
) -> None:
    async with live_server.client("manager") as client:
        await client.post(counter(2) + "/open")  # c02 serves ID cards
        tickets = [await issue(client) for _ in range(4)]
        await client.post(counter(2) + "/call-next")
        last = tickets[-1]
        assert last["wait_range"] is None  # issued before any forecast: estimate_wait's figure
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
