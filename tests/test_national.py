"""The national view at its real size: the shipped network (the Tbilisi hall and 85 Community
Centres) with hundreds waiting. Over one WebSocket an administrator sees every branch, and a call
in any branch reaches the row of that branch; in Chromium the page shows all 86 branches grouped
by region, follows a call made elsewhere, and passes axe in Georgian and English. Who may open
the feed at all is in the permission matrix (tests/test_access.py)."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from queue_server.domain.national import ALERTS
from queue_server.realtime.national import COALESCE_S, NationalFloor
from queue_server.settings import SHIPPED_CONFIG
from queue_server.store.counter_actions import CounterMode
from tests.pages.browser import launch, serious_violations, with_pages
from tests.support import PASSWORD, LiveServer, test_settings

BRANCHES = 86
TICKETS = 400  # spread over every branch, the hall taking the most
HALL = "tbilisi"
WAIT_S = 20.0  # a hang guard, not a timing assertion
FACTS_SHOWN_WITHIN_MS = 8_000  # well under the floor's full refresh (15 s)


class Network(LiveServer):
    """The shipped network's server, knowing how many tickets each branch was given."""

    issued: Counter[str]
    centres: list[str]


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    data = tmp_path_factory.mktemp("national")
    settings = test_settings(
        f"sqlite+aiosqlite:///{data / 'rigi.sqlite3'}", data, config=SHIPPED_CONFIG
    )
    live = Network(settings)
    with_pages(live).start()
    catalog = live.rigi.catalog
    centres = sorted(b for b in catalog.branches if b != HALL)
    pick = random.Random(15)
    # Every branch has someone waiting; the hall a third of all.
    where = [*catalog.branches, *pick.choices(centres, k=TICKETS // 2)]
    where += [HALL] * (TICKETS - len(where))

    async def seed() -> Counter[str]:
        issued: Counter[str] = Counter()
        for branch in where:
            services = catalog.branch_services(branch)
            await live.rigi.store.issue_ticket(branch, pick.choice(services).id, actor="test")
            issued[branch] += 1
        for counter in catalog.branch(HALL).counters[:6]:
            await live.rigi.store.set_counter_mode(HALL, counter.id, CounterMode.OPEN, actor="test")
            await live.rigi.store.call_next(HALL, counter.id, actor="test")
            issued[HALL] -= 1
        return issued

    live.issued = live.run(seed())
    live.centres = centres
    yield live
    live.stop()


async def _national(live: LiveServer) -> ClientConnection:
    async with live.client("admin") as admin:
        cookie = admin.cookies["rigi_session"]
    websocket = await connect(
        f"{live.ws_url}/ws/national",
        additional_headers={"Cookie": f"rigi_session={cookie}"},
        compression=None,
    )
    await websocket.send(json.dumps({"type": "hello"}))
    return websocket


async def _frame(websocket: ClientConnection, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads(await websocket.recv())
        if message["type"] == kind:
            return message  # type: ignore[no-any-return]


def _call_at(live: LiveServer, branch: str) -> None:
    """Open a branch's first counter and call its next ticket, on the server's own loop."""
    counter = live.rigi.catalog.branch(branch).counters[0].id
    live.run(_open_and_call(live, branch, counter))


async def _open_and_call(live: LiveServer, branch: str, counter: str) -> None:
    await live.rigi.store.set_counter_mode(branch, counter, CounterMode.OPEN, actor="test")
    await live.rigi.store.call_next(branch, counter, actor="test")


async def test_one_feed_shows_every_branch_and_a_call_in_another_branch(
    network: Network,
) -> None:
    async with asyncio.timeout(WAIT_S):
        websocket = await _national(network)
        try:
            snapshot = await _frame(websocket, "snapshot")
            rows = snapshot["rows"]
            assert len(rows) == BRANCHES
            assert {b: r["waiting"] for b, r in rows.items()} == dict(network.issued)
            totals = snapshot["totals"]
            assert totals["waiting"] == sum(network.issued.values())
            assert totals["branches"] == BRANCHES and sum(totals["alerts"].values()) == BRANCHES
            assert rows[HALL]["counters_open"] == 6
            # A centre with people waiting and no counter open says so; nobody's name anywhere.
            centre = network.centres[0]
            assert rows[centre]["alert"] == "no_counter" and rows[centre]["link"] is None
            assert set(r["alert"] for r in rows.values()) <= set(ALERTS)

            _call_at(network, centre)
            row = rows[centre]
            while row["waiting"] == rows[centre]["waiting"]:
                update = await _frame(websocket, "update")
                row = update["rows"].get(centre, row)
            assert row["waiting"] == network.issued[centre] - 1
            assert row["counters_open"] == 1 and row["alert"] != "no_counter"
            assert row["seq"] > rows[centre]["seq"]
            assert update["totals"]["waiting"] == totals["waiting"] - 1
        finally:
            await websocket.close()
        network.issued[centre] -= 1


async def test_a_manager_and_an_operator_are_refused_the_national_feed(network: Network) -> None:
    for role in ("manager", "operator"):
        async with network.client(role, HALL) as person:
            cookie = person.cookies["rigi_session"]
        async with asyncio.timeout(WAIT_S), connect(
            f"{network.ws_url}/ws/national", additional_headers={"Cookie": f"rigi_session={cookie}"}
        ) as websocket:  # fmt: skip
            await websocket.send(json.dumps({"type": "hello"}))
            with pytest.raises(ConnectionClosed) as closed:
                await websocket.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403, role


def _signing_in(
    browser: Any, network: Network, username: str, language: str, init_script: str = ""
) -> tuple[Any, Any, list[str]]:
    """A wall-sized page of /national in `language` whose sign-in form was sent; the page's
    errors are collected in the list returned."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale=f"{language}-GE")
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error, seen=errors: seen.append(str(error)))
    page.goto(f"{network.url}/national?lang={language}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#signin-submit")
    return context, page, errors


def test_the_page_shows_every_branch_by_region_and_follows_a_call_elsewhere(
    network: Network, tmp_path: Path
) -> None:
    shots = Path(os.environ.get("RIGI_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    admin = network.user("admin", name="central-office")
    for browser in launch():
        for language in ("ka", "en"):
            context, page, errors = _signing_in(browser, network, admin, language)
            page.wait_for_selector("#total-waiting")
            assert page.locator("tr.branch-row").count() == BRANCHES
            assert page.locator("table.region").count() == 11  # Georgia's regions with a branch
            waiting = int(page.inner_text("#total-waiting"))
            assert waiting == sum(network.issued.values())
            hall = page.locator(f"#row-{HALL}")
            assert hall.locator("a").get_attribute("href") == f"/live/{HALL}"
            if language == "ka":  # docs/screenshots/national-ka.png is this, in 256 colours
                page.screenshot(path=str(shots / "national-ka.png"))
            assert serious_violations(page) == [], language

            centre = network.centres[1 if language == "ka" else 2]
            before = int(page.inner_text(f"#row-{centre} td.waiting"))
            _call_at(network, centre)
            page.wait_for_function(
                "([id, n]) => document.querySelector(`#row-${id} td.waiting`)?.textContent == n",
                arg=[centre, str(before - 1)],
                timeout=WAIT_S * 1000,
            )
            network.issued[centre] -= 1
            page.wait_for_function(
                "n => document.querySelector('#total-waiting').textContent == n",
                arg=str(waiting - 1),
                timeout=WAIT_S * 1000,
            )
            page.click(f"#row-{centre} a")
            page.wait_for_url(f"**/live/{centre}")
            assert errors == [], errors
            context.close()


def test_a_change_waits_only_for_its_own_branchs_spell() -> None:
    """A branch read a moment ago waits out COALESCE_S; a change at another is read at once."""
    floor = NationalFloor(rigi=None)  # type: ignore[arg-type]  # the schedule needs no server
    floor._read_at["busy"] = 100.0
    floor._dirty |= {"busy", "quiet"}
    assert floor._due(100.01) == {"quiet"}
    floor._dirty.discard("quiet")  # read then, as `_read_due` does
    floor._read_at["quiet"] = 100.01
    assert floor._next_due() == 100.0 + COALESCE_S
    assert floor._due(100.0 + COALESCE_S) == {"busy"}


def test_a_read_that_ends_after_a_newer_one_does_not_undo_it() -> None:
    """The read of every branch runs beside the changed branches' reads and may end last."""
    floor = NationalFloor(rigi=None)  # type: ignore[arg-type]
    floor.rows["hall"] = {"epoch": "e1", "seq": 8, "waiting": 5}
    assert not floor._newer("hall", {"epoch": "e1", "seq": 7, "waiting": 4})  # began before
    assert not floor._newer("hall", {"epoch": "e1", "seq": 8, "waiting": 5})  # nothing new
    assert floor._newer("hall", {"epoch": "e1", "seq": 8, "waiting": 5, "longest_wait_s": 60})
    assert floor._newer("hall", {"epoch": "e2", "seq": 1, "waiting": 0})  # a new epoch
    assert floor._newer("centre", {"epoch": "e1", "seq": 1, "waiting": 1})


def _boot(html: str) -> dict[str, Any]:
    start = html.index('id="rigi-boot"')
    text = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return json.loads(text)  # type: ignore[no-any-return]


async def test_the_page_carries_every_row_for_an_administrator_only(network: Network) -> None:
    async with network.client("admin") as admin:
        page = await admin.get("/national?lang=ka")
    assert page.status_code == 200
    snapshot = json.loads(_boot(page.text)["snapshot"])
    assert snapshot["type"] == "snapshot" and len(snapshot["rows"]) == BRANCHES
    assert {b: r["waiting"] for b, r in snapshot["rows"].items()} == dict(network.issued)
    assert snapshot["totals"]["waiting"] == sum(network.issued.values())
    async with network.client(hall_pass=False) as anonymous:
        assert "snapshot" not in _boot((await anonymous.get("/national")).text)
    async with network.client("manager", HALL) as manager:
        refused = await manager.get("/national")
    assert refused.status_code == 403 and "snapshot" not in _boot(refused.text)


# A WebSocket that never opens and delivers only the frames the test gives it.
HELD_FEED = """
window.heldFeeds = [];
window.WebSocket = class {
  static OPEN = 1;
  constructor(url) {
    Object.assign(this, { url, readyState: 0, listeners: {} });
    heldFeeds.push(this);
  }
  addEventListener(type, listener) { (this.listeners[type] ??= []).push(listener); }
  send() {}
  close() {}
  deliver(frame) { for (const listener of this.listeners.message ?? []) listener({ data: frame }); }
};
"""


def test_the_page_paints_from_itself_and_a_frame_redraws_only_its_rows(network: Network) -> None:
    admin = network.user("admin", name="wall-screen")
    centre = network.centres[3]
    for browser in launch():
        context, page, errors = _signing_in(browser, network, admin, "ka", HELD_FEED)
        page.wait_for_selector("#regions")
        page.goto(f"{network.url}/national?lang=ka")  # signed in: served with every row
        # Every row and the totals with no frame from the feed at all.
        assert page.locator("tr.branch-row td.waiting").count() == BRANCHES
        assert int(page.inner_text("#total-waiting")) == sum(network.issued.values())
        assert int(page.inner_text(f"#row-{centre} td.waiting")) == network.issued[centre]
        assert page.evaluate("heldFeeds.length") == 1  # opened at once, beside the session
        page.evaluate("document.querySelectorAll('tr.branch-row').forEach(r => r.kept = true)")
        frame = json.loads(_boot(page.content())["snapshot"])
        frame["rows"][centre] = frame["rows"][centre] | {
            "waiting": network.issued[centre] + 5,
            "seq": frame["rows"][centre]["seq"] + 1,
        }
        frame["totals"]["waiting"] += 5
        page.evaluate("frame => heldFeeds[0].deliver(frame)", json.dumps(frame))
        assert int(page.inner_text(f"#row-{centre} td.waiting")) == network.issued[centre] + 5
        assert int(page.inner_text("#total-waiting")) == sum(network.issued.values()) + 5
        kept = page.evaluate(
            "[...document.querySelectorAll('tr.branch-row')].filter(r => r.kept).map(r => r.id)"
        )
        assert sorted(kept) == sorted(f"row-{b}" for b in network.issued if b != centre)
        assert errors == [], errors
        context.close()


def test_a_manager_is_told_the_page_is_for_administrators(network: Network) -> None:
    manager = network.user("manager", HALL)
    for browser in launch():
        page = browser.new_page()
        page.goto(f"{network.url}/national?lang=en")
        page.fill("#username", manager)
        page.fill("#password", PASSWORD)
        page.click("#signin-submit")
        page.wait_for_selector("#admins-only")
        assert page.locator("tr.branch-row").count() == 0
        response = page.goto(f"{network.url}/national?lang=en")
        assert response is not None and response.status == 403
        page.wait_for_selector("#admins-only")


def test_a_branch_shows_its_worst_problem_and_the_queue_furthest_past_its_target() -> None:
    from datetime import UTC, datetime, timedelta

    from queue_server.domain.national import PrinterHealth, ServiceQueue, branch_row

    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    # 20 min against a 30 min target (0.67) and 12 min against a 10 min target (1.2): the
    # second is shown, though it is the shorter wait.
    long_ok = ServiceQueue("registry", 3, now - timedelta(minutes=20), 1800)
    short_over = ServiceQueue("id_card", 2, now - timedelta(minutes=12), 600)
    near = ServiceQueue("id_card", 1, now - timedelta(minutes=9), 600)
    paper_out = PrinterHealth(connected=True, online=True, paper="out")
    agent_gone = PrinterHealth(connected=False, online=None, paper="ok")
    fine = PrinterHealth(connected=True, online=True, paper="near_end")

    over = branch_row([long_ok, short_over], {"open": 1}, 4, [paper_out], now)
    assert (over["alert"], over["waiting"]) == ("over_target", 5)
    assert over["longest_service"] == "id_card"
    assert (over["longest_wait_s"], over["longest_target_s"]) == (720, 600)
    assert over["printers_paper_out"] == 1 and over["printers_offline"] == 0
    unattended = branch_row([near], {"paused": 2}, 4, [], now)
    assert (unattended["alert"], unattended["counters_paused"]) == ("no_counter", 2)
    assert branch_row([near], {"open": 1}, 4, [agent_gone], now)["alert"] == "printer"
    assert branch_row([near], {"open": 1}, 4, [fine], now)["alert"] == "near_target"
    assert branch_row([], {"open": 1}, 4, [fine], now)["alert"] == "ok"
    assert branch_row([], {}, 4, [], now)["alert"] == "closed"


def test_the_page_shows_a_centre_nodes_link_and_its_counters_from_the_replicated_events(
    network: Network,
) -> None:
    """Last of the module: it hands a centre to a branch node, whose events central mirrors."""
    from datetime import UTC, datetime, timedelta

    import httpx

    from queue_server.replication.routes import make_node_token
    from queue_server.replication.wire import encode_batch

    centre = network.centres[-1]
    counter = network.rigi.catalog.branch(centre).counters[0]
    _, token = network.run(make_node_token(network.rigi.database, centre, "node", "admin:test"))
    opened_at = datetime.now(UTC) - timedelta(seconds=90)
    data = {"branch": centre, "counter_id": counter.id, "counter_number": counter.number,
            "state": "open", "pause_reason": None, "current_ticket_id": None}  # fmt: skip
    # The node's first event reaches central; the node says it already holds four more.
    body = encode_batch(
        [("node-epoch", 1, "counter.opened", opened_at, json.dumps(data), "user:op")],
        (5, opened_at + timedelta(seconds=60)),
        {"node-epoch": 1},
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
               "Content-Type": "application/json"}  # fmt: skip
    sent = httpx.post(f"{network.url}/api/v1/nodes/{centre}/events", content=body, headers=headers)
    assert sent.status_code == 200, sent.text
    admin = network.user("admin", name="central-office")
    for browser in launch():
        context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="ka-GE")
        page = context.new_page()
        page.goto(f"{network.url}/national?lang=ka")
        page.fill("#username", admin)
        page.fill("#password", PASSWORD)
        page.click("#signin-submit")
        link = page.locator(f"#row-{centre} .link.up")
        link.wait_for(timeout=WAIT_S * 1000)
        assert "4 მოვლენით / 60 წმ-ით" in link.inner_text()
        counters = page.locator(f"#row-{centre} td.num").nth(2).inner_text()
        assert counters == f"1 / {len(network.rigi.catalog.branch(centre).counters)}"
        assert serious_violations(page) == []

        # A citizen takes a ticket at the centre: its row counts them once central holds the
        # event (its ticket row is kept with it), not at the next full refresh.
        waiting = page.locator(f"#row-{centre} td.waiting")
        before = int(waiting.inner_text())
        service = network.rigi.catalog.branch_services(centre)[0].id
        issued_at = datetime.now(UTC)
        ticket = {"id": "node-ticket-1", "service_id": service, "priority": "normal",
                  "label": "A901", "letter": "A", "number": 901, "language": "ka",
                  "status": "waiting", "issued_at": issued_at.isoformat()}  # fmt: skip
        body = encode_batch(
            [("node-epoch", 2, "ticket.issued", issued_at, json.dumps({"ticket": ticket}), None)],
            (2, issued_at),
            {},
        )
        sent = httpx.post(
            f"{network.url}/api/v1/nodes/{centre}/events", content=body, headers=headers
        )
        assert sent.status_code == 200, sent.text
        page.wait_for_function(
            "([id, n]) => document.querySelector(`#row-${id} td.waiting`)?.textContent == n",
            arg=[centre, str(before + 1)],
            timeout=FACTS_SHOWN_WITHIN_MS,
        )
        context.close()
