"""Stories of printing with every real part: the server on a free port, the real printer agent
(in this test's loop) holding `/ws/printers`, and a loopback TCP printer that decodes the paper.

A ticket is issued on the server's loop exactly as the kiosk's issue route does it: issue, then
`request_print` for the kiosk the token belongs to.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from printer_agent.agent import PrinterAgent
from printer_agent.config import DEFAULT_BOLD_FONT, DEFAULT_FONT, parse_config
from printer_agent.fake_printer import FakePrinter, Ticket
from printer_agent.layout import Fonts
from queue_server.printing import request_print
from queue_server.settings import Settings
from queue_server.store.events import events_after
from tests.support import LiveServer, test_settings

BRANCH = "testhall"
KIOSK = "kiosk-1"
PRINTER = "kiosk-1-printer"
WAIT_S = 20.0


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    live = LiveServer(settings).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def fonts() -> Fonts:
    return Fonts.load(Path(DEFAULT_FONT), Path(DEFAULT_BOLD_FONT))


@pytest.fixture
def printer() -> Iterator[FakePrinter]:
    fake = FakePrinter().start()
    yield fake
    fake.stop()


async def paper_cut(printer: FakePrinter, count: int) -> list[Ticket]:
    """The printer's tickets once `count` are cut, and exactly `count`. The agent acknowledges a
    job once its bytes have left, which can be a moment before the printer's thread has read
    them: a test that saw "printed" waits for the paper too."""
    tickets = await asyncio.to_thread(printer.wait_for_tickets, count, WAIT_S)
    assert len(tickets) == count, f"{len(tickets)} tickets cut, {count} expected"
    return tickets


async def eventually(check: Callable[[], Any], what: str) -> Any:
    """Poll until `check` (sync or async) gives something truthy; fail after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def agent(
    server: LiveServer, tmp_path: Path, printer_port: int, fonts: Fonts, *, max_attempts: int = 3
) -> AsyncIterator[PrinterAgent]:
    """The real printer agent for kiosk-1's printer, with a journal that outlives restarts."""
    raw = {
        "agent": {
            "server_url": server.ws_url + "/ws/printers",
            "journal": str(tmp_path / "journal.sqlite3"),
            "footer": "მადლობა — Thank you",
            "max_attempts": max_attempts,
            "health_interval": 0.2,
            "retry_delay": 0.05,
        },
        "printers": [
            {
                "id": PRINTER,
                "kiosks": [KIOSK],
                "transport": "network",
                "host": "127.0.0.1",
                "port": printer_port,
                "timeout": 2,
                "profile": "TM-T20II",
                "width": 576,
            }
        ],
    }
    token = await asyncio.to_thread(server.device_token, "printer")
    config = parse_config(raw, {"RIGI_PRINTER_TOKEN": token})
    async with PrinterAgent(config, fonts).running() as running:
        await eventually(
            lambda: server.rigi.printing.serves_here(BRANCH, PRINTER), "the agent's hello"
        )
        yield running


async def on_server(server: LiveServer, coroutine: Any) -> Any:
    return await asyncio.to_thread(server.run, coroutine)


async def issue_at_kiosk(server: LiveServer, kiosk: str = KIOSK) -> dict[str, Any]:
    """What the kiosk's issue route does: issue the ticket, then ask for it to be printed."""

    async def _issue() -> dict[str, Any]:
        rigi = server.rigi
        change = await rigi.store.issue_ticket(BRANCH, "id_card", actor=f"kiosk:{kiosk}")
        await rigi.publish(change.events)
        return change.result | {"print": await request_print(rigi, change.result, kiosk)}

    return await on_server(server, _issue())


async def ticket_view(server: LiveServer, ticket_id: str) -> dict[str, Any]:
    async with server.client() as client:
        response = await client.get(f"/api/v1/tickets/{ticket_id}")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]


async def print_status(server: LiveServer, ticket_id: str) -> str:
    return (await ticket_view(server, ticket_id))["print"]["status"]  # type: ignore[no-any-return]


async def health_events(server: LiveServer) -> list[dict[str, Any]]:
    """The branch's `printer.health` events, as every feed of the branch gets them."""

    async def _read() -> list[dict[str, Any]]:
        async with server.rigi.database.read() as conn:
            events = await events_after(conn, BRANCH, 0, 100_000)
        return [e.data for e in events or [] if e.kind == "printer.health"]

    return await on_server(server, _read())  # type: ignore[no-any-return]


