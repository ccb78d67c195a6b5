"""Printers that are not on the network: a serial printer, through a pseudo-terminal pair that
stands in for its port (the test side reads the bytes and answers the status queries), and a
USB printer that is not plugged in, which must say what to do rather than "Device not found"."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from printer_agent.agent import PrinterAgent
from printer_agent.config import parse_config
from printer_agent.device import UDEV_RULES_FILE, PrinterDevice
from printer_agent.errors import PrinterUnavailable
from printer_agent.fake_serial import FakeSerialPrinter
from printer_agent.layout import Fonts
from printer_agent.ticket import sample_ticket_json

TOKEN = "printer-token-for-tests"
WAIT_S = 20.0
ESC_INIT = b"\x1b@"
STATUS_QUERIES = (b"\x10\x04\x01", b"\x10\x04\x04")  # DLE EOT: online, then paper


def serial_config(tmp_path: Path, device: str) -> Any:
    raw = {
        "agent": {
            "server_url": "ws://127.0.0.1:9/ws/printers",
            "journal": str(tmp_path / "journal.sqlite3"),
            "health_interval": 0.1,
            "retry_delay": 0.05,
        },
        "printers": [
            {"id": "counter-printer", "kiosks": ["kiosk-1"], "transport": "serial",
             "device": device, "baudrate": 19200, "timeout": 1, "width": 576},
        ],
    }  # fmt: skip
    return parse_config(raw, {"RIGI_PRINTER_TOKEN": TOKEN})


async def test_a_serial_printer_prints_and_answers_its_status_through_a_pty(
    tmp_path: Path, fonts: Fonts
) -> None:
    sent: list[dict[str, Any]] = []
    ticket_json = sample_ticket_json("ka", ticket_id="serial-1")
    job = {"id": "serial-1", "reprint": False, "ticket": ticket_json}
    with FakeSerialPrinter() as printer:
        agent = PrinterAgent(serial_config(tmp_path, printer.device), fonts, on_send=sent.append)
        async with agent.running(connect_to_server=False):
            await agent.submit({"type": "print", "job": job})
            tickets = await _wait(lambda: printer.tickets)
            printer.paper = "out"
            await _wait(lambda: any(m.get("paper") == "out" for m in sent))

    assert not printer.errors, printer.errors
    (ticket,) = tickets
    assert "A012" in ticket.lines and "?" not in ticket.text
    assert ticket.rasters  # the Georgian lines, drawn as pixels
    assert printer.received.startswith(STATUS_QUERIES[0])  # health is asked before printing
    assert all(query in printer.received for query in STATUS_QUERIES)
    assert ESC_INIT in printer.received
    health = [m for m in sent if m["type"] == "health"]
    assert health[0] == {"type": "health", "printer": "counter-printer", "online": True,
                         "paper": "ok"}  # fmt: skip
    assert health[-1]["paper"] == "out"


async def _wait(check: Any) -> Any:
    """Poll `check` (the printer is a thread): its result once truthy; fail after WAIT_S."""
    async with asyncio.timeout(WAIT_S):
        while not (result := check()):  # noqa: ASYNC110 - a thread sets it
            await asyncio.sleep(0.02)
    return result


def test_a_serial_port_that_does_not_exist_is_named(tmp_path: Path) -> None:
    config = serial_config(tmp_path, str(tmp_path / "ttyUSB9")).printers[0]
    with pytest.raises(PrinterUnavailable) as refused:
        PrinterDevice(config)._connected()
    assert refused.value.code == "serial_port_unavailable"
    assert "ttyUSB9" in refused.value.message


def test_a_usb_printer_that_is_not_there_names_the_udev_rule_to_add(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = {"printers": [{"id": "kiosk-usb", "transport": "usb",
                         "usb_vendor": "0x04b8", "usb_product": "0x0e28"}]}  # fmt: skip
    device = PrinterDevice(parse_config(raw, {}).printers[0])
    with pytest.raises(PrinterUnavailable) as refused:
        device._connected()
    error = refused.value
    assert error.code == "usb_printer_not_found"
    assert "04b8:0e28" in error.message and UDEV_RULES_FILE in error.message
    assert 'ATTRS{idVendor}=="04b8", ATTRS{idProduct}=="0e28"' in error.message
    assert "udevadm control --reload" in error.message

    caplog.set_level(logging.WARNING)
    assert not device.health().online
    assert not device.health().online  # asked again: the warning is not repeated
    warnings = [r.getMessage() for r in caplog.records if r.name == "printer_agent.device"]
    assert len(warnings) == 1 and "usb_printer_not_found" in warnings[0]
