"""Priority is granted, never declared (issue 19): staff mark a waiting ticket priority, audited,
and a branch may have the kiosk's priority wait for the attendant's confirmation.

On the demo hall (Tbilisi: 59 services, 33 counters), SQLite and PostgreSQL, the real server,
dispatcher and board feed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from websockets.asyncio.client import connect

from queue_server.settings import SHIPPED_CONFIG
from queue_server.store.reports.runner import catch_up, rebuild
from queue_server.store.schema_reports import visit_days, visit_facts
from tests.support import LiveServer, test_settings

HALL = "tbilisi"  # the attendant confirms a kiosk's priority here
CENTRE = "cc01-shashiani"  # the default: the kiosk grants it
B = f"/api/v1/branches/{HALL}"
RECV_TIMEOUT_S = 20.0  # a hang guard, not a timing assertion


@pytest.fixture
def hall(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    settings = test_settings(
        database_url,
        tmp_path,
        config=SHIPPED_CONFIG,
        booking_branches={HALL: {"priority_confirm": 1}},
    )
    server = LiveServer(settings).start()
    yield server
    server.stop()


def _counter_and_service(server: LiveServer, branch: str = HALL) -> tuple[str, str]:
    """The branch's first counter and a service its work profile serves."""
    catalog = server.rigi.store.catalog
    counter = catalog.branch(branch).counters[0].id
    return counter, next(iter(catalog.profile(branch, counter)))


