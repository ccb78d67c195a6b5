"""`printer-agent run` drives the printers; `printer-agent preview` draws a sample ticket."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from printer_agent.config import DEFAULT_BOLD_FONT, DEFAULT_FONT, load_config
from printer_agent.errors import PrinterAgentError
from printer_agent.layout import Fonts, layout_ticket, render_preview
from printer_agent.ticket import sample_ticket
from rigi_protocol.languages import LANGUAGES

log = logging.getLogger("printer_agent")


def _preview(args: argparse.Namespace) -> int:
    fonts = Fonts.load(Path(args.font), Path(args.bold_font))
    ticket = sample_ticket(args.language)
    layout = layout_ticket(
        ticket, width=args.width, fonts=fonts, footer=args.footer, reprint=args.reprint
    )
    image, _ = render_preview(layout, fonts)
    image.save(args.out)
    print(f"wrote {args.out} ({image.width}×{image.height}, {args.language})")
    return 0


async def _serve(config_path: str | None) -> int:
    from printer_agent.agent import PrinterAgent

    config = load_config(config_path)
    fonts = Fonts.load(config.font, config.bold_font)
    if not config.server_url:
        raise PrinterAgentError(
            "RIGI_PRINTER_SERVER_URL (or agent.server_url) is required", code="bad_config"
        )
    log.info(
        "font %s found; %d printer(s): %s",
        fonts.regular,
        len(config.printers),
        ", ".join(f"{p.id} ({p.transport}, {p.width} dots)" for p in config.printers),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    agent = PrinterAgent(config, fonts)
    async with agent.running():
        stopping = asyncio.create_task(stop.wait())
        refusing = asyncio.create_task(agent.refusal.wait())
        await asyncio.wait((stopping, refusing), return_when=asyncio.FIRST_COMPLETED)
        for task in (stopping, refusing):
            task.cancel()
    if agent.refused is not None:
        raise agent.refused
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="printer-agent", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="connect to queue_server and print tickets")
    run.add_argument("--config", help="TOML file (default: RIGI_PRINTER_CONFIG)")
    preview = commands.add_parser("preview", help="write a sample ticket as PNG")
    preview.add_argument("--language", choices=LANGUAGES, default="ka")
    preview.add_argument("--width", type=int, default=576, help="paper width in dots (576, 384)")
    preview.add_argument("--out", default="ticket.png")
    preview.add_argument("--footer", default="")
    preview.add_argument("--reprint", action="store_true")
    preview.add_argument("--font", default=DEFAULT_FONT)
    preview.add_argument("--bold-font", default=DEFAULT_BOLD_FONT)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "preview":
            return _preview(args)
        return asyncio.run(_serve(args.config))
    except PrinterAgentError as exc:
        print(f"printer-agent: {exc.code}: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
