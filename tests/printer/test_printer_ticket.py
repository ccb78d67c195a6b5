"""Stories of the paper ticket: what the citizen holds must read right in every language."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageFont
from printer_support import agent_config

from printer_agent.agent import PrinterAgent
from printer_agent.config import DEFAULT_FONT, PrinterConfig
from printer_agent.device import PrinterDevice
from printer_agent.errors import FontMissing
from printer_agent.fake_printer import FakePrinter
from printer_agent.layout import Fonts, RasterBlock, layout_ticket, render_preview
from printer_agent.phrases import PHRASES
from printer_agent.ticket import LANGUAGES, SAMPLE_BRANCH, SAMPLE_SERVICE, sample_ticket

FOOTER = "მადლობა — Thank you"


def _same_pixels(left: Image.Image, right: Image.Image) -> bool:
    return left.size == right.size and left.convert("1").tobytes() == right.convert("1").tobytes()


async def test_georgian_ticket_reaches_network_printer_as_the_preview_shows(
    tmp_path: Path, fake_printer: FakePrinter, server, fonts: Fonts
) -> None:
    config = agent_config(tmp_path, fake_printer.port, server.url, footer=FOOTER)
    async with PrinterAgent(config, fonts).running():
        await server.print_job("ticket-ka-1", "ka")
        await server.wait_for(lambda: server.acks_for("ticket-ka-1"))

    assert server.acks_for("ticket-ka-1")[0]["result"] == "printed"
    assert server.paths == ["/ws/printers"]  # the token travelled in the hello, not the URL
    [printed] = fake_printer.wait_for_tickets(1)  # the ack can come before the paper
    assert "A012" in printed.lines
    assert "?" not in printed.text
    assert "REPRINT" not in printed.text

    layout = layout_ticket(
        sample_ticket("ka", ticket_id="ticket-ka-1"), width=576, fonts=fonts, footer=FOOTER
    )
    preview, tops = render_preview(layout, fonts)
    raster_tops = [
        top
        for block, top in zip(layout.blocks, tops, strict=True)
        if isinstance(block, RasterBlock)
    ]
    assert len(printed.rasters) == len(raster_tops)
    for image, top in zip(printed.rasters, raster_tops, strict=True):
        region = preview.crop((0, top, preview.width, top + image.height))
        assert _same_pixels(image, region)
    georgian = {block.why for block in layout.rasters}
    assert {"branch ka", "service", "footer", "qr"} <= georgian


def _has_glyph(font: ImageFont.FreeTypeFont, char: str, notdef: bytes) -> bool:
    return char.isspace() or bytes(font.getmask(char)) != notdef


@pytest.mark.parametrize("width", [576, 384])
@pytest.mark.parametrize("language", LANGUAGES)
def test_same_ticket_prints_in_every_language_without_question_marks(
    language: str, width: int, fonts: Fonts
) -> None:
    """Dummy collects the exact bytes; decoding them shows no `?` stood in for a letter."""
    from printer_agent.fake_printer import decode

    device = PrinterDevice(PrinterConfig(id="p", transport="network", host="unused", width=width))
    from escpos.printer import Dummy

    dummy = Dummy(profile="TM-T20II")
    device._printer = dummy
    layout = layout_ticket(sample_ticket(language), width=width, fonts=fonts, footer=FOOTER)
    device.print_layout(layout, lambda: None)
    [ticket] = decode(dummy.output)

    assert "?" not in ticket.text
    assert "A012" in ticket.lines
    assert all(image.width == width for image in ticket.rasters)
    assert [image.tobytes() for image in ticket.rasters] == [
        block.image.tobytes() for block in layout.rasters
    ]
    # Every letter drawn has a real glyph in DejaVu Sans, not the empty-box fallback.
    font = ImageFont.truetype(str(fonts.regular), 26)
    notdef = bytes(font.getmask("\U000f0000"))
    words = [SAMPLE_SERVICE[language], SAMPLE_BRANCH["ka"], FOOTER, *PHRASES[language].values()]
    missing = {ch for word in words for ch in word if not _has_glyph(font, ch, notdef)}
    assert not missing


@pytest.mark.parametrize("language", ["hy", "az"])
def test_preview_command_writes_png_of_sample_ticket(tmp_path: Path, language: str) -> None:
    out = tmp_path / f"ticket-{language}.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "printer_agent.cli",
            "preview",
            "--language",
            language,
            "--width",
            "384",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.width == 384
        assert image.height > 384


def test_missing_font_is_named_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(FontMissing, match="fonts-dejavu-core"):
        Fonts.load(tmp_path / "nope.ttf")
    config = tmp_path / "agent.toml"
    config.write_text(
        '[agent]\nserver_url = "ws://127.0.0.1:9/ws/printers"\n'
        f'font = "{tmp_path / "missing.ttf"}"\n'
        '[[printers]]\nid = "p1"\ntransport = "dummy"\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "printer_agent.cli", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "font_missing" in result.stderr and "missing.ttf" in result.stderr
    assert Path(DEFAULT_FONT).is_file()


def test_the_documents_to_bring_and_the_online_link_are_printed(fonts: Fonts) -> None:
    from printer_agent.ticket import sample_ticket_json, ticket_from_job

    raw = sample_ticket_json("ka") | {
        "documents": [{"ka": "ძველი პირადობის მოწმობა", "en": "Your old ID card"}, "junk"],
        "online_url": "https://napr.gov.ge",
    }
    ticket = ticket_from_job("job-1", raw)
    assert ticket.documents_in("en") == ["Your old ID card"]
    layout = layout_ticket(ticket, width=576, fonts=fonts)
    documents = [b for b in layout.blocks if getattr(b, "why", "") == "document"]
    assert len(documents) == 1 and isinstance(documents[0], RasterBlock)  # Georgian: pixels
    assert any(getattr(b, "text", "") == "https://napr.gov.ge" for b in layout.blocks)
    bare = ticket_from_job("job-2", sample_ticket_json("ka"))
    plain = layout_ticket(bare, width=576, fonts=fonts)
    assert not [b for b in plain.blocks if getattr(b, "why", "") == "document"]