async def test_ticket_from_kiosk_prints_and_its_view_says_printed(
    server: LiveServer, printer: FakePrinter, fonts: Fonts, tmp_path: Path
) -> None:
    async with agent(server, tmp_path, printer.port, fonts):
        ticket = await issue_at_kiosk(server)
        assert ticket["print"]["status"] in ("queued", "printed")
        await eventually(lambda: printer.tickets, "the paper ticket")
        await eventually(
            lambda: _status_is(server, ticket["id"], "printed"), "the ack to be recorded"
        )
    [paper] = printer.tickets
    assert ticket["label"] in paper.text
    assert "REPRINT" not in paper.text
    view = await ticket_view(server, ticket["id"])
    assert view["print"]["status"] == "printed" and view["print"]["error"] is None
    async with server.client("manager") as staff:
        pending = (await staff.get(f"/api/v1/branches/{BRANCH}/print-jobs")).json()
    assert pending == []


async def test_offline_printer_keeps_the_job_waiting_until_it_returns(
    server: LiveServer, fonts: Fonts, tmp_path: Path
) -> None:
    printer = FakePrinter().start()
    port = printer.port
    printer.stop()  # switched off before the agent starts
    async with agent(server, tmp_path, port, fonts):
        await eventually(
            lambda: _health_has(server, online=False), "a printer.health event saying offline"
        )
        ticket = await issue_at_kiosk(server)
        assert ticket["print"]["status"] == "queued"
        assert ticket["print"]["error"]["code"] == "printer_offline"
        view = await ticket_view(server, ticket["id"])
        assert view["print"]["status"] == "queued"
        assert view["print"]["printer"]["online"] is False
        printer = FakePrinter(port=port).start()
        try:
            await eventually(
                lambda: _status_is(server, ticket["id"], "printed"), "printing once back"
            )
            await eventually(lambda: _health_has(server, online=True), "back online")
            [paper] = await paper_cut(printer, 1)  # before it is switched off again
        finally:
            printer.stop()
    assert ticket["label"] in paper.text


async def test_paper_out_is_reported_and_the_kiosk_sees_it(
    server: LiveServer, printer: FakePrinter, fonts: Fonts, tmp_path: Path
) -> None:
    printer.paper = "out"
    async with agent(server, tmp_path, printer.port, fonts):
        await eventually(lambda: _health_has(server, paper="out"), "paper out reported")
        ticket = await issue_at_kiosk(server)
        view = await ticket_view(server, ticket["id"])
        assert view["print"]["status"] == "queued"
        assert view["print"]["error"]["code"] == "paper_out"
        assert view["print"]["printer"]["paper"] == "out"
        async with server.client("manager") as staff:
            waiting = (await staff.get(f"/api/v1/branches/{BRANCH}/print-jobs")).json()
            printers = (await staff.get(f"/api/v1/branches/{BRANCH}/printers")).json()
        assert [job["ticket_id"] for job in waiting] == [ticket["id"]]
        assert printers[0]["id"] == PRINTER and printers[0]["paper"] == "out"
        assert not printer.tickets
        printer.paper = "ok"  # a fresh roll
        await eventually(lambda: _status_is(server, ticket["id"], "printed"), "printing")
        await paper_cut(printer, 1)


async def test_job_sent_while_the_agent_is_away_is_printed_exactly_once_after_it_returns(
    server: LiveServer, printer: FakePrinter, fonts: Fonts, tmp_path: Path
) -> None:
    printer.online = False  # the first job reaches the agent's journal but cannot print
    async with agent(server, tmp_path, printer.port, fonts) as running:
        await eventually(lambda: _health_has(server, online=False), "printer offline")
        first = await issue_at_kiosk(server)
        await eventually(
            lambda: running.in_journal(running.journal.get, first["id"]), "the job journalled"
        )
    # The agent is gone with the first job unacknowledged; a second ticket is issued meanwhile.
    await eventually(lambda: _health_has(server, connected=False), "the agent's absence")
    second = await issue_at_kiosk(server)
    assert second["print"]["error"]["code"] == "printer_agent_offline"
    printer.online = True
    async with agent(server, tmp_path, printer.port, fonts):
        for ticket in (first, second):
            await eventually(partial(_status_is, server, ticket["id"], "printed"), "printed")
    papers = await paper_cut(printer, 2)
    labels = [next(t for t in (first, second) if t["label"] in p.text) for p in papers]
    assert sorted(t["id"] for t in labels) == sorted([first["id"], second["id"]])
    assert all("REPRINT" not in paper.text for paper in papers)


async def test_staff_reprint_prints_again_marked_reprint(
    server: LiveServer, printer: FakePrinter, fonts: Fonts, tmp_path: Path
) -> None:
    async with agent(server, tmp_path, printer.port, fonts):
        ticket = await issue_at_kiosk(server)
        await eventually(lambda: _status_is(server, ticket["id"], "printed"), "first print")
        async with server.client("manager") as staff:
            response = await staff.post(f"/api/v1/tickets/{ticket['id']}/reprint")
        assert response.status_code == 200, response.text
        assert response.json()["reprint"] is True
        await eventually(lambda: len(printer.tickets) == 2, "the reprint on paper")
        await eventually(lambda: _status_is(server, ticket["id"], "printed"), "reprint acked")
    first, second = printer.tickets
    assert ticket["label"] in first.text and "REPRINT" not in first.text
    assert ticket["label"] in second.text and "REPRINT" in second.text
    assert (await ticket_view(server, ticket["id"]))["print"]["reprint"] is True


