"""Display settings: CLI flags over RIGI_DISPLAY_* environment variables over defaults.

Checked at start-up; a bad value stops the program with a message naming the setting. The
device token is never shown in reprs or logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from display_client.errors import ConfigError
from rigi_protocol.speech.espeak import DEFAULT_RATE_WPM, DEFAULT_VOLUME

ENV_PREFIX = "RIGI_DISPLAY_"
PLAYERS = ("aplay", "silent")
MIN_RATE_WPM, MAX_RATE_WPM = 80, 450  # espeak-ng's own limits


@dataclass(frozen=True)
class DisplaySettings:
    server_url: str
    branch: str
    token: str | None = field(default=None, repr=False)
    languages: tuple[str, ...] | None = None  # None: the phrasebook's default (ka, en)
    rate: int = DEFAULT_RATE_WPM
    volume: float = DEFAULT_VOLUME
    chime: Path | None = None
    phrases: Path | None = None
    player: str = "aplay"
    audio_device: str | None = None
    show: bool = False

    @property
    def feed_url(self) -> str:
        """ws(s)://host/ws/branches/{branch}/board: the token goes in the hello, not here."""
        parts = urlsplit(self.server_url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        path = f"{parts.path.rstrip('/')}/ws/branches/{quote(self.branch, safe='')}/board"
        return urlunsplit((scheme, parts.netloc, path, "", ""))

    @property
    def display_page_url(self) -> str:
        parts = urlsplit(self.server_url)
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        path = f"{parts.path.rstrip('/')}/display/{quote(self.branch, safe='')}"
        return urlunsplit((scheme, parts.netloc, path, "", ""))


def _number(value: Any, name: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> DisplaySettings:
    """Build settings from `overrides` (CLI flags; None means "not given") and the environment."""
    env = os.environ if environ is None else environ
    given = {k: v for k, v in (overrides or {}).items() if v is not None}

    def pick(name: str, default: Any = None) -> Any:
        return given.get(name, env.get(ENV_PREFIX + name.upper(), default))

    server_url = str(pick("server_url", "") or "")
    if urlsplit(server_url).scheme not in ("http", "https", "ws", "wss"):
        raise ConfigError(
            f"{ENV_PREFIX}SERVER_URL (--server-url) must be an http(s):// or ws(s):// URL, "
            f"got {server_url!r}"
        )
    branch = str(pick("branch", "") or "").strip()
    if not branch:
        raise ConfigError(f"{ENV_PREFIX}BRANCH (--branch) is required")
    languages_raw = pick("languages")
    languages = None
    if languages_raw:
        items = (
            languages_raw if isinstance(languages_raw, list | tuple) else languages_raw.split(",")
        )
        languages = tuple(code.strip() for code in items if code.strip()) or None
    rate = _number(pick("rate", DEFAULT_RATE_WPM), f"{ENV_PREFIX}RATE", int)
    if not MIN_RATE_WPM <= rate <= MAX_RATE_WPM:
        raise ConfigError(
            f"{ENV_PREFIX}RATE must be {MIN_RATE_WPM}–{MAX_RATE_WPM} words/min, got {rate}"
        )
    volume = _number(pick("volume", DEFAULT_VOLUME), f"{ENV_PREFIX}VOLUME", float)
    if not 0.0 <= volume <= 1.0:
        raise ConfigError(f"{ENV_PREFIX}VOLUME must be between 0 and 1, got {volume}")
    chime = pick("chime")
    if chime and not Path(chime).is_file():
        raise ConfigError(f"{ENV_PREFIX}CHIME: no such file {chime}")
    phrases = pick("phrases")
    if phrases and not Path(phrases).is_file():
        raise ConfigError(f"{ENV_PREFIX}PHRASES: no such file {phrases}")
    player = str(pick("player", "aplay"))
    if player not in PLAYERS:
        raise ConfigError(f"{ENV_PREFIX}PLAYER must be one of {', '.join(PLAYERS)}")
    return DisplaySettings(
        server_url=server_url,
        branch=branch,
        token=pick("token") or None,
        languages=languages,
        rate=rate,
        volume=volume,
        chime=Path(chime) if chime else None,
        phrases=Path(phrases) if phrases else None,
        player=player,
        audio_device=pick("audio_device") or None,
        show=_bool(pick("show", False), f"{ENV_PREFIX}SHOW"),
    )
