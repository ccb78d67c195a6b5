"""Stories of delivery: printers go offline, run out of paper, jam; servers repeat themselves."""

from __future__ import annotations

import json
from pathlib import Path

from printer_support import agent_config

from printer_agent.agent import PrinterAgent
from printer_agent.fake_printer import FakePrinter
from printer_agent.journal import FAILED, Journal
from printer_agent.layout import Fonts


async def test_offline_printer_keeps_jobs_and_prints_them_when_it_returns(
    tmp_path: Path, server, fonts: Fonts
) -> None:
    printer = FakePrinter().start()
    port = printer.port
    printer.stop()  # switched off before the agent starts
    config = agent_config(tmp_path, port, server.url)
    async with PrinterAgent(config, fonts).running():
        await server.wait_for(lambda: any(not h["online"] for h in server.health))
        await server.print_job("offline-1")
        await server.print_job("offline-2", "ru")
        assert not server.acks  # nothing can have printed: the printer is off
        printer = FakePrinter(port=port).start()
        try:
            await server.wait_for(lambda: len(server.acks) == 2)
            tickets = printer.wait_for_tickets(2)
        finally:
            printer.stop()
        await server.wait_for(lambda: server.health[-1]["online"])
    assert [ack["result"] for ack in server.acks] == ["printed", "printed"]
    assert [ack["job_id"] for ack in server.acks] == ["offline-1", "offline-2"]
    assert len(tickets) == 2
    assert all("REPRINT" not in ticket.text for ticket in tickets)
    assert server.health[0] == {
        "type": "health",
        "printer": "kiosk-1-printer",
        "online": False,
        "paper": "unknown",
    }
    assert server.health[-1]["paper"] == "ok"


async def test_paper_out_is_reported_and_the_ticket_waits_for_new_paper(
    tmp_path: Path, server, fake_printer: FakePrinter, fonts: Fonts
) -> None:
    fake_printer.paper = "out"
    async with PrinterAgent(agent_config(tmp_path, fake_printer.port, server.url), fonts).running():
        await server.wait_for(lambda: any(h["paper"] == "out" for h in server.health))
        await server.print_job("paper-1", "az")
        assert not server.acks
        fake_printer.paper = "near_end"  # a fresh roll… nearly spent: still prints
        await server.wait_for(lambda: server.acks_for("paper-1"))
        await server.wait_for(lambda: server.health[-1]["paper"] == "near_end")
    assert server.acks_for("paper-1")[0]["result"] == "printed"
    assert len(fake_printer.wait_for_tickets(1)) == 1  # the ack can come before the paper
    assert [h["paper"] for h in server.health][:1] == ["out"]


async def test_job_that_keeps_failing_is_set_aside_and_reported_failed(
    tmp_path: Path, server, fake_printer: FakePrinter, fonts: Fonts
) -> None:
    fake_printer.drop_after_status = True
    config = agent_config(tmp_path, fake_printer.port, server.url, max_attempts=3)
    async with PrinterAgent(config, fonts).running() as agent:
        await server.print_job("jammed-1")
        await server.wait_for(lambda: server.acks_for("jammed-1"))
        fake_printer.drop_after_status = False
        await server.print_job("after-jam-1")  # the queue moves on
        await server.wait_for(lambda: server.acks_for("after-jam-1"))
        entry = await agent.in_journal(agent.journal.get, "jammed-1")
    [ack] = server.acks_for("jammed-1")
    assert ack["result"] == "failed"
    assert ack["error"]["code"] == "print_failed"
    assert entry is not None and entry.state == FAILED and entry.attempts == 3
    assert server.acks_for("after-jam-1")[0]["result"] == "printed"
    assert len(fake_printer.wait_for_tickets(1)) == 1  # the ack can come before the paper


async def test_malformed_ticket_fails_at_once_with_a_code(
    tmp_path: Path, server, fake_printer: FakePrinter, fonts: Fonts
) -> None:
    async with PrinterAgent(agent_config(tmp_path, fake_printer.port, server.url), fonts).running():
        await server.wait_for(lambda: server.connection is not None)
        bad = {"type": "print", "job": {"id": "bad-1", "ticket": {"label": ""}}}
        server.jobs["bad-1"] = bad
        await server.connection.send(json.dumps(bad))
        await server.wait_for(lambda: server.acks_for("bad-1"))
    [ack] = server.acks_for("bad-1")
    assert ack["result"] == "failed" and ack["error"]["code"] == "bad_job"
    assert not fake_printer.tickets


async def test_server_repeating_a_printed_job_gets_an_ack_not_a_second_ticket(
    tmp_path: Path, server, fake_printer: FakePrinter, fonts: Fonts
) -> None:
    async with PrinterAgent(agent_config(tmp_path, fake_printer.port, server.url), fonts).running():
        await server.print_job("repeat-1", "hy")
        await server.wait_for(lambda: server.acks_for("repeat-1"))
        await server.print_job("repeat-1", "hy")
        await server.wait_for(lambda: len(server.acks_for("repeat-1")) == 2)
    assert [ack["result"] for ack in server.acks_for("repeat-1")] == ["printed", "printed"]
    assert len(fake_printer.wait_for_tickets(1)) == 1  # the ack can come before the paper


async def test_explicit_reprint_prints_again_and_says_reprint(
    tmp_path: Path, server, fake_printer: FakePrinter, fonts: Fonts
) -> None:
    async with PrinterAgent(agent_config(tmp_path, fake_printer.port, server.url), fonts).running():
        await server.print_job("lost-1", "en")
        await server.wait_for(lambda: server.acks_for("lost-1"))
        await server.print_job("lost-1", "en", reprint=True)
        await server.wait_for(lambda: len(server.acks_for("lost-1")) == 2)
    first, second = fake_printer.wait_for_tickets(2)
    assert "REPRINT" not in first.text
    assert "REPRINT" in second.text
    assert server.acks_for("lost-1")[1]["reprint"] is True


def test_journal_survives_reopening_with_job_states(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    journal.accept("t1", "p", {"id": "t1"}, reprint=False)
    journal.mark_printing("t1")
    journal.close()
    reopened = Journal(tmp_path / "j.sqlite3")
    entry = reopened.next_pending("p")
    reopened.close()
    assert entry is not None and entry.state == "printing" and entry.must_say_reprint


def test_a_reprint_asked_while_the_first_ack_is_on_its_way_is_printed(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    try:
        journal.accept("t1", "p", {"id": "t1"}, reprint=False)
        journal.mark_printing("t1")
        journal.mark_printed("t1")  # the ack is sent, but not yet marked in the journal
        fresh, entry = journal.accept("t1", "p", {"id": "t1"}, reprint=True)
        assert fresh and entry.must_say_reprint
        journal.mark_acked("t1")  # the late ack of the first print does not cover the reprint
        reprint = journal.get("t1")
        assert reprint is not None and reprint.acked is False
    finally:
        journal.close()


def test_a_reprint_sent_again_before_its_ack_landed_is_not_printed_twice(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    try:
        journal.accept("t1", "p", {"id": "t1"}, reprint=False)
        journal.mark_printing("t1")
        journal.mark_printed("t1")
        journal.mark_acked("t1")
        assert journal.accept("t1", "p", {"id": "t1"}, reprint=True)[0]  # staff ask a reprint
        journal.mark_printing("t1")
        journal.mark_printed("t1")  # the reprint is printed; its ack is lost
        fresh, entry = journal.accept("t1", "p", {"id": "t1"}, reprint=True)  # server resends
        assert not fresh and entry.state == "printed"
    finally:
        journal.close()
