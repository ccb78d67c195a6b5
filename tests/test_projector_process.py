"""The reports projector in a process of its own (PostgreSQL, `reporting/process.py`): its
facts and rollups equal a rebuild from the event log after a run, after its process is killed
mid-stream (another takes over), after the server restarts between two runs of visits, and with
two servers (two projector processes) working the same branches at once; every ticket is
counted exactly once."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, select

from queue_server.domain.tickets import TicketAction
from queue_server.store.counter_actions import CounterMode
from queue_server.store.reports.runner import branches_behind, rebuild
from queue_server.store.schema import tickets
from queue_server.store.schema_reports import (
    BRANCH_ROWS,
    network_days,
    network_hours,
)
from tests.databases import database_for
from tests.support import LiveServer, test_settings

pytestmark = pytest.mark.postgres

BRANCHES = ("testhall", "otherhall")
CHILD = b"queue_server.reporting.process"
SETTLE_S = 40.0  # the projector gathers 1 s; a new process starts in a few (a loaded machine)
# the network's rows are moved by every branch: compared whole, beside each branch's own rows
TABLES = (*BRANCH_ROWS, network_days, network_hours)


def _projector_pids() -> set[int]:
    """This test process's projector children (one per running server)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        if parent == os.getpid() and CHILD in command:
            found.add(int(entry.name))
    return found


def _wait_for(what: str, outcome: Callable[[], Any]) -> Any:
    """Poll until `outcome()` is truthy (and return it), failing after SETTLE_S."""
    deadline = time.monotonic() + SETTLE_S
    while not (result := outcome()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {SETTLE_S:.0f} s: {what}")
        time.sleep(0.1)
    return result


async def _visits(live: LiveServer, per_branch: int) -> None:
    """At each branch: tickets issued, the first two called, one served, one a no-show."""
    store, catalog = live.rigi.store, live.rigi.catalog
    for branch in BRANCHES:
        services = catalog.branch_services(branch)
        counter = catalog.branch(branch).counters[0].id
        await store.set_counter_mode(branch, counter, CounterMode.OPEN, actor="test")
        for number in range(per_branch):
            await store.issue_ticket(branch, services[number % len(services)].id, actor="test")
        await store.call_next(branch, counter, actor="test")
        await store.act_on_current(branch, counter, TicketAction.START, actor="test")
        await store.act_on_current(branch, counter, TicketAction.FINISH, actor="test")
        await store.call_next(branch, counter, actor="test")
        await store.act_on_current(branch, counter, TicketAction.NO_SHOW, actor="test")


def _rows(conn: Connection) -> dict[str, Any]:
    rows: dict[str, Any] = {
        table.name: sorted(tuple(row) for row in conn.execute(select(table))) for table in TABLES
    }
    rows["tickets"] = conn.execute(select(func.count()).select_from(tickets)).scalar()
    return rows


def _settled(live: LiveServer) -> dict[str, Any] | None:
    """The report rows once every branch's cursor is at its head and every ticket has a fact."""

    async def read() -> dict[str, Any] | None:
        async with live.rigi.database.read() as conn:
            if await branches_behind(conn):
                return None
        rows = await live.rigi.database.reading(_rows)
        return rows if len(rows["visit_facts"]) == rows["tickets"] else None

    result: dict[str, Any] | None = live.run(read())
    return result


def _assert_equal_to_a_rebuild(live: LiveServer, tickets_issued: int) -> None:
    settled = _wait_for("facts for every ticket, every cursor at its head", lambda: _settled(live))
    assert settled["tickets"] == tickets_issued
    assert len({fact[0] for fact in settled["visit_facts"]}) == tickets_issued  # once each
    database, catalog = live.rigi.database, live.rigi.catalog
    live.run(rebuild(database, catalog, BRANCHES))
    assert _wait_for("rows after the rebuild", lambda: _settled(live)) == settled


def _server(tmp_path: Path, url: str) -> LiveServer:
    return LiveServer(test_settings(url, tmp_path)).start()


def test_the_projector_runs_in_its_own_process_and_its_rows_equal_a_rebuild(
    tmp_path: Path,
) -> None:
    live = _server(tmp_path, database_for("postgres", tmp_path))
    try:
        children = _wait_for("a projector process", _projector_pids)
        assert len(children) == 1 and os.getpid() not in children
        live.run(_visits(live, 5))
        _assert_equal_to_a_rebuild(live, 10)
    finally:
        live.stop()
    assert _wait_for("the projector ended with its server", lambda: not _projector_pids())


def test_a_projector_killed_mid_stream_is_replaced_and_nothing_is_lost_or_counted_twice(
    tmp_path: Path,
) -> None:
    live = _server(tmp_path, database_for("postgres", tmp_path))
    try:
        (first,) = _wait_for("a projector process", _projector_pids)
        live.run(_visits(live, 4))
        os.kill(first, signal.SIGKILL)  # within its 1 s gathering, or in its batch
        live.run(_visits(live, 3))  # handed to a dead process: found by the next one
        (second,) = _wait_for("another projector process", lambda: _projector_pids() - {first})
        live.run(_visits(live, 2))
        _assert_equal_to_a_rebuild(live, 18)
        assert _projector_pids() == {second}
    finally:
        live.stop()


def test_a_restarted_server_goes_on_from_the_cursors(tmp_path: Path) -> None:
    url = database_for("postgres", tmp_path)
    live = _server(tmp_path / "one", url)
    try:
        live.run(_visits(live, 4))  # stopped at once: some events are not applied yet
    finally:
        live.stop()
    live = _server(tmp_path / "two", url)
    try:
        live.run(_visits(live, 3))
        _assert_equal_to_a_rebuild(live, 14)
    finally:
        live.stop()


def test_two_servers_project_the_same_branches_without_counting_twice(tmp_path: Path) -> None:
    url = database_for("postgres", tmp_path)
    one = _server(tmp_path / "one", url)
    two = _server(tmp_path / "two", url)
    try:
        assert _wait_for("two projectors", lambda: len(_projector_pids()) == 2)
        rounds = 3
        for _ in range(rounds):  # both servers' events reach both processes' cursors
            one.run(_visits(one, 3))
            two.run(_visits(two, 2))
        _assert_equal_to_a_rebuild(one, rounds * 2 * (3 + 2))
    finally:
        two.stop()
        one.stop()
