"""Reports against a real server: a hand-built day driven through the HTTP API (every outcome,
a transfer, a recall, a pause) gives the KPIs counted by hand; a rebuild from the event log
gives identical rows; a replayed event is not counted twice; the CSV and XLSX exports hold the
JSON's numbers; who may read which report."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from queue_server.cli import main as queue_server
from queue_server.settings import Settings
from queue_server.store.database import Database
from queue_server.store.reports.projector import reset_branch
from queue_server.store.reports.runner import catch_up, rebuild
from queue_server.store.schema import branch_streams, tickets
from queue_server.store.schema_reports import REPORT_TABLES, network_days, report_cursors
from tests.support import LiveServer

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
DAY = "2026-03-02"  # a Monday
START = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 09:00 in Tbilisi
PERIOD = {"from": DAY, "to": DAY}
OPERATOR = "operator:operator-testhall"
MANAGER = "manager:manager-testhall"
WAIT_S = 30.0  # a hang guard, not a timing assertion


class Clock:
    """The server's clock, moved by the test: every time in the day is chosen by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> None:
        self.now = START + timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def day_server(settings: Settings, clock: Clock) -> Iterator[LiveServer]:
    server = LiveServer(settings, clock=clock).start()
    yield server
    server.stop()


async def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    return response.json()  # type: ignore[no-any-return]


async def _hand_built_day(server: LiveServer, clock: Clock) -> dict[str, str]:
    """The day of the module docstring; returns the ticket ids by name."""
    c01, c02 = f"{B}/counters/c01", f"{B}/counters/c02"
    async with (
        server.client("operator") as operator,
        server.client("manager") as manager,
        server.client("kiosk") as kiosk,
        server.client(None) as phone,
    ):
        await _ok(await operator.post(c01 + "/open"))
        await _ok(await manager.post(c02 + "/open"))
        ids = {}
        for name, service, issuer in (
            ("t1", "id_card", kiosk),
            ("t2", "stamp", kiosk),
            ("t3", "passport", kiosk),
            ("t4", "stamp", phone),
            ("t5", "id_card", kiosk),
        ):
            ids[name] = (
                await _ok(await issuer.post(f"{B}/tickets", json={"service_id": service}))
            )["id"]

        async def at(seconds: float, client: httpx.AsyncClient, path: str, **body: Any) -> Any:
            clock.at(seconds)
            return await _ok(await client.post(path, json=body or None))

        await at(60, operator, c01 + "/call", ticket_id=ids["t1"])
        await at(90, operator, c01 + "/recall")
        await at(120, operator, c01 + "/start")
        await at(420, operator, c01 + "/finish", outcome="served")
        await at(480, operator, c01 + "/call", ticket_id=ids["t2"])
        await at(540, operator, c01 + "/start")
        moved = await at(600, operator, c01 + "/transfer", service_id="passport")
        ids["t2b"] = moved["transferred_to"]["id"]
        await at(660, manager, c02 + "/call", ticket_id=ids["t3"])
        await at(700, manager, c02 + "/no-show")
        await at(720, phone, f"/api/v1/tickets/{ids['t4']}/cancel")
        await at(780, operator, c01 + "/pause", reason="lunch")
        await at(1380, operator, c01 + "/open")
        await at(1440, operator, c01 + "/call", ticket_id=ids["t2b"])
        await at(1500, operator, c01 + "/start")
        await at(1800, operator, c01 + "/finish", outcome="not_served")
        await at(1860, manager, c02 + "/call", ticket_id=ids["t5"])
        await at(1900, manager, c02 + "/start")
        await at(2000, manager, c02 + "/finish", outcome="served")
        await at(2100, operator, c01 + "/close")
        await at(2100, manager, c02 + "/close")
    return ids


def _wait_until_projected(server: LiveServer) -> None:
    """The background projector (not the test) applies the events: wait until it has."""

    async def behind() -> bool:
        async with server.rigi.database.read() as conn:
            head = (
                await conn.execute(
                    select(branch_streams.c.last_seq).where(branch_streams.c.branch_id == BRANCH)
                )
            ).scalar_one()
            applied = (
                await conn.execute(
                    select(report_cursors.c.seq).where(report_cursors.c.branch_id == BRANCH)
                )
            ).scalar_one_or_none()
        return applied != head

    for _ in range(int(WAIT_S / 0.1)):
        if not server.run(behind()):
            return
        time.sleep(0.1)
    raise AssertionError("the reports projector did not catch up")


