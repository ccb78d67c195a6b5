"""A printer agent configured with its kiosk's name (as docs/printing.md shows) prints that
kiosk's tickets; one whose kiosk matches nothing on the server refuses to start and says why,
where it used to show as connected and print nothing."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from printer_agent.agent import PrinterAgent
from printer_agent.config import parse_config
from printer_agent.fake_printer import FakePrinter
from printer_agent.layout import Fonts
from queue_server.printing.service import request_print
from tests.support import LiveServer

BRANCH = "testhall"
PRINTER = "hall-printer"
WAIT_S = 20.0


def agent_raw(server: LiveServer, tmp_path: Path, port: int, kiosks: list[str]) -> dict[str, Any]:
    return {
        "agent": {
            "server_url": server.ws_url + "/ws/printers",
            "journal": str(tmp_path / "journal.sqlite3"),
            "health_interval": 0.2,
            "retry_delay": 0.05,
        },
        "printers": [
            {"id": PRINTER, "kiosks": kiosks, "transport": "network", "host": "127.0.0.1",
             "port": port, "timeout": 2, "width": 576},
        ],
    }  # fmt: skip


async def kiosk_id(server: LiveServer, name: str) -> str:
    """Add a kiosk device called `name`, as a manager would; its id."""
    await asyncio.to_thread(server.device_token, "kiosk", BRANCH, name)
    devices = await asyncio.to_thread(server.run, server.rigi.accounts.list_devices(BRANCH))
    return next(d["id"] for d in devices if d["name"] == name)


@asynccontextmanager
async def agent(server: LiveServer, raw: dict[str, Any], fonts: Fonts) -> AsyncIterator[Any]:
    token = await asyncio.to_thread(server.device_token, "printer")
    config = parse_config(raw, {"RIGI_PRINTER_TOKEN": token})
    async with PrinterAgent(config, fonts).running() as running:
        async with asyncio.timeout(WAIT_S):
            await running.connected.wait()
            while not server.rigi.printing.serves_here(BRANCH, PRINTER):  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # the server's own loop takes the hello
        yield running


async def issue_at(server: LiveServer, kiosk: str) -> dict[str, Any]:
    async def _issue() -> dict[str, Any]:
        rigi = server.rigi
        change = await rigi.store.issue_ticket(BRANCH, "id_card", actor=f"kiosk:{kiosk}")
        await rigi.publish(change.events)
        return change.result | {"print": await request_print(rigi, change.result, kiosk)}

    return await asyncio.to_thread(server.run, _issue())


async def test_a_printer_configured_with_the_kiosks_name_prints_its_tickets(
    sqlite_server: LiveServer, tmp_path: Path, fonts: Fonts
) -> None:
    server = sqlite_server
    kiosk = await kiosk_id(server, "Kiosk 1")
    with FakePrinter() as printer:
        raw = agent_raw(server, tmp_path, printer.port, ["kiosk 1"])  # any case, as people type
        async with agent(server, raw, fonts) as running:
            ticket = await issue_at(server, kiosk)
            tickets = await asyncio.to_thread(printer.wait_for_tickets, 1, WAIT_S)
    assert ticket["print"]["printer"]["id"] == PRINTER
    assert ticket["print"]["printer"]["kiosks"] == [kiosk]  # the name became the kiosk's id
    assert [ticket["label"] in t.lines for t in tickets] == [True]
    assert running.refused is None


async def test_a_kiosk_that_matches_nothing_stops_the_agent_with_a_clear_error(
    sqlite_server: LiveServer, tmp_path: Path, fonts: Fonts, caplog: pytest.LogCaptureFixture
) -> None:
    server = sqlite_server
    known = await kiosk_id(server, "Kiosk 1")
    caplog.set_level(logging.WARNING)
    with FakePrinter() as printer:
        raw = agent_raw(server, tmp_path, printer.port, ["Kiosk 9"])
        async with agent(server, raw, fonts) as running:
            async with asyncio.timeout(WAIT_S):
                await running.refusal.wait()
    error = running.refused
    assert error is not None and error.code == "unknown_kiosk"
    assert "'Kiosk 9'" in error.message and f"Kiosk 1 (id {known})" in error.message
    server_saw = [r.getMessage() for r in caplog.records if r.name.startswith("queue_server")]
    assert any("match none of the branch's: Kiosk 9" in m for m in server_saw), server_saw


def test_printer_agent_run_refuses_to_start_when_a_kiosk_matches_nothing(
    sqlite_server: LiveServer, tmp_path: Path
) -> None:
    server = sqlite_server
    server.device_token("kiosk", BRANCH, "Kiosk 1")
    token = server.device_token("printer")
    toml = tmp_path / "agent.toml"
    toml.write_text(
        f'[agent]\nserver_url = "{server.ws_url}/ws/printers"\n'
        f'journal = "{tmp_path / "journal.sqlite3"}"\n\n'
        '[[printers]]\nid = "p1"\nkiosks = ["Kiosk 9"]\ntransport = "dummy"\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "printer_agent.cli", "run", "--config", str(toml)],
        env={"RIGI_PRINTER_TOKEN": token, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("printer-agent: unknown_kiosk: printers[p1].kiosks: 'Kiosk 9'")
    assert "matches no kiosk of branch testhall" in last
