"""One ticket layout for both the paper and the PNG preview.

No ESC/POS code page holds Georgian or Armenian (python-escpos silently prints `?`), so every
line that is not plain ASCII is drawn here with Pillow in DejaVu Sans and becomes a raster block;
ASCII lines stay printer text, which is sharper and smaller on the wire. The preview stacks the
very same raster blocks, so what a tester sees is, dot for dot, what the printer receives for
every non-ASCII line.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont

from printer_agent.errors import FontMissing
from printer_agent.phrases import phrase
from printer_agent.ticket import Ticket

WHITE = 255
BLACK = 0
# Font A of an ESC/POS printer is 12 × 24 dots; the preview imitates it.
PRINTER_CHAR_WIDTH = 12
PRINTER_LINE_HEIGHT = 30
MAX_TEXT_SCALE = 8
LABEL_MAX_SCALE = 6
# Pixel sizes for an 80 mm (576 dot) ticket; a 58 mm ticket scales them down.
REFERENCE_WIDTH = 576
TITLE_PX = 30
SERVICE_PX = 36
BODY_PX = 26
SMALL_PX = 22
LINE_GAP_PX = 6
QR_MODULE_DOTS = 6


@dataclass(frozen=True)
class TextBlock:
    """ASCII printed with the printer's own font; `scale` multiplies width and height."""

    text: str
    align: str = "center"
    bold: bool = False
    scale: int = 1


@dataclass(frozen=True)
class RasterBlock:
    """A full-width 1-bit image (black = 0) sent with `GS v 0`."""

    image: Image.Image
    why: str = ""


Block = TextBlock | RasterBlock


@dataclass(frozen=True)
class TicketLayout:
    """The ticket as an ordered list of blocks for one paper width."""

    width: int
    blocks: tuple[Block, ...]

    @property
    def rasters(self) -> list[RasterBlock]:
        return [block for block in self.blocks if isinstance(block, RasterBlock)]


@dataclass(frozen=True)
class Fonts:
    """The TrueType files a ticket needs; checked once at start-up."""

    regular: Path
    bold: Path
    mono: Path | None = None

    @classmethod
    def load(cls, regular: Path, bold: Path | None = None) -> Fonts:
        """Check the fonts exist and open; a missing font stops the agent with a clear message."""
        regular = Path(regular)
        if not regular.is_file():
            raise FontMissing(
                f"font not found: {regular} — Georgian and Armenian lines cannot be printed; "
                "install the Debian package fonts-dejavu-core or set RIGI_PRINTER_FONT"
            )
        bold_path = Path(bold) if bold and Path(bold).is_file() else regular
        mono = regular.with_name("DejaVuSansMono.ttf")
        try:
            _font(str(regular), BODY_PX)
        except OSError as exc:
            raise FontMissing(f"font {regular} cannot be read: {exc}") from None
        return cls(regular=regular, bold=bold_path, mono=mono if mono.is_file() else None)


@lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _scaled(px: int, width: int) -> int:
    return max(12, round(px * width / REFERENCE_WIDTH))


