"""Real parts for the printer agent's stories: a loopback TCP printer, a real `websockets`
server standing in for queue_server's `/ws/printers`, real SQLite journals in tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from printer_support import StandInServer
from websockets.asyncio.server import serve

from printer_agent.config import DEFAULT_BOLD_FONT, DEFAULT_FONT
from printer_agent.fake_printer import FakePrinter
from printer_agent.layout import Fonts


@pytest.fixture(scope="session")
def fonts() -> Fonts:
    return Fonts.load(Path(DEFAULT_FONT), Path(DEFAULT_BOLD_FONT))


@pytest.fixture
def fake_printer() -> Iterator[FakePrinter]:
    printer = FakePrinter().start()
    yield printer
    printer.stop()
    assert not printer.errors, printer.errors


@pytest.fixture
async def server() -> AsyncIterator[StandInServer]:
    stand_in = StandInServer()
    async with serve(stand_in.handler, "127.0.0.1", 0, compression=None) as ws_server:
        stand_in.port = next(iter(ws_server.sockets)).getsockname()[1]
        yield stand_in
