"""Agent settings: a TOML file lists the printers, the environment supplies secrets and overrides.

One agent may drive several printers (one per kiosk, or one shared by two kiosks). Every value
is checked at start-up and a bad one stops the agent with a message that names it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from printer_agent.errors import ConfigError

DEFAULT_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
DEFAULT_BOLD_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
# python-escpos defaults to 60 s for a network printer; a kiosk cannot wait that long.
DEFAULT_NETWORK_TIMEOUT_S = 3.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_HEALTH_INTERVAL_S = 5.0
DEFAULT_RETRY_DELAY_S = 1.0
TRANSPORTS = ("network", "usb", "serial", "file", "dummy")
UNKNOWN_KIOSK_RULES = ("refuse", "warn")  # what a kiosk that matches nothing on the server does
PAPER_80MM_DOTS = 576
PAPER_58MM_DOTS = 384


@dataclass(frozen=True)
class PrinterConfig:
    """One printer: how to reach it, what it can do, how wide its paper is, whom it serves."""

    id: str
    transport: str
    kiosks: tuple[str, ...] = ()
    profile: str = "TM-T20II"
    width: int = PAPER_80MM_DOTS
    host: str = ""
    port: int = 9100
    timeout: float = DEFAULT_NETWORK_TIMEOUT_S
    usb_vendor: int = 0
    usb_product: int = 0
    device: str = ""
    baudrate: int = 9600
    footer: str | None = None


@dataclass(frozen=True)
class AgentConfig:
    """The whole agent: server, journal, fonts, retry rules and its printers."""

    printers: tuple[PrinterConfig, ...]
    server_url: str = ""
    token: str = field(default="", repr=False)
    journal: Path = Path("data/printer-journal.sqlite3")
    font: Path = Path(DEFAULT_FONT)
    bold_font: Path = Path(DEFAULT_BOLD_FONT)
    footer: str = ""
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    health_interval: float = DEFAULT_HEALTH_INTERVAL_S
    retry_delay: float = DEFAULT_RETRY_DELAY_S
    unknown_kiosks: str = "refuse"

    def printer_for(self, kiosk: str | None, printer_id: str | None) -> PrinterConfig:
        """Pick the printer a job belongs to: by explicit id, else by kiosk, else the first."""
        if printer_id:
            for printer in self.printers:
                if printer.id == printer_id:
                    return printer
        if kiosk:
            for printer in self.printers:
                if kiosk in printer.kiosks:
                    return printer
        return self.printers[0]


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    try:
        return int(value, 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def _float(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")
    return number


def _profile_width(profile: str, name: str) -> int | None:
    """The printable width the python-escpos profile knows, or None when it does not say."""
    from escpos.capabilities import get_profile

    try:
        data = get_profile(profile).profile_data
    except Exception:
        raise ConfigError(f"{name}: unknown python-escpos capability profile {profile!r}") from None
    pixels = data.get("media", {}).get("width", {}).get("pixels")
    return pixels if isinstance(pixels, int) else None


def _printer(raw: Mapping[str, Any], index: int) -> PrinterConfig:
    where = f"printers[{index}]"
    printer_id = str(raw.get("id") or "").strip()
    if not printer_id:
        raise ConfigError(f"{where}.id is required")
    where = f"printers[{printer_id}]"
    transport = str(raw.get("transport", "")).strip()
    if transport not in TRANSPORTS:
        raise ConfigError(f"{where}.transport must be one of {', '.join(TRANSPORTS)}")
    width = _int(raw.get("width", PAPER_80MM_DOTS), f"{where}.width")
    if width <= 0 or width % 8:
        raise ConfigError(f"{where}.width must be a positive multiple of 8 dots (576 or 384)")
    profile = str(raw.get("profile", "TM-T20II"))
    known = _profile_width(profile, f"{where}.profile")
    if known is not None and width > known:
        raise ConfigError(
            f"{where}.width is {width} dots but profile {profile!r} prints at most {known}"
        )
    kiosks = raw.get("kiosks", ())
    if isinstance(kiosks, str):
        kiosks = [kiosks]
    printer = PrinterConfig(
        id=printer_id,
        transport=transport,
        kiosks=tuple(str(k) for k in kiosks),
        profile=profile,
        width=width,
        host=str(raw.get("host", "")),
        port=_int(raw.get("port", 9100), f"{where}.port"),
        timeout=_float(raw.get("timeout", DEFAULT_NETWORK_TIMEOUT_S), f"{where}.timeout"),
        usb_vendor=_int(raw.get("usb_vendor", 0), f"{where}.usb_vendor"),
        usb_product=_int(raw.get("usb_product", 0), f"{where}.usb_product"),
        device=str(raw.get("device", "")),
        baudrate=_int(raw.get("baudrate", 9600), f"{where}.baudrate"),
        footer=raw.get("footer"),
    )
    if transport == "network" and not printer.host:
        raise ConfigError(f"{where}.host is required for a network printer")
    if transport == "usb" and not (printer.usb_vendor and printer.usb_product):
        raise ConfigError(f"{where}.usb_vendor and usb_product are required for a USB printer")
    if transport in ("serial", "file") and not printer.device:
        raise ConfigError(f"{where}.device is required for a {transport} printer")
    return printer


def parse_config(raw: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> AgentConfig:
    """Build the settings from a parsed TOML document and the environment (which wins)."""
    env = os.environ if environ is None else environ
    agent = dict(raw.get("agent", {}))
    printers_raw = raw.get("printers", [])
    if not printers_raw:
        raise ConfigError("printers: at least one [[printers]] table is required")
    printers = tuple(_printer(p, i) for i, p in enumerate(printers_raw))
    ids = [p.id for p in printers]
    if len(set(ids)) != len(ids):
        raise ConfigError("printers: every printer id must be unique")
    data_dir = Path(env.get("RIGI_DATA_DIR", "data"))
    journal = env.get("RIGI_PRINTER_JOURNAL") or agent.get("journal")
    max_attempts = _int(
        env.get("RIGI_PRINTER_MAX_ATTEMPTS", agent.get("max_attempts", DEFAULT_MAX_ATTEMPTS)),
        "agent.max_attempts",
    )
    if max_attempts < 1:
        raise ConfigError("agent.max_attempts must be at least 1")
    return AgentConfig(
        printers=printers,
        server_url=env.get("RIGI_PRINTER_SERVER_URL") or str(agent.get("server_url", "")),
        token=env.get("RIGI_PRINTER_TOKEN") or str(agent.get("token", "")),
        journal=Path(journal) if journal else data_dir / "printer-journal.sqlite3",
        font=Path(env.get("RIGI_PRINTER_FONT") or agent.get("font", DEFAULT_FONT)),
        bold_font=Path(
            env.get("RIGI_PRINTER_BOLD_FONT") or agent.get("bold_font", DEFAULT_BOLD_FONT)
        ),
        footer=str(agent.get("footer", "")),
        max_attempts=max_attempts,
        health_interval=_float(
            agent.get("health_interval", DEFAULT_HEALTH_INTERVAL_S), "agent.health_interval"
        ),
        retry_delay=_float(agent.get("retry_delay", DEFAULT_RETRY_DELAY_S), "agent.retry_delay"),
        unknown_kiosks=_unknown_kiosk_rule(agent.get("unknown_kiosks", "refuse")),
    )


def _unknown_kiosk_rule(value: Any) -> str:
    if value not in UNKNOWN_KIOSK_RULES:
        raise ConfigError(f"agent.unknown_kiosks must be one of {', '.join(UNKNOWN_KIOSK_RULES)}")
    return str(value)


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> AgentConfig:
    """Read the TOML file named by `path` or `RIGI_PRINTER_CONFIG` and apply the environment."""
    env = os.environ if environ is None else environ
    location = path or env.get("RIGI_PRINTER_CONFIG")
    if not location:
        raise ConfigError("RIGI_PRINTER_CONFIG (or --config) must name the printers' TOML file")
    try:
        with open(location, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"RIGI_PRINTER_CONFIG: no such file {location}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"RIGI_PRINTER_CONFIG: {location} is not valid TOML: {exc}") from None
    return parse_config(raw, env)