async def test_failed_print_is_shown_to_staff_and_the_kiosk(
    server: LiveServer, printer: FakePrinter, fonts: Fonts, tmp_path: Path
) -> None:
    printer.drop_after_status = True  # jams on every ticket
    async with agent(server, tmp_path, printer.port, fonts, max_attempts=1):
        ticket = await issue_at_kiosk(server)
        await eventually(lambda: _status_is(server, ticket["id"], "failed"), "the failure")
        view = await ticket_view(server, ticket["id"])
        assert view["print"]["error"]["code"] == "print_failed"
        async with server.client("manager") as staff:
            listed = (await staff.get(f"/api/v1/branches/{BRANCH}/print-jobs?status=failed")).json()
            assert [(j["ticket_id"], j["status"]) for j in listed] == [(ticket["id"], "failed")]
            printer.drop_after_status = False  # cleared the jam
            response = await staff.post(f"/api/v1/tickets/{ticket['id']}/reprint")
            assert response.status_code == 200, response.text
        await eventually(lambda: _status_is(server, ticket["id"], "printed"), "the reprint")
    [paper] = await paper_cut(printer, 1)
    assert "REPRINT" in paper.text


async def test_kiosk_without_a_printer_is_told_so(server: LiveServer) -> None:
    ticket = await issue_at_kiosk(server, "kiosk-without-printer")
    assert ticket["print"] == {"status": "no_printer", "error": None, "reprint": False,
                               "printer": None}  # fmt: skip
    assert (await ticket_view(server, ticket["id"]))["print"]["status"] == "no_printer"


async def test_printer_feed_refuses_a_bad_token(server: LiveServer) -> None:
    hello = {"type": "hello", "token": "not-a-token", "printers": [{"id": PRINTER}]}
    async with connect(server.ws_url + "/ws/printers", compression=None) as ws:
        await ws.send(json.dumps(hello))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), WAIT_S)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def _status_is(server: LiveServer, ticket_id: str, status: str) -> bool:
    return await print_status(server, ticket_id) == status


async def _health_has(server: LiveServer, **wanted: Any) -> bool:
    return any(
        all(h.get(k) == v for k, v in wanted.items()) and h["id"] == PRINTER
        for h in await health_events(server)
    )


async def test_job_without_an_ack_is_sent_again_and_pings_are_answered(
    server: LiveServer,
) -> None:
    """Speaks the protocol by hand: an agent that never acknowledges gets the job again."""
    service = server.rigi.printing
    service.ack_timeout = timedelta(0)
    service.resend_check_s = 0.05
    token = await asyncio.to_thread(server.device_token, "printer")
    hello = {"type": "hello", "token": token,
             "printers": [{"id": PRINTER, "kiosks": [KIOSK], "width": 576}]}  # fmt: skip
    async with connect(server.ws_url + "/ws/printers", compression=None) as ws:
        await ws.send(json.dumps(hello))
        await eventually(lambda: service.serves_here(BRANCH, PRINTER), "the hello")
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), WAIT_S)) == {"type": "pong"}
        ticket = await issue_at_kiosk(server)
        first = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
        again = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
        assert first["type"] == "print" and first["printer"] == PRINTER
        assert first["job"]["id"] == ticket["id"] and first["job"]["kiosk"] == KIOSK
        assert first["job"]["ticket"]["label"] == ticket["label"]
        assert first["job"]["ticket"]["service_name"]["en"]
        assert again["job"] == first["job"]
        ack = {"type": "ack", "job_id": ticket["id"], "printer": PRINTER, "result": "printed",
               "reprint": False}  # fmt: skip
        await ws.send(json.dumps(ack))
        await eventually(lambda: _status_is(server, ticket["id"], "printed"), "the ack")


async def test_an_agent_stays_connected_through_the_hubs_heartbeats(
    database_url: str, printer: FakePrinter, fonts: Fonts, tmp_path: Path
) -> None:
    """The hub's heartbeat reaches every listener of a branch, an agent's too: the agent's
    connection skips it (it pings on its own) instead of failing on it and reconnecting."""
    server = LiveServer(test_settings(database_url, tmp_path, heartbeat_s=0.1)).start()
    try:
        async with agent(server, tmp_path, printer.port, fonts):
            await asyncio.sleep(1.0)  # ten heartbeats
            assert not await _health_has(server, connected=False)  # never dropped
            assert server.rigi.printing.serves_here(BRANCH, PRINTER)
            ticket = await issue_at_kiosk(server)
            await eventually(lambda: printer.tickets, "the ticket issued after the heartbeats")
        assert ticket["label"] in printer.tickets[0].text
    finally:
        server.stop()
