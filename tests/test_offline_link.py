"""A Community Centre's node and two central processes (PostgreSQL + Redis) on loopback, with a
TCP link between them that the test cuts and restores: the centre keeps issuing and calling
while cut off, and afterwards central holds exactly the node's events, through kill -9 of the
node and of a central process during the catch-up (docs/offline.md)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.offline_link import (
    NODE_BRANCH,
    LinkProxy,
    Process,
    base_env,
    central_events,
    central_facts,
    central_tickets,
    national_snapshot,
    node_events,
    node_facts,
    node_floor,
    node_staff,
    node_tickets,
    node_token,
    signed_in,
    stopping,
)
from tests.support import (
    POSTGRES_ENV,
    REDIS_ENV,
    need_service,
    reset_postgres,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

B = f"/api/v1/branches/{NODE_BRANCH}"
COUNTERS = ("c01", "c02", "c03")
ISSUED_WHILE_CUT = 60  # with the calls and visits, ~130 events: well under a minute
VISITS_WHILE_CUT = 20
ISSUED_BEFORE_KILLS = 100
CATCH_UP_BATCH = "20"  # small batches, so kill -9 lands in the middle of a catch-up
CONVERGE_TIMEOUT_S = 40.0  # a bound so a broken build fails instead of hanging
MANAGER = "manager-node"
CENTRAL_ADMIN = "admin-central"
OFFERED = ["psda", "national_archives", "napr", "ssa", "alsc"]  # config/branches/cc01-…
ENABLED_WHILE_CUT = "magticom"  # a telecom's desk, enabled for the centre at central


async def _offered_agencies(node: httpx.AsyncClient) -> set[str]:
    """What the node's kiosk offers: the agencies of its boot data (what it redraws from)."""
    boot = await node.get(f"/boot/{NODE_BRANCH}.json")
    assert boot.status_code == 200, boot.text
    return {agency["id"] for agency in boot.json()["agencies"]}


async def _offered_at_node(node: httpx.AsyncClient, agency: str) -> None:
    deadline = asyncio.get_running_loop().time() + CONVERGE_TIMEOUT_S
    while agency not in await _offered_agencies(node):
        assert asyncio.get_running_loop().time() < deadline, f"{agency} never came down"
        await asyncio.sleep(0.2)


async def _converged(database_url: str, node_file: Path) -> list[tuple[int, str, str, Any]]:
    """Wait until central holds the node's log; return it."""
    deadline = asyncio.get_running_loop().time() + CONVERGE_TIMEOUT_S
    while True:
        node = node_events(node_file)
        central = await central_events(database_url)
        if central == node:
            return central
        if asyncio.get_running_loop().time() > deadline:
            missing = {e[0] for e in node} - {e[0] for e in central}
            raise AssertionError(
                f"central has {len(central)} events, the node {len(node)}; missing {missing}"
            )
        await asyncio.sleep(0.2)


async def _reports_agree(database_url: str, node_file: Path) -> None:
    """Central's reports of the centre (what the national view reads) equal the node's own."""
    deadline = asyncio.get_running_loop().time() + CONVERGE_TIMEOUT_S
    while (node := node_facts(node_file)) != (central := await central_facts(database_url)):
        assert asyncio.get_running_loop().time() < deadline, (len(node), len(central))
        await asyncio.sleep(0.5)
    assert len(node) == 10 + ISSUED_WHILE_CUT


async def _central_holds(database_url: str, count: int) -> None:
    """Wait until central holds `count` of the centre's events (another process writes them)."""
    deadline = asyncio.get_running_loop().time() + CONVERGE_TIMEOUT_S
    while len(await central_events(database_url)) < count:
        assert asyncio.get_running_loop().time() < deadline, f"central never held {count}"
        await asyncio.sleep(0.01)


async def _national_view_agrees(url: str, admin: httpx.AsyncClient, node_file: Path) -> None:
    """Central's national row of the centre shows the node's own floor (from the replicated
    events) and the node's link, caught up."""
    snapshot = await national_snapshot(url, admin)
    row = snapshot["rows"][NODE_BRANCH]
    waiting, oldest, open_now = node_floor(node_file)
    assert (
        (row["waiting"], row["counters_open"])
        == (waiting, open_now)
        == (
            10 + ISSUED_WHILE_CUT - VISITS_WHILE_CUT,
            len(COUNTERS),
        )
    )
    assert oldest is not None
    waited = (datetime.fromisoformat(snapshot["at"]) - oldest).total_seconds()
    assert abs(row["longest_wait_s"] - waited) <= 1
    link = row["link"]
    assert link["connected"] is True
    assert (link["last_event"]["seq"], link["lag_events"]) == (len(node_events(node_file)), 0)


async def _tickets_agree(
    central_url: str, database_url: str, node_url: str, node_file: Path
) -> None:
    """Central's ticket rows of the centre are the node's (same status, number, visit, counter,
    call order), so a citizen's phone link answers at central as at the centre."""
    held = await central_tickets(database_url)
    assert held == node_tickets(node_file)
    waiting = [row[0] for row in held if row[1] == "waiting"]
    async with httpx.AsyncClient(timeout=30) as phone:
        for ticket_id in (waiting[0], waiting[-1]):
            at_central = (await phone.get(f"{central_url}/api/v1/tickets/{ticket_id}")).json()
            at_node = (await phone.get(f"{node_url}/api/v1/tickets/{ticket_id}")).json()
            keys = ("label", "status", "people_ahead")
            assert [at_central[k] for k in keys] == [at_node[k] for k in keys]


