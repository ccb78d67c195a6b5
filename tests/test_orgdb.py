"""The organisation lives in the database (issue #14): the shipped config round-trips through
`config export` / `config import` byte for byte; bad edits are refused with their field named
and change nothing; a manager's edit reaches a kiosk that is already following its branch, with
no reload, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import filecmp
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from queue_server.organisation.files import export_directory, import_directory
from queue_server.settings import SHIPPED_CONFIG
from tests.support import LiveServer
from tests.support import test_settings as settings_for

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
RECV_TIMEOUT_S = 10.0  # a hang guard, not a timing assertion


# ---- files --------------------------------------------------------------------------------


def _same_tree(first: Path, second: Path) -> list[str]:
    """Files that differ or exist on one side only, compared byte for byte."""
    differ: list[str] = []
    left = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    right = sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    if left != right:
        differ.append(f"file lists differ: {set(left) ^ set(right)}")
    for path in set(left) & set(right):
        if not filecmp.cmp(first / path, second / path, shallow=False):
            differ.append(str(path))
    return differ


def test_the_shipped_config_round_trips_byte_for_byte(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path}/rigi.db", tmp_path,
                            config=SHIPPED_CONFIG)  # fmt: skip
    assert export_directory(settings, tmp_path / "first") == 0
    exported = list((tmp_path / "first" / "branches").glob("*.yaml"))
    assert len(exported) == 86  # the hall, and every Community Centre as a branch of its own
    assert import_directory(settings, tmp_path / "first") == 0
    assert export_directory(settings, tmp_path / "second") == 0
    assert _same_tree(tmp_path / "first", tmp_path / "second") == []


def test_a_bad_directory_is_refused_and_nothing_is_imported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path}/rigi.db", tmp_path)
    assert export_directory(settings, tmp_path / "good") == 0
    bad = tmp_path / "good" / "branches" / "testhall.yaml"
    bad.write_text(bad.read_text("utf-8").replace("stamp: 1", "no_such_service: 1", 1), "utf-8")
    capsys.readouterr()
    assert import_directory(settings, tmp_path / "good") == 1
    assert "counters[0].serves.no_such_service" in capsys.readouterr().err
    assert export_directory(settings, tmp_path / "after") == 0
    assert "no_such_service" not in (tmp_path / "after" / "branches" / "testhall.yaml").read_text()


# ---- the API ------------------------------------------------------------------------------


async def _organisation(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.get("/api/v1/organisation")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# (path, body, the field the refusal names): each alone must change nothing.
BAD_EDITS = [
    (f"{B}/counters/c01/profile", {"serves": {"id_card": 1, "no_such_service": 2}},
     "branches.testhall.counters[0].serves.no_such_service"),  # unknown service in a profile
    (f"{B}/organisation",
     {"hours": {"mon": [{"opens": "09:00", "closes": "13:00"},
                        {"opens": "12:30", "closes": "18:00"}]}},
     "branches.testhall.hours.mon"),  # overlapping hours
    ("/api/v1/services/stamp",
     {"agency": "napr", "letter": "A", "target_wait_min": 10, "service_time_min": 3,
      "category": "quick", "name": {"ka": "ამონაწერი", "en": "Registry extract"}},
     "branches.testhall.offers"),  # a letter of another agency's in the branch
    ("/api/v1/services/passport",
     {"agency": "psda", "letter": "P", "target_wait_min": 15, "service_time_min": 10,
      "category": "long", "name": {"en": "Passport"}},
     "services[1].name.ka"),  # a name missing in Georgian
]  # fmt: skip


async def test_bad_edits_are_refused_with_their_field_named_and_change_nothing(
    live_server: LiveServer,
) -> None:
    async with live_server.client("admin") as admin:
        before = await _organisation(admin)
        for path, body, field in BAD_EDITS:
            response = await admin.post(path, json=body)
            assert response.status_code == 422, response.text
            error = response.json()
            assert error["code"] == "invalid_organisation"
            assert field in [f["field"] for f in error["details"]["fields"]], error
            assert await _organisation(admin) == before


async def test_a_manager_edits_only_their_own_branch(sqlite_server: LiveServer) -> None:
    async with (
        sqlite_server.client("manager", "otherhall") as other,
        sqlite_server.client("operator") as operator,
    ):
        body = {"serves": {"stamp": 1}}
        refused = await other.post(f"{B}/counters/c01/profile", json=body)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_branch")
        refused = await operator.post(f"{B}/counters/c01/profile", json=body)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role")


async def _follow_board(server: LiveServer, url: str | None = None) -> ClientConnection:
    """A kiosk following its branch's board feed, past the snapshot."""
    ws = await connect(f"{url or server.ws_url}/ws/branches/{BRANCH}/board")
    token = server.device_token("kiosk")
    await ws.send(json.dumps({"type": "hello", "token": token}))
    first = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
    assert first["type"] == "snapshot", first
    return ws