def _estimates(
    server: LiveServer, ids: dict[str, str], column: str = "wait_estimate_s"
) -> dict[str, float | None]:
    """Each ticket's estimate given at issue (or, by `column`, the range's upper end)."""

    async def read() -> dict[str, float | None]:
        async with server.rigi.database.read() as conn:
            rows = await conn.execute(
                select(tickets.c.id, tickets.c[column]).where(tickets.c.id.in_(list(ids.values())))
            )
            by_id = {row.id: row[1] for row in rows}
        return {name: by_id[ticket_id] for name, ticket_id in ids.items()}

    return server.run(read())  # type: ignore[no-any-return]


def _report_rows(server: LiveServer) -> dict[str, list[tuple[Any, ...]]]:
    """Every report row of the branch (the cursor's clock left out)."""

    async def read() -> dict[str, list[tuple[Any, ...]]]:
        rows = {}
        async with server.rigi.database.read() as conn:
            for table in REPORT_TABLES:
                columns = [c for c in table.columns if c.name != "updated_at"]
                result = await conn.execute(
                    select(*columns)
                    .where(table.c.branch_id == BRANCH)
                    .order_by(*table.primary_key.columns)
                )
                rows[table.name] = [tuple(row) for row in result]
            # The network's daily rows: the branch's, its id left out (no other branch moved).
            result = await conn.execute(select(network_days).order_by(*network_days.primary_key))
            rows["network_days"] = [tuple(row) for row in result]
        return rows

    return server.run(read())  # type: ignore[no-any-return]