async def _issue(client: Any, service: str, branch: str = HALL, **claim: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/branches/{branch}/tickets", json={"service_id": service} | claim
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def _board_events(
    server: LiveServer, epoch: str, after_seq: int, count: int
) -> list[dict[str, Any]]:
    """The next `count` events a lobby display of the hall receives after `after_seq`."""
    seen: list[dict[str, Any]] = []
    async with connect(f"{server.ws_url}/ws/branches/{HALL}/board", compression=None) as ws:
        hello = {"type": "hello", "token": server.device_token("display", HALL)}
        await ws.send(json.dumps(hello | {"epoch": epoch, "after_seq": after_seq}))
        while len(seen) < count:
            message = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
            if message["type"] == "ping":
                await ws.send('{"type":"pong"}')
            elif message["type"] == "event" and message["seq"] > after_seq:
                seen.append(message)
    return seen


async def test_an_operator_grants_priority_and_the_dispatcher_calls_that_ticket_first(
    hall: LiveServer,
) -> None:
    counter, service = _counter_and_service(hall)
    async with hall.client("kiosk", HALL) as kiosk, hall.client("operator", HALL) as operator:
        older = [await _issue(kiosk, service) for _ in range(3)]
        citizen = await _issue(kiosk, service)
        snapshot = (await operator.get(f"{B}/snapshot")).json()
        seq = snapshot["seq"]

        granted = await operator.post(f"{B}/tickets/{citizen['id']}/priority")
        assert granted.status_code == 200, granted.text
        assert granted.json()["priority"] == "priority"
        again = await operator.post(f"{B}/tickets/{citizen['id']}/priority")
        assert (again.status_code, again.json()["priority"]) == (200, "priority")
        assert (await operator.get(f"{B}/snapshot")).json()["seq"] == seq + 1  # one event

        events = await _board_events(hall, snapshot["epoch"], seq, 1)
        assert events[0]["kind"] == "ticket.prioritized"
        assert events[0]["data"]["ticket"]["label"] == citizen["label"]
        shown = (await kiosk.get(f"/api/v1/tickets/{citizen['id']}")).json()
        assert shown["priority"] == "priority"

        assert (await operator.post(f"{B}/counters/{counter}/open")).status_code == 200
        called = await operator.post(f"{B}/counters/{counter}/call-next")
        assert called.json()["id"] == citizen["id"], "the granted ticket goes first"
        for step in ("start", "finish", "call-next"):
            body = {"outcome": "served"} if step == "finish" else None
            answer = await operator.post(f"{B}/counters/{counter}/{step}", json=body)
            assert answer.status_code == 200, answer.text
        assert answer.json()["id"] == older[0]["id"], "then the oldest normal ticket"

    async with hall.client("manager", HALL) as manager:
        trail = await manager.get(
            "/api/v1/audit", params={"branch": HALL, "kind": "ticket.prioritized"}
        )
    entries = trail.json()["entries"]
    assert len(entries) == 1, entries
    assert entries[0]["actor"] == f"operator:operator-{HALL}"
    assert entries[0]["target"] == citizen["label"]
    assert entries[0]["detail"]["priority"] == "priority"


async def test_only_a_waiting_ticket_of_ones_own_branch_is_granted_priority(
    hall: LiveServer,
) -> None:
    counter, service = _counter_and_service(hall)
    async with hall.client("operator", HALL) as operator:
        called = await _issue(operator, service)
        assert (await operator.post(f"{B}/counters/{counter}/open")).status_code == 200
        assert (await operator.post(f"{B}/counters/{counter}/call-next")).status_code == 200
        booked = await _issue(
            operator, service, priority="appointment", appointment_at="2026-11-24T10:00:00+04:00"
        )
        before = (await operator.get(f"{B}/snapshot")).json()["seq"]
        for ticket, status, code in (
            (booked, 409, "priority_is_appointment"),
            (called, 409, "priority_not_waiting"),
            ({"id": "0" * 32}, 404, "unknown_ticket"),
        ):
            refused = await operator.post(f"{B}/tickets/{ticket['id']}/priority")
            assert (refused.status_code, refused.json()["code"]) == (status, code), refused.text
            assert refused.json()["message"]
        waiting = await _issue(operator, service)
        after_issue = (await operator.get(f"{B}/snapshot")).json()["seq"]
        assert after_issue == before + 1  # the refusals appended nothing
    async with hall.client("operator", CENTRE) as elsewhere:
        refused = await elsewhere.post(f"{B}/tickets/{waiting['id']}/priority")
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_branch")
        wrong_branch = await elsewhere.post(
            f"/api/v1/branches/{CENTRE}/tickets/{waiting['id']}/priority"
        )
        assert (wrong_branch.status_code, wrong_branch.json()["code"]) == (404, "unknown_ticket")
    async with hall.client("kiosk", HALL) as kiosk:
        refused = await kiosk.post(f"{B}/tickets/{waiting['id']}/priority")
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role")
    assert (await kiosk_free_read(hall, waiting["id"]))["priority"] == "normal"


async def kiosk_free_read(server: LiveServer, ticket_id: str) -> dict[str, Any]:
    async with server.client(None) as anyone:
        return (await anyone.get(f"/api/v1/tickets/{ticket_id}")).json()  # type: ignore[no-any-return]


async def test_where_the_attendant_confirms_a_kiosk_priority_is_requested_until_granted(
    hall: LiveServer,
) -> None:
    counter, service = _counter_and_service(hall)
    async with hall.client("kiosk", HALL) as kiosk, hall.client("operator", HALL) as operator:
        walk_in = await _issue(kiosk, service)
        asked = await _issue(kiosk, service, priority="priority")
        assert asked["priority"] == "normal"
        assert asked["priority_requested"] is True
        assert (await operator.post(f"{B}/counters/{counter}/open")).status_code == 200
        waiting = (await operator.get(f"{B}/counters/{counter}/waiting")).json()
        assert [t["id"] for t in waiting[:2]] == [walk_in["id"], asked["id"]], "not yet ahead"

        granted = await operator.post(f"{B}/tickets/{asked['id']}/priority")
        assert granted.json()["priority"] == "priority"
        called = await operator.post(f"{B}/counters/{counter}/call-next")
        assert called.json()["id"] == asked["id"]
        # Staff issuing a priority ticket themselves need no one's confirmation.
        assert (await _issue(operator, service, priority="priority"))["priority"] == "priority"

    _, centre_service = _counter_and_service(hall, CENTRE)
    async with hall.client("kiosk", CENTRE) as kiosk:
        at_centre = await _issue(kiosk, centre_service, branch=CENTRE, priority="priority")
    assert at_centre["priority"] == "priority"
    assert at_centre.get("priority_requested") is None


Reports = tuple[dict[str, str], list[dict[str, Any]]]


def _reports(server: LiveServer) -> Reports:
    """The hall's visit facts' classes and its daily rollup rows, once projected."""

    async def read() -> Reports:
        rigi = server.rigi
        await catch_up(rigi.database, rigi.catalog, HALL)
        async with rigi.database.read() as conn:
            facts = await conn.execute(
                select(visit_facts.c.ticket_id, visit_facts.c.priority).where(
                    visit_facts.c.branch_id == HALL
                )
            )
            columns = [c for c in visit_days.columns if c.name != "updated_at"]
            days = await conn.execute(
                select(*columns)
                .where(visit_days.c.branch_id == HALL)
                .order_by(*visit_days.primary_key.columns)
            )
            return dict(facts.all()), [dict(row._mapping) for row in days]

    return server.run(read())  # type: ignore[no-any-return]


async def test_the_reports_count_a_granted_visit_as_priority_as_a_rebuild_does(
    hall: LiveServer,
) -> None:
    _, service = _counter_and_service(hall)
    async with hall.client("kiosk", HALL) as kiosk, hall.client("operator", HALL) as operator:
        first = await _issue(kiosk, service)
        _reports(hall)  # projected while still normal
        second = await _issue(kiosk, service)
        for ticket in (first, second):
            granted = await operator.post(f"{B}/tickets/{ticket['id']}/priority")
            assert granted.status_code == 200, granted.text
    classes, days = _reports(hall)
    assert classes == {first["id"]: "priority", second["id"]: "priority"}
    visits = {row["priority"]: row["visits"] for row in days}
    assert visits == {"normal": 0, "priority": 2}, "the first visit moved out of normal"
    hall.run(rebuild(hall.rigi.database, hall.rigi.catalog, [HALL]))
    rebuilt_classes, rebuilt_days = _reports(hall)
    counted = [row for row in days if row["visits"]]  # an emptied row stays, at zero
    assert (rebuilt_classes, rebuilt_days) == (classes, counted), "the deltas equal a rebuild"
