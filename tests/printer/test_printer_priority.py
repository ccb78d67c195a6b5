"""Where the branch wants the attendant to confirm a kiosk's priority, the paper ticket says the
priority is requested and must be confirmed, as the kiosk's screen does (issue 19), in every
language and on both paper widths; a confirmed or plain ticket says nothing of it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from printer_agent.fake_printer import FakePrinter
from printer_agent.layout import BODY_PX, LINE_GAP_PX, Fonts, RasterBlock, TextBlock, _font, _scaled
from printer_agent.layout import layout_ticket as lay_out
from printer_agent.phrases import phrase
from printer_agent.ticket import LANGUAGES, sample_ticket_json, ticket_from_job
from tests.printer.test_printer_kiosks import WAIT_S, agent, agent_raw, kiosk_id
from tests.support import LiveServer, test_settings

LINES_AT_MOST = 3  # it must read at a glance on a 58 mm ticket, not fill it


def _requested_blocks(layout: object) -> list[object]:
    return [
        block
        for block in layout.blocks  # type: ignore[attr-defined]
        if getattr(block, "why", "") == "priority requested"
        or (isinstance(block, TextBlock) and block.text == phrase("en", "priority_requested"))
    ]


@pytest.mark.parametrize("width", [576, 384])
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_requested_priority_is_printed_whole_on_both_paper_widths(
    language: str, width: int, fonts: Fonts
) -> None:
    raw = sample_ticket_json(language) | {"priority_requested": True}
    layout = lay_out(ticket_from_job("job-1", raw), width=width, fonts=fonts)
    [block] = _requested_blocks(layout)
    if language == "en":
        assert isinstance(block, TextBlock) and block.bold  # ASCII: the printer's own font
    else:
        assert isinstance(block, RasterBlock) and block.image.width == width
        font = _font(str(fonts.bold), _scaled(BODY_PX, width))
        ascent, descent = font.getmetrics()
        assert block.image.height <= LINES_AT_MOST * (ascent + descent + LINE_GAP_PX)
    plain = lay_out(
        ticket_from_job("job-2", sample_ticket_json(language)), width=width, fonts=fonts
    )
    assert _requested_blocks(plain) == []


def test_only_a_true_flag_asks_for_the_attendant(fonts: Fonts) -> None:
    for junk in ("yes", 1, "true", None):
        raw = sample_ticket_json("ka") | {"priority_requested": junk}
        assert ticket_from_job("job-3", raw).priority_requested is False


@pytest.fixture
def confirming_hall(tmp_path: Path) -> Iterator[LiveServer]:
    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}",
        tmp_path,
        booking_branches={"testhall": {"priority_confirm": 1}},
    )
    server = LiveServer(settings).start()
    yield server
    server.stop()


async def test_the_kiosks_requested_priority_reaches_the_paper(
    confirming_hall: LiveServer, tmp_path: Path, fonts: Fonts
) -> None:
    server = confirming_hall
    await kiosk_id(server, "Kiosk 1")
    token = await asyncio.to_thread(server.device_token, "kiosk", "testhall", "Kiosk 1")
    with FakePrinter() as printer:
        raw = agent_raw(server, tmp_path, printer.port, ["Kiosk 1"])
        async with (
            agent(server, raw, fonts),
            server.client(None, headers={"Authorization": f"Bearer {token}"}) as kiosk,
        ):
            asked = {"service_id": "id_card", "priority": "priority", "language": "en"}
            issued = await kiosk.post("/api/v1/branches/testhall/tickets", json=asked)
            assert issued.status_code == 201, issued.text
            assert issued.json()["priority_requested"] is True
            assert issued.json()["priority"] == "normal"  # until the attendant confirms it
            plain = {"service_id": "id_card", "language": "en"}
            assert (await kiosk.post("/api/v1/branches/testhall/tickets", json=plain)).is_success
            tickets = await asyncio.to_thread(printer.wait_for_tickets, 2, WAIT_S)
    requested = phrase("en", "priority_requested")
    assert [requested in ticket.lines for ticket in tickets] == [True, False]