async def _next_change(ws: ClientConnection) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
        if message["type"] == "ping":
            await ws.send('{"type":"pong"}')
        elif message.get("kind") == "organisation.changed":
            return message  # type: ignore[no-any-return]


async def _offered(client: httpx.AsyncClient) -> set[str]:
    response = await client.get(B)
    assert response.status_code == 200, response.text
    return {service["id"] for service in response.json()["services"]}


async def test_a_service_the_manager_enables_reaches_the_open_kiosk_without_a_reload(
    live_server: LiveServer,
) -> None:
    async with live_server.client("manager") as manager, live_server.client("kiosk") as kiosk:
        ws = await _follow_board(live_server)
        try:
            response = await manager.post(f"{B}/organisation", json={"offers": ["stamp"]})
            assert response.status_code == 200, response.text
            await _next_change(ws)
            assert await _offered(kiosk) == {"stamp"}
            response = await manager.post(
                f"{B}/organisation", json={"offers": ["stamp", "id_card"]}
            )
            assert response.status_code == 200, response.text
            changed = await _next_change(ws)
            assert changed["seq"] > 0
            assert await _offered(kiosk) == {"stamp", "id_card"}
        finally:
            await ws.close()
        trail = await manager.get("/api/v1/audit", params={"kind": "organisation.edit"})
        assert trail.status_code == 200, trail.text
        targets = [row["target"] for row in trail.json()["entries"]]
        assert targets == ["branch testhall: offers"] * 2


async def test_bookings_follow_the_branch_hours_its_break_and_its_holidays(
    tmp_path: Path,
) -> None:
    from tests.test_bookings import MONDAY, booking_server, free_slots

    server, _ = booking_server(f"sqlite+aiosqlite:///{tmp_path}/rigi.db", tmp_path)
    try:
        async with server.client("manager") as manager, server.client() as phone:
            hours = {"mon": [{"opens": "10:00", "closes": "12:00"},
                             {"opens": "13:00", "closes": "14:00"}]}  # fmt: skip
            edited = await manager.post(f"{B}/organisation", json={"hours": hours})
            assert edited.status_code == 200, edited.text
            local = [s["slot"][11:16] for s in await free_slots(phone)]  # UTC+4 in Tbilisi
            assert local[0] == "06:00" and local[-1] == "09:55"  # 10:00 … 13:55 local (5 min)
            assert not [t for t in local if "08:00" <= t < "09:00"]  # the break, 12:00-13:00
            closed = await manager.post(f"{B}/organisation", json={"holidays": [str(MONDAY)]})
            assert closed.status_code == 200, closed.text
            assert await free_slots(phone) == []
    finally:
        server.stop()