def _exactly_once(log: list[tuple[int, str, str, Any]]) -> None:
    seqs = [seq for seq, *_ in log]
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate
    issued = [e[3]["ticket"]["id"] for e in log if e[2] == "ticket.issued"]
    assert len(issued) == len(set(issued))


async def _issue(node: httpx.AsyncClient, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        answer = await node.post(B + "/tickets", json={"service_id": "id_card"})
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


async def _serve_visits(node: httpx.AsyncClient, count: int) -> None:
    for number in range(count):
        counter = f"{B}/counters/{COUNTERS[number % len(COUNTERS)]}"
        for action, body in (("call-next", {}), ("start", {}), ("finish", {"outcome": "served"})):
            answer = await node.post(f"{counter}/{action}", json=body)
            assert answer.status_code == 200, answer.text


@pytest.fixture
def database_url() -> str:
    url = need_service(POSTGRES_ENV, "PostgreSQL")
    reset_postgres(url)
    return url


async def test_a_centre_serves_through_a_cut_link_and_central_ends_with_exactly_its_events(
    tmp_path: Path, database_url: str
) -> None:
    redis_url = need_service(REDIS_ENV, "Redis")
    central_env = base_env(tmp_path / "central", database_url=database_url, bus_url=redis_url,
                           node_stale_s="1.5")  # fmt: skip
    token = await node_token(database_url, CENTRAL_ADMIN)
    centrals = [Process(central_env), Process(central_env)]
    proxy = await LinkProxy([c.port for c in centrals]).start()
    node_dir = tmp_path / "node"
    node_file = node_dir / "rigi.sqlite3"
    node_env = base_env(node_dir, node_central_url=proxy.url, node_token=token,
                        node_branch=NODE_BRANCH, node_heartbeat_s="0.5",
                        node_batch_events=CATCH_UP_BATCH)  # fmt: skip
    await node_staff(node_file, MANAGER)
    node = Process(node_env)
    with stopping([*centrals, node]):
        await asyncio.gather(*(p.start() for p in [*centrals, node]))
        staff = await signed_in(node.url, MANAGER)
        admin_view = httpx.AsyncClient(base_url=centrals[1].url, timeout=30)
        central_staff = await signed_in(centrals[1].url, CENTRAL_ADMIN)
        try:
            for counter in COUNTERS:
                assert (await staff.post(f"{B}/counters/{counter}/open")).status_code == 200
            await _issue(staff, 10)
            await _converged(database_url, node_file)

            # Central may not write the centre's queue; the node's token no other branch.
            # (A central administrator, not a phone: a phone would need the hall's pass first.)
            refused = await central_staff.post(B + "/tickets", json={"service_id": "id_card"})
            assert (refused.status_code, refused.json()["code"]) == (409, "branch_node_owned")
            elsewhere = await admin_view.post(
                "/api/v1/nodes/tbilisi/events", content=b"{}",
                headers={"Authorization": f"Bearer {token}"},
            )  # fmt: skip
            assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden_branch")

            proxy.cut()
            await _issue(staff, ISSUED_WHILE_CUT)
            await _serve_visits(staff, VISITS_WHILE_CUT)
            link = (await staff.get("/api/v1/node/link")).json()
            assert link["connected"] is False
            assert len(await central_events(database_url)) < len(node_events(node_file))
            # Central stores and audits an edit of the centre without touching its stream...
            enabled = await central_staff.post(
                B + "/organisation", json={"offers": [*OFFERED, ENABLED_WHILE_CUT]}
            )
            assert enabled.status_code == 200, enabled.text
            assert ENABLED_WHILE_CUT not in await _offered_agencies(staff)

            proxy.restore()
            # ...and the node takes it when the link returns, and tells its own feeds.
            await _offered_at_node(staff, ENABLED_WHILE_CUT)
            log = await _converged(database_url, node_file)
            _exactly_once(log)
            assert [e[2] for e in log].count("organisation.changed") == 1
            assert sum(e[2] == "ticket.finished" for e in log) == VISITS_WHILE_CUT
            await _reports_agree(database_url, node_file)
            await _national_view_agrees(centrals[1].url, central_staff, node_file)
            await _tickets_agree(centrals[0].url, database_url, node.url, node_file)

            # kill -9 of a central process and then of the node, in the middle of catching up
            proxy.cut()
            await _issue(staff, ISSUED_BEFORE_KILLS)
            held = len(await central_events(database_url))
            proxy.restore()
            await _central_holds(database_url, held + int(CATCH_UP_BATCH))
            centrals[0].kill()
            await _central_holds(database_url, held + 3 * int(CATCH_UP_BATCH))
            node.kill()
            await staff.aclose()
            await node.start()
            staff = await signed_in(node.url, MANAGER)
            await _issue(staff, 5)  # the restarted node serves at once
            log = await _converged(database_url, node_file)
            _exactly_once(log)
            assert sum(e[2] == "ticket.issued" for e in log) == (
                10 + ISSUED_WHILE_CUT + ISSUED_BEFORE_KILLS + 5
            )
        finally:
            await staff.aclose()
            await central_staff.aclose()
            await admin_view.aclose()
            await proxy.close()
