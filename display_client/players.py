"""Where announcement audio goes: a pluggable player, so playback can be swapped per machine.

`AplayPlayer` is the real one (Debian alsa-utils). A lobby PC without a sound card, CI, and tests
use `RecordingPlayer` (remembers what would be heard, in order, with start and end times)
or `aplay -D null`.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from display_client.errors import PlaybackFailed
from rigi_protocol.speech.audio import read_wav

log = logging.getLogger(__name__)

PLAYBACK_MARGIN_S = 10.0  # aplay gets the clip's length plus this before it is killed


class Player(Protocol):
    def play(self, path: Path) -> None:
        """Play one WAV file to the end (blocking); raise PlaybackFailed when it cannot."""


class AplayPlayer:
    """Plays through ALSA's `aplay`; `device` picks an ALSA PCM (e.g. `null`, `hw:1,0`)."""

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self.command = shutil.which("aplay")

    def play(self, path: Path) -> None:
        if self.command is None:
            raise PlaybackFailed("aplay not found: install alsa-utils", code="no_player")
        info, _ = read_wav(path)
        command = [self.command, "-q"]
        if self.device:
            command += ["-D", self.device]
        command.append(str(path))
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=info.seconds + PLAYBACK_MARGIN_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PlaybackFailed(f"aplay hung playing {path.name}") from None
        if result.returncode != 0:
            detail = result.stderr.strip().splitlines()[-1:] or ["no output"]
            raise PlaybackFailed(f"aplay failed ({result.returncode}): {detail[0]}")


@dataclass(frozen=True)
class Played:
    path: Path
    seconds: float
    started: float
    ended: float


class RecordingPlayer:
    """Remembers each file it is asked to play, in order, with monotonic start and end times.

    It holds the caller for `pace` × the clip's length, so two overlapping plays would show as
    overlapping intervals rather than hide behind zero-length ones.
    """

    def __init__(self, pace: float = 0.05) -> None:
        self.pace = pace
        self.played: list[Played] = []
        self._lock = threading.Lock()
        self._playing = 0
        self.max_concurrent = 0

    def play(self, path: Path) -> None:
        info, _ = read_wav(path)
        with self._lock:
            self._playing += 1
            self.max_concurrent = max(self.max_concurrent, self._playing)
        started = time.monotonic()
        try:
            time.sleep(info.seconds * self.pace)
        finally:
            with self._lock:
                self._playing -= 1
        self.played.append(Played(path, info.seconds, started, time.monotonic()))


class SilentPlayer:
    """Plays nothing: for a display that only shows the board, and for benchmarks."""

    def play(self, path: Path) -> None:
        return None
