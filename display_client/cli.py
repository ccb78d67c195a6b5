"""`display-client`: follow a branch's board, announce calls, optionally show the lobby page.

display-client --server-url http://10.0.0.5:8000 --branch tbilisi --token … [--show]
display-client say A 12 5 --out call.wav      # one announcement to a file (or played)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from rigi_protocol.errors import CodedError
from rigi_protocol.speech.espeak import DEFAULT_RATE_WPM

if TYPE_CHECKING:
    from display_client.config import DisplaySettings
    from display_client.players import Player

log = logging.getLogger("display_client")

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def _player(settings: DisplaySettings) -> Player:
    from display_client.players import AplayPlayer, SilentPlayer

    if settings.player == "silent":
        return SilentPlayer()
    return AplayPlayer(settings.audio_device)


def _launch_kiosk(url: str) -> subprocess.Popen[bytes] | None:
    """Show the lobby display page full-screen; the board's sound stays with this program."""
    for name in CHROMIUM_NAMES:
        browser = shutil.which(name)
        if browser:
            log.info("showing %s in %s kiosk mode", url, name)
            return subprocess.Popen(
                [browser, "--kiosk", "--noerrdialogs", "--disable-infobars", url]
            )
    log.warning("--show: no Chromium found (%s); not showing the board", ", ".join(CHROMIUM_NAMES))
    return None


async def _follow(settings) -> int:  # type: ignore[no-untyped-def]
    from display_client.announce import Announcer
    from display_client.client import DisplayClient, running
    from rigi_protocol.speech.phrases import load_phrasebook

    book = load_phrasebook(settings.phrases)
    announcer = Announcer(
        player=_player(settings),
        languages=settings.languages,
        phrasebook=book,
        chime=settings.chime,
        rate=settings.rate,
        volume=settings.volume,
    )
    log.info("following %s; announcing in %s", settings.feed_url, ", ".join(announcer.languages))
    browser = _launch_kiosk(settings.display_page_url) if settings.show else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running(DisplayClient(settings, announcer)):
            await stop.wait()
    finally:
        if browser is not None:
            browser.terminate()
    return 0


def _say(args: argparse.Namespace) -> int:
    from rigi_protocol.speech.announcement import synthesize_announcement
    from rigi_protocol.speech.phrases import load_phrasebook

    book = load_phrasebook(args.phrases)
    languages = tuple(args.languages.split(",")) if args.languages else None
    wav = synthesize_announcement(
        args.letter, args.number, args.counter, languages, phrasebook=book, rate=args.rate
    )
    if args.out:
        Path(args.out).write_bytes(wav)
        print(f"wrote {args.out}")
        return 0
    from display_client.players import AplayPlayer

    with tempfile.TemporaryDirectory(prefix="rigi-say-") as folder:
        scratch = Path(folder) / "call.wav"
        scratch.write_bytes(wav)
        AplayPlayer(args.audio_device).play(scratch)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="display-client",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--server-url", help="queue_server, e.g. http://host:8000 (RIGI_DISPLAY_SERVER_URL)"
    )
    parser.add_argument("--branch", help="branch id (RIGI_DISPLAY_BRANCH)")
    parser.add_argument("--token", help="device token (RIGI_DISPLAY_TOKEN; prefer the env)")
    parser.add_argument("--languages", help="e.g. ka,en,ru (RIGI_DISPLAY_LANGUAGES)")
    parser.add_argument("--rate", type=int, help="words per minute (RIGI_DISPLAY_RATE)")
    parser.add_argument("--volume", type=float, help="0–1 (RIGI_DISPLAY_VOLUME)")
    parser.add_argument("--chime", help="WAV, 22050 Hz 16-bit mono (RIGI_DISPLAY_CHIME)")
    parser.add_argument("--phrases", help="announcements.yaml (RIGI_DISPLAY_PHRASES)")
    parser.add_argument("--player", choices=("aplay", "silent"), help="(RIGI_DISPLAY_PLAYER)")
    parser.add_argument(
        "--audio-device", help="ALSA device for aplay -D (RIGI_DISPLAY_AUDIO_DEVICE)"
    )
    parser.add_argument(
        "--show",
        action="store_true",
        default=None,
        help="open /display/{branch} in Chromium kiosk mode (RIGI_DISPLAY_SHOW)",
    )
    commands = parser.add_subparsers(dest="command")
    say = commands.add_parser("say", help="synthesize one announcement")
    say.add_argument("letter")
    say.add_argument("number", type=int)
    say.add_argument("counter", type=int)
    say.add_argument("--out", help="write the WAV here instead of playing it")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "say":
            args.rate = args.rate or DEFAULT_RATE_WPM
            return _say(args)
        from display_client.config import load_settings

        settings = load_settings(
            {
                "server_url": args.server_url, "branch": args.branch, "token": args.token,
                "languages": args.languages, "rate": args.rate, "volume": args.volume,
                "chime": args.chime, "phrases": args.phrases, "player": args.player,
                "audio_device": args.audio_device, "show": args.show,
            }
        )  # fmt: skip
        return asyncio.run(_follow(settings))
    except CodedError as exc:
        print(f"display-client: {exc.code}: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