def test_a_branch_takes_its_region_from_its_municipality_and_an_unknown_one_is_named(
    tmp_path: Path,
) -> None:
    import shutil

    from queue_server.catalog.loader import check_config, load_catalog

    config = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, config)
    shipped = load_catalog(config)
    assert shipped.branch("tbilisi").region == "Tbilisi"
    assert shipped.branch("cc01-shashiani").region == "Kakheti"  # Gurjaani
    hall = config / "branches" / "tbilisi.yaml"
    hall.write_text(
        hall.read_text("utf-8").replace("municipality: Tbilisi", "municipality: Atlantis")
    )
    problems = check_config(config)
    assert any("tbilisi.yaml: municipality: unknown municipality 'Atlantis'" in p for p in problems)


async def test_an_open_console_gets_the_waiting_list_of_its_new_work_profile(
    live_server: LiveServer,
) -> None:
    async with live_server.client("manager") as manager:
        ticket = (await manager.post(f"{B}/tickets", json={"service_id": "id_card"})).json()
        cookie = "; ".join(f"{name}={value}" for name, value in manager.cookies.items())
        async with connect(
            f"{live_server.ws_url}/ws/branches/{BRANCH}/counters/c04",
            additional_headers={"Cookie": cookie},
        ) as console:
            await console.send(json.dumps({"type": "hello", "token": None}))
            state = json.loads(await asyncio.wait_for(console.recv(), RECV_TIMEOUT_S))
            assert state["waiting"] == []  # c04 serves stamps only
            profile = {"serves": {"stamp": 1, "id_card": 2}}
            edited = await manager.post(f"{B}/counters/c04/profile", json=profile)
            assert edited.status_code == 200, edited.text
            told = []  # the console is told to read its boot data again, then the new list
            while True:
                state = json.loads(await asyncio.wait_for(console.recv(), RECV_TIMEOUT_S))
                told.append(state.get("type"))
                if state.get("type") == "counter":
                    break
            assert told == ["organisation", "counter"]
            assert [t["id"] for t in state["waiting"]] == [ticket["id"]]


async def test_an_open_counter_cannot_be_removed_until_it_is_closed(
    sqlite_server: LiveServer,
) -> None:
    async with sqlite_server.client("manager") as manager:
        assert (await manager.post(f"{B}/counters/c10/open")).status_code == 200
        before = (await manager.get(f"{B}/organisation")).json()
        kept = [c for c in before["branch"]["counters"] if c["id"] != "c10"]
        refused = await manager.post(f"{B}/organisation", json={"counters": kept})
        assert (refused.status_code, refused.json()["code"]) == (409, "counter_in_use")
        assert refused.json()["details"]["counters"] == ["c10"]
        assert (await manager.get(f"{B}/organisation")).json() == before
        assert (await manager.post(f"{B}/counters/c10/close")).status_code == 200
        removed = await manager.post(f"{B}/organisation", json={"counters": kept})
        assert removed.status_code == 200, removed.text
        assert "c10" not in {c.id for c in sqlite_server.rigi.catalog.branch(BRANCH).counters}


async def test_a_branch_with_people_waiting_cannot_be_removed(sqlite_server: LiveServer) -> None:
    async with (
        sqlite_server.client("admin") as admin,
        sqlite_server.client("kiosk", "otherhall") as kiosk,
    ):
        whole = (await admin.get("/api/v1/organisation")).json()
        version = sqlite_server.rigi.catalog.version
        ticket = await kiosk.post(
            "/api/v1/branches/otherhall/tickets", json={"service_id": "id_card"}
        )
        assert ticket.status_code == 201, ticket.text
        without = {key: whole[key] for key in ("agencies", "services", "branches")}
        without["branches"] = [b for b in whole["branches"] if b["id"] != "otherhall"]
        refused = await admin.post("/api/v1/organisation", json=without)
        assert (refused.status_code, refused.json()["code"]) == (409, "branch_in_use")
        assert refused.json()["details"]["branches"] == ["otherhall"]
        assert sqlite_server.rigi.catalog.version == version
        assert "otherhall" in sqlite_server.rigi.catalog.branches