def _wrap_pixels(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Break `text` into lines no wider than `width` pixels, at spaces where possible."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        current = ""
        for word in paragraph.split(" "):
            candidate = f"{current} {word}" if current else word
            if font.getlength(candidate) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = word
            while font.getlength(current) > width and len(current) > 1:
                cut = len(current)
                while cut > 1 and font.getlength(current[:cut]) > width:
                    cut -= 1
                lines.append(current[:cut])
                current = current[cut:]
        lines.append(current)
    return lines


def draw_text(
    text: str, font_path: Path, size: int, width: int, *, align: str = "center"
) -> Image.Image:
    """Draw `text` in a mode-1 image `width` dots wide: no anti-aliasing, exact on paper."""
    font = _font(str(font_path), size)
    margin = size // 4
    lines = _wrap_pixels(text, font, width - 2 * margin)
    ascent, descent = font.getmetrics()
    line_height = ascent + descent + LINE_GAP_PX
    image = Image.new("1", (width, line_height * len(lines)), WHITE)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        length = font.getlength(line)
        if align == "center":
            x = (width - length) / 2
        elif align == "right":
            x = width - margin - length
        else:
            x = margin
        draw.text((round(x), row * line_height), line, font=font, fill=BLACK)
    return image


def qr_image(url: str, width: int) -> Image.Image:
    """The status-page QR code, centred on a full-width strip, modules a whole number of dots."""
    code = qrcode.QRCode(border=2, box_size=1, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(url)
    code.make(fit=True)
    matrix = code.get_matrix()
    modules = len(matrix)
    module_dots = max(2, min(QR_MODULE_DOTS * width // REFERENCE_WIDTH, width // modules))
    side = modules * module_dots
    image = Image.new("1", (width, side), WHITE)
    draw = ImageDraw.Draw(image)
    left = (width - side) // 2
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                x0, y0 = left + x * module_dots, y * module_dots
                draw.rectangle((x0, y0, x0 + module_dots - 1, y0 + module_dots - 1), fill=BLACK)
    return image


def _is_printer_text(text: str) -> bool:
    """Printable ASCII survives every ESC/POS code page; anything else must be drawn."""
    return text.isascii() and all(ch == "\n" or 32 <= ord(ch) < 127 for ch in text)


def _line(
    text: str, fonts: Fonts, width: int, px: int, *, bold: bool = False, why: str = ""
) -> Block:
    if _is_printer_text(text):
        return TextBlock(text=text, bold=bold)
    path = fonts.bold if bold else fonts.regular
    return RasterBlock(draw_text(text, path, _scaled(px, width), width), why=why)


def label_scale(label: str, width: int) -> int:
    """The largest printer magnification at which the ticket number fits the paper."""
    fit = width // (PRINTER_CHAR_WIDTH * max(1, len(label)))
    return max(1, min(LABEL_MAX_SCALE, fit))


def layout_ticket(
    ticket: Ticket, *, width: int, fonts: Fonts, footer: str = "", reprint: bool = False
) -> TicketLayout:
    """Lay a ticket out for paper `width` dots wide; the same layout prints and previews."""
    language = ticket.language
    blocks: list[Block] = []
    branch_ka = ticket.branch_name.get("ka") or ticket.branch_in("ka")
    branch_en = ticket.branch_name.get("en", "")
    if branch_ka:
        blocks.append(_line(branch_ka, fonts, width, TITLE_PX, bold=True, why="branch ka"))
    if branch_en and branch_en != branch_ka:
        blocks.append(_line(branch_en, fonts, width, BODY_PX, why="branch en"))
    blocks.append(TextBlock("-" * (width // PRINTER_CHAR_WIDTH)))
    if reprint:
        blocks.append(TextBlock("*** REPRINT ***", bold=True, scale=2))
        if language != "en":
            blocks.append(_line(phrase(language, "reprint"), fonts, width, BODY_PX, bold=True))
    if _is_printer_text(ticket.label):
        blocks.append(TextBlock(ticket.label, bold=True, scale=label_scale(ticket.label, width)))
    else:
        blocks.append(RasterBlock(draw_text(ticket.label, fonts.bold, width // 4, width)))
    blocks.append(
        _line(ticket.service_in(language), fonts, width, SERVICE_PX, bold=True, why="service")
    )
    if ticket.priority_requested:  # the citizen shows this to the attendant, who confirms it
        requested = phrase(language, "priority_requested")
        blocks.append(_line(requested, fonts, width, BODY_PX, bold=True, why="priority requested"))
    if ticket.people_ahead is not None:
        blocks.append(
            _line(phrase(language, "ahead", n=ticket.people_ahead), fonts, width, BODY_PX)
        )
    if ticket.wait_minutes is not None:
        blocks.append(_line(phrase(language, "wait", m=ticket.wait_minutes), fonts, width, BODY_PX))
    if ticket.documents:
        blocks.append(_line(phrase(language, "bring"), fonts, width, SMALL_PX, bold=True))
        for document in ticket.documents_in(language):
            blocks.append(_line(f"- {document}", fonts, width, SMALL_PX, why="document"))
    if ticket.online_url:
        blocks.append(_line(phrase(language, "online"), fonts, width, SMALL_PX))
        blocks.append(TextBlock(ticket.online_url))
    issued = ticket.local_issued_at.strftime("%d.%m.%Y %H:%M")
    blocks.append(_line(phrase(language, "issued", time=issued), fonts, width, SMALL_PX))
    if ticket.status_url:
        blocks.append(_line(phrase(language, "scan"), fonts, width, SMALL_PX))
        blocks.append(RasterBlock(qr_image(ticket.status_url, width), why="qr"))
        blocks.append(TextBlock(ticket.status_url))
    if footer:
        blocks.append(TextBlock("-" * (width // PRINTER_CHAR_WIDTH)))
        blocks.append(_line(footer, fonts, width, SMALL_PX, why="footer"))
    return TicketLayout(width=width, blocks=tuple(blocks))


def printer_text_lines(block: TextBlock, width: int) -> list[str]:
    """Wrap printer text to the columns the paper holds at the block's magnification."""
    columns = max(1, width // (PRINTER_CHAR_WIDTH * block.scale))
    return textwrap.wrap(block.text, columns) or [""]


def _text_preview(block: TextBlock, fonts: Fonts, width: int) -> Image.Image:
    """Imitate the printer's font A for an ASCII line (approximate; rasters are exact)."""
    lines = printer_text_lines(block, width)
    path = fonts.mono or fonts.regular
    size = round(PRINTER_CHAR_WIDTH * block.scale / 0.6)
    font = _font(str(path), size)
    line_height = PRINTER_LINE_HEIGHT * block.scale
    image = Image.new("1", (width, line_height * len(lines)), WHITE)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        x = (width - font.getlength(line)) / 2 if block.align == "center" else 0
        y = row * line_height
        draw.text((round(x), y), line, font=font, fill=BLACK)
        if block.bold:
            draw.text((round(x) + 1, y), line, font=font, fill=BLACK)
    return image


def block_images(layout: TicketLayout, fonts: Fonts) -> list[Image.Image]:
    """Each block as the image the preview shows, in order."""
    return [
        block.image if isinstance(block, RasterBlock) else _text_preview(block, fonts, layout.width)
        for block in layout.blocks
    ]


def render_preview(layout: TicketLayout, fonts: Fonts) -> tuple[Image.Image, list[int]]:
    """The whole ticket as one image, and the top row of each block in it."""
    images = block_images(layout, fonts)
    tops: list[int] = []
    height = 0
    for image in images:
        tops.append(height)
        height += image.height
    sheet = Image.new("1", (layout.width, max(1, height)), WHITE)
    for image, top in zip(images, tops, strict=True):
        sheet.paste(image, (0, top))
    return sheet, tops