async def test_the_kpis_of_a_hand_built_day_are_the_figures_counted_by_hand(
    day_server: LiveServer, clock: Clock
) -> None:
    ids = await _hand_built_day(day_server, clock)
    await asyncio.to_thread(_wait_until_projected, day_server)
    async with day_server.client("manager") as manager:
        report = await _ok(await manager.get(f"{B}/reports", params=PERIOD))

    waits = {"t1": 60, "t2": 480, "t3": 660, "t2b": 840, "t5": 1860}  # called − joined
    targets = {"t1": 600, "t2": 600, "t3": 900, "t2b": 900, "t5": 600}
    services = [300, 60, 300, 100]  # t1, t2 (until the transfer), t2b, t5
    estimates = _estimates(day_server, ids)
    errors = [estimate - waits[n] for n in waits if (estimate := estimates[n]) is not None]
    assert estimates["t2b"] is None and len(errors) == 4  # a transfer gets no new estimate
    promised = _estimates(day_server, ids, "wait_p90_s")  # when a forecast was current at issue
    ranged = [waits[n] <= p90 for n in waits if (p90 := promised[n]) is not None]
    kpis = report["kpis"]
    assert kpis == {
        "visits": 6,
        "served": 2,
        "not_served": 1,
        "referred": 0,
        "no_show": 1,
        "cancelled": 1,
        "transferred": 1,
        "open": 0,
        "recalls": 1,
        "mean_wait_s": 780.0,
        "median_wait_s": 690.0,  # 660 s, reported as its 30 s bucket's upper edge
        "p90_wait_s": 1860.0,  # the 5th of 5 waits, capped at the longest wait
        "max_wait_s": 1860.0,
        "service_level": sum(waits[n] <= targets[n] for n in waits) / 5,
        "mean_service_s": sum(services) / 4,
        "p90_service_s": 300.0,
        "no_show_rate": round(1 / 6, 4),
        "cancellation_rate": round(1 / 6, 4),
        "estimate_mae_s": round(sum(abs(e) for e in errors) / 4, 1),
        "estimate_bias_s": round(sum(errors) / 4, 1),
        "range_coverage": round(sum(ranged) / len(ranged), 4) if ranged else None,
        "ranged": len(ranged),
    }
    assert report["source"] == "rollups"
    assert report["previous_period"] == {"from": "2026-03-01", "to": "2026-03-01"}
    assert report["previous"]["visits"] == 0
    assert report["heatmap"] == [{"weekday": 0, "hour": 9, "arrivals": 6}]
    by_service = {row["service_id"]: row for row in report["services"]}
    assert {s: row["visits"] for s, row in by_service.items()} == {
        "id_card": 2,
        "stamp": 2,
        "passport": 2,
    }
    # The branch's row holds the same percentiles as the whole (one branch here).
    (branch_row,) = report["branches"]
    assert {k: branch_row[k] for k in kpis} == kpis
    # The network's report by region (config/municipalities.csv): Rustavi is in Kvemo Kartli.
    async with day_server.client("admin") as admin:
        capital = await _ok(
            await admin.get("/api/v1/reports", params=PERIOD | {"region": "Tbilisi"})
        )
        south = await _ok(
            await admin.get("/api/v1/reports", params=PERIOD | {"region": "Kvemo Kartli"})
        )
        whole = await _ok(await admin.get("/api/v1/reports", params=PERIOD))
    assert capital["kpis"] == kpis and south["kpis"]["visits"] == 0
    # Every branch at once reads the network's daily rows: the same figures (one branch here).
    assert whole["kpis"] == kpis
    assert [{k: row[k] for k in kpis} for row in whole["branches"]] == [kpis]
    assert {row["service_id"]: row["median_wait_s"] for row in whole["services"]} == {
        s: row["median_wait_s"] for s, row in by_service.items()
    }
    assert (
        capital["branches"][0] | {"region": "Tbilisi", "municipality": "Tbilisi"}
        == (capital["branches"][0])
    )
    counters = {(row["counter_id"], row["operator"]): row for row in report["counters"]}
    assert counters["c01", OPERATOR] == {
        "branch_id": BRANCH,
        "counter_id": "c01",
        "operator": OPERATOR,
        "serving_s": 360 + 120 + 360,
        "idle_s": 60 + 60 + 180 + 60 + 300,
        "paused_s": 600,
        "closed_s": 0,
        "utilisation": round(840 / 2100, 4),
    }
    assert counters["c02", MANAGER]["serving_s"] == 40 + 140
    assert counters["c02", MANAGER]["idle_s"] == 660 + 1160 + 100
    assert [row["wait_s"] for row in report["longest_waits"]] == [1860, 840, 660, 480, 60]

    # Slices: by channel, by priority class, and by counter (read from the facts).
    async with day_server.client("manager") as manager:
        phone = await _ok(await manager.get(f"{B}/reports", params=PERIOD | {"channel": "phone"}))
        moved = await _ok(
            await manager.get(f"{B}/reports", params=PERIOD | {"channel": "transfer"})
        )
        at_c02 = await _ok(await manager.get(f"{B}/reports", params=PERIOD | {"counter": "c02"}))
    assert (phone["kpis"]["visits"], phone["kpis"]["cancelled"]) == (1, 1)
    assert (moved["kpis"]["visits"], moved["kpis"]["not_served"]) == (1, 1)
    assert at_c02["source"] == "facts"
    assert (at_c02["kpis"]["visits"], at_c02["kpis"]["no_show"], at_c02["kpis"]["served"]) == (
        2,
        1,
        1,
    )
    assert at_c02["kpis"]["mean_wait_s"] == (660 + 1860) / 2

    # An operator sees their own figures only: the visits they called.
    async with day_server.client("operator") as operator:
        own = await _ok(await operator.get(f"{B}/reports", params=PERIOD))
        other = await operator.get(f"{B}/reports", params=PERIOD | {"operator": MANAGER})
    assert (own["kpis"]["visits"], own["kpis"]["served"], own["kpis"]["transferred"]) == (3, 1, 1)
    assert [(row["counter_id"], row["operator"]) for row in own["counters"]] == [("c01", OPERATOR)]
    assert (other.status_code, other.json()["code"]) == (403, "forbidden_operator")

    # Exports hold the same numbers as the JSON.
    async with day_server.client("manager") as manager:
        kpi_csv = await manager.get(f"{B}/reports.csv", params=PERIOD)
        service_csv = await manager.get(f"{B}/reports.csv", params=PERIOD | {"table": "services"})
        workbook = await manager.get(f"{B}/reports.xlsx", params=PERIOD)
    assert kpi_csv.headers["content-type"].startswith("text/csv")
    rows = {row["metric"]: row for row in csv.DictReader(io.StringIO(kpi_csv.text))}
    for name, value in kpis.items():
        assert _number(rows[name]["value"]) == value, name
    service_rows = list(csv.DictReader(io.StringIO(service_csv.text)))
    assert {r["service_id"]: int(r["visits"]) for r in service_rows} == {
        s: row["visits"] for s, row in by_service.items()
    }
    book = load_workbook(io.BytesIO(workbook.content), read_only=True)
    sheet = list(book["kpis"].iter_rows(values_only=True))
    assert sheet[0] == ("metric", "value", "previous")
    assert {row[0]: row[1] for row in sheet[1:]} == kpis
    counter_sheet = list(book["counters"].iter_rows(values_only=True))
    header = counter_sheet[0]
    assert [dict(zip(header, row, strict=True)) for row in counter_sheet[1:]] == report["counters"]


