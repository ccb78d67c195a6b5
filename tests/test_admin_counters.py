"""An operator holds the counter they opened: another person's action on it is refused with
`counter_held_by_other` until a manager takes it over, which the first operator's console sees.
Two operators racing to open one counter: one wins, the other is told who holds it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.support import PASSWORD, LiveServer

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
WAIT_S = 20.0  # a hang guard, not a timing assertion


@contextlib.asynccontextmanager
async def signed_in(server: LiveServer, username: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as an operator of testhall called `username`."""
    server.user("operator", BRANCH, name=username)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.post(
            "/api/v1/session", json={"username": username, "password": PASSWORD}
        )
        response.raise_for_status()
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


def refused_as_held(response: httpx.Response, holder: str) -> bool:
    body: dict[str, Any] = response.json()
    return (
        response.status_code == 409
        and body["code"] == "counter_held_by_other"
        and holder in body["message"]
        and body["details"]["held_by"] == holder
    )


async def test_another_operator_cannot_act_on_a_counter_someone_holds(
    live_server: LiveServer,
) -> None:
    counter = f"{B}/counters/c01"
    async with (
        signed_in(live_server, "nino") as nino,
        signed_in(live_server, "giorgi") as giorgi,
        live_server.client("kiosk") as kiosk,
    ):
        assert (await nino.post(f"{counter}/open")).status_code == 200
        await kiosk.post(f"{B}/tickets", json={"service_id": "id_card"})
        for action, body in (("open", None), ("pause", {"reason": "lunch"}), ("close", None),
                             ("call-next", None)):  # fmt: skip
            response = await giorgi.post(f"{counter}/{action}", json=body)
            assert refused_as_held(response, "nino"), (action, response.text)
        called = await nino.post(f"{counter}/call-next")
        assert called.status_code == 200, called.text
        for action in ("recall", "no-show", "start"):
            response = await giorgi.post(f"{counter}/{action}")
            assert refused_as_held(response, "nino"), (action, response.text)
        assert (await nino.post(f"{counter}/no-show")).status_code == 200
        assert (await nino.post(f"{counter}/close")).status_code == 200
        # Closed, the counter is free again: giorgi may open it.
        assert (await giorgi.post(f"{counter}/open")).status_code == 200


async def test_a_manager_takes_a_counter_over_and_the_first_console_is_told(
    live_server: LiveServer,
) -> None:
    counter = f"{B}/counters/c02"
    async with (
        signed_in(live_server, "nino") as nino,
        live_server.client("manager") as manager,
    ):
        assert (await nino.post(f"{counter}/take-over")).status_code == 403  # not a manager
        closed = await manager.post(f"{counter}/take-over")
        assert (closed.status_code, closed.json()["code"]) == (409, "counter_closed")
        assert (await nino.post(f"{counter}/open")).status_code == 200
        cookie = "; ".join(f"{name}={value}" for name, value in nino.cookies.items())
        async with connect(
            f"{live_server.ws_url}/ws/branches/{BRANCH}/counters/c02",
            additional_headers={"Cookie": cookie},
        ) as console:
            await console.send(json.dumps({"type": "hello", "token": None}))
            first = json.loads(await asyncio.wait_for(console.recv(), WAIT_S))
            assert first["counter"]["operator"] == "operator:nino"

            taken = await manager.post(f"{counter}/take-over")
            assert taken.status_code == 200, taken.text
            assert taken.json()["previous_operator"] == "nino"
            told = json.loads(await asyncio.wait_for(console.recv(), WAIT_S))
            assert told["counter"]["operator"] == "manager:manager-testhall"
            assert told["counter"]["state"] == "open"

        again = await manager.post(f"{counter}/take-over")
        assert (again.status_code, again.json()["code"]) == (409, "counter_already_held")
        assert refused_as_held(await nino.post(f"{counter}/pause", json={"reason": "x"}),
                               "manager-testhall")  # fmt: skip
        assert (await manager.post(f"{counter}/close")).status_code == 200

    async def taken_over_events() -> list[tuple[str, str]]:
        async with live_server.rigi.database.read() as conn:
            rows = await conn.exec_driver_sql(
                "SELECT actor, data FROM events WHERE kind = 'counter.taken_over'"
            )
            return [(r.actor, json.loads(r.data)["previous_operator"]) for r in rows]

    assert live_server.run(taken_over_events()) == [("manager:manager-testhall", "nino")]


async def test_two_operators_race_to_open_a_counter_and_one_of_them_wins(
    live_server: LiveServer,
) -> None:
    async with signed_in(live_server, "nino") as nino, signed_in(live_server, "giorgi") as giorgi:
        for number in range(3, 10):
            path = f"{B}/counters/c0{number}/open"
            first, second = await asyncio.gather(nino.post(path), giorgi.post(path))
            statuses = sorted([first.status_code, second.status_code])
            assert statuses == [200, 409], (number, first.text, second.text)
            loser = second if first.status_code == 200 else first
            winner_name = "nino" if first.status_code == 200 else "giorgi"
            assert refused_as_held(loser, winner_name), loser.text