def _number(text: str) -> float | None:
    return None if text == "" else float(text)


async def test_a_rebuild_from_the_event_log_gives_identical_rows_and_nothing_counts_twice(
    day_server: LiveServer, clock: Clock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    await _hand_built_day(day_server, clock)
    await asyncio.to_thread(_wait_until_projected, day_server)
    projected = _report_rows(day_server)
    assert len(projected["visit_facts"]) == 6
    # The network's daily rows are the branch's without its id (no other branch moved).
    assert projected["network_days"] == [row[1:] for row in projected["visit_days"]]
    assert projected["network_days"]

    # Replayed: the same events offered again are at or below the cursor, and skipped.
    rigi = day_server.rigi
    assert day_server.run(catch_up(rigi.database, rigi.catalog, BRANCH)) == 0
    assert _report_rows(day_server) == projected

    # Rebuilt by the command, while the server runs.
    settings = day_server.settings
    monkeypatch.setenv("RIGI_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("RIGI_CONFIG", str(settings.config))
    monkeypatch.setenv("RIGI_DATA_DIR", str(tmp_path))
    assert await asyncio.to_thread(queue_server, ["facts", "rebuild", "--branch", BRANCH]) == 0
    assert _report_rows(day_server) == projected

    # Rebuilt one event per transaction: batch boundaries change nothing.
    database = Database(settings.resolved_database_url)
    try:
        await rebuild(database, rigi.catalog, [BRANCH])
        assert _report_rows(day_server) == projected
        await database.transaction(lambda conn: reset_branch(conn, BRANCH))
        assert await catch_up(database, rigi.catalog, BRANCH, limit=1) > 0
    finally:
        await database.dispose()
    assert _report_rows(day_server) == projected


async def test_reports_are_refused_to_anonymous_other_branches_and_non_admins_network_wide(
    sqlite_server: LiveServer,
) -> None:
    server = sqlite_server
    outcomes = {}
    for role, branch, path in (
        (None, BRANCH, f"{B}/reports"),
        ("operator", "otherhall", f"{B}/reports"),
        ("manager", "otherhall", f"{B}/reports.csv"),
        ("manager", "otherhall", f"{B}/reports.xlsx"),
        ("kiosk", BRANCH, f"{B}/reports"),
        ("display", BRANCH, f"{B}/reports"),
        ("manager", BRANCH, "/api/v1/reports"),
        ("operator", BRANCH, "/api/v1/reports.csv"),
        ("manager", BRANCH, f"{B}/reports"),
        ("admin", BRANCH, "/api/v1/reports.xlsx"),
        ("admin", BRANCH, f"{B}/reports"),
    ):
        async with server.client(role, branch) as client:
            response = await client.get(path)
        body = response.json() if response.headers["content-type"] == "application/json" else {}
        outcomes[role, branch, path] = (response.status_code, body.get("code"))
    assert outcomes == {
        (None, BRANCH, f"{B}/reports"): (401, "unauthorized"),
        ("operator", "otherhall", f"{B}/reports"): (403, "forbidden_branch"),
        ("manager", "otherhall", f"{B}/reports.csv"): (403, "forbidden_branch"),
        ("manager", "otherhall", f"{B}/reports.xlsx"): (403, "forbidden_branch"),
        ("kiosk", BRANCH, f"{B}/reports"): (403, "forbidden_role"),
        ("display", BRANCH, f"{B}/reports"): (403, "forbidden_role"),
        ("manager", BRANCH, "/api/v1/reports"): (403, "forbidden_role"),
        ("operator", BRANCH, "/api/v1/reports.csv"): (403, "forbidden_role"),
        ("manager", BRANCH, f"{B}/reports"): (200, None),
        ("admin", BRANCH, "/api/v1/reports.xlsx"): (200, None),
        ("admin", BRANCH, f"{B}/reports"): (200, None),
    }
    async with server.client("manager") as manager:
        backwards = await manager.get(f"{B}/reports", params={"from": DAY, "to": "2026-03-01"})
        unknown = await manager.get(f"{B}/reports", params={"colour": "red"})
    assert (backwards.status_code, backwards.json()["code"]) == (422, "bad_period")
    assert (unknown.status_code, unknown.json()["code"]) == (422, "bad_report_query")
