"""Text to a WAV file through the `espeak-ng` program, one process per phrase.

Why a process and not pyttsx3 (what this used to be): pyttsx3's espeak driver runs libespeak-ng
in its asynchronous mode and shares the file name, the loop flag and the property queue between
the caller's thread and espeak-ng's callback thread. Its `runAndWait` queues its own `endLoop`
behind `save_to_file`, and on a fresh engine that `endLoop` runs before synthesis starts, so the
call returned before the audio existed: the caller found no file (about 3 runs in 100 of
`display-client say`), and the late callback then wrote into a scratch folder already deleted
(`Error saving WAV file: No such file`, the flaky fuzz case). The driver's own rate of 200
words/min, set at start-up, raced with the configured one (about 4 in 100 spoke too fast).

`espeak-ng -w` is synchronous: the voice, rate and volume are its arguments, the file is complete
when the process exits, and a crash inside espeak-ng ends that process, never the caller.
"""

from __future__ import annotations

import errno
import functools
import logging
import shutil
import subprocess
import time
import wave
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rigi_protocol.errors import SpeechFailed
from rigi_protocol.speech.audio import read_wav

log = logging.getLogger(__name__)

ESPEAK = "espeak-ng"
SYNTHESIS_TIMEOUT_S = 30.0
# Only a process that did not get to run is retried: fork failing for want of memory or
# processes, or espeak-ng killed by a signal (the OOM killer). A voice espeak-ng does not know,
# or a text it cannot speak, fails the same way every time.
TRANSIENT_ATTEMPTS = 3
TRANSIENT_BACKOFF_S = 0.1
TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.ENOMEM})
DEFAULT_RATE_WPM = 150  # espeak-ng's 175 is brisk for a noisy hall
DEFAULT_VOLUME = 1.0
MAX_AMPLITUDE = 200  # espeak-ng's -a range is 0–200; volume 1.0 is its default 100
MIN_RATE_WPM, MAX_RATE_WPM = 80, 450  # espeak-ng clamps outside this range


@dataclass(frozen=True)
class Voice:
    """How a phrase is spoken: espeak-ng voice name, words per minute, volume (1.0 = normal)."""

    name: str
    rate: int = DEFAULT_RATE_WPM
    volume: float = DEFAULT_VOLUME

    @property
    def amplitude(self) -> int:
        return max(0, min(MAX_AMPLITUDE, round(self.volume * 100)))


def espeak_available() -> bool:
    return shutil.which(ESPEAK) is not None


@functools.cache
def espeak_version() -> str:
    """Part of the WAV cache key: a new espeak-ng may pronounce differently."""
    if not espeak_available():
        return "none"
    try:
        result = subprocess.run(
            [ESPEAK, "--version"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip()


@functools.cache
def installed_voices() -> frozenset[str]:
    """Every name `-v` accepts: language codes, voice names and voice files (`ccs/ka`, `ka`)."""
    try:
        result = subprocess.run(
            [ESPEAK, "--voices"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    names: set[str] = set()
    for line in result.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5:
            names.update({fields[1], fields[3], fields[4], fields[4].rsplit("/", 1)[-1]})
    return frozenset(names)


class SpeechEngine:
    """Synthesizes phrases with espeak-ng; safe to call from any thread, several at once."""

    def __init__(self, command: str = ESPEAK) -> None:
        self.command = command

    def _check(self, voice: Voice) -> None:
        if shutil.which(self.command) is None:
            raise SpeechFailed(
                f"{self.command} is not installed (Debian: apt-get install espeak-ng)",
                code="no_speech_engine",
            )
        known = installed_voices()
        # espeak-ng would refuse an unknown voice too; this says which one and what to fix.
        if known and voice.name not in known:
            raise SpeechFailed(f"espeak-ng has no voice {voice.name!r}", code="unknown_voice")
        if not MIN_RATE_WPM <= voice.rate <= MAX_RATE_WPM:
            raise SpeechFailed(
                f"speech rate {voice.rate} is outside {MIN_RATE_WPM}–{MAX_RATE_WPM} words/min",
                code="bad_rate",
            )

    def _run(self, text: str, voice: Voice, path: Path, timeout: float) -> None:
        command = [
            self.command, "--stdin", "-b", "1", "-v", voice.name,
            "-s", str(voice.rate), "-a", str(voice.amplitude), "-w", str(path),
        ]  # fmt: skip
        for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
            try:
                result = subprocess.run(
                    command,
                    input=text.encode(),
                    capture_output=True,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise SpeechFailed(
                    f"espeak-ng took over {timeout:.0f} s for {text!r}", code="speech_timeout"
                ) from None
            except OSError as exc:
                if exc.errno not in TRANSIENT_ERRNOS or attempt == TRANSIENT_ATTEMPTS:
                    raise SpeechFailed(f"espeak-ng could not start: {exc}") from exc
                log.warning("espeak-ng could not start (attempt %d): %s", attempt, exc)
                time.sleep(TRANSIENT_BACKOFF_S * attempt)
                continue
            if result.returncode == 0:
                return
            detail = result.stderr.decode(errors="replace").strip() or "no message"
            killed = result.returncode < 0  # by a signal, not by its own error
            if not killed or attempt == TRANSIENT_ATTEMPTS:
                raise SpeechFailed(
                    f"espeak-ng failed ({result.returncode}) for {text!r} ({voice.name}): {detail}"
                )
            log.warning("espeak-ng was killed (%d), attempt %d", result.returncode, attempt)
            time.sleep(TRANSIENT_BACKOFF_S * attempt)

    def synthesize(
        self, text: str, voice: Voice, path: Path, timeout: float = SYNTHESIS_TIMEOUT_S
    ) -> Path:
        """Write `text` spoken by `voice` to the WAV file `path`; raise SpeechFailed if not."""
        self._check(voice)
        path.unlink(missing_ok=True)
        self._run(text, voice, path, timeout)
        if not path.exists():
            raise SpeechFailed(f"espeak-ng wrote no audio for {text!r} ({voice.name})")
        try:
            info, _ = read_wav(path)
        except (OSError, EOFError, wave.Error) as exc:
            raise SpeechFailed(f"espeak-ng wrote a broken WAV for {text!r}: {exc}") from exc
        if info.frames == 0:
            raise SpeechFailed(f"espeak-ng wrote an empty file for {text!r} ({voice.name})")
        return path

    def synthesize_all(
        self, phrases: Sequence[tuple[str, Voice, Path]]
    ) -> list[Path | SpeechFailed]:
        """Several phrases at once, one espeak-ng process each (the languages of one call):
        a path per phrase, in order, or the SpeechFailed that phrase ended in."""
        if len(phrases) <= 1:
            return [self._outcome(*phrase) for phrase in phrases]
        with ThreadPoolExecutor(max_workers=len(phrases), thread_name_prefix="espeak") as pool:
            return list(pool.map(lambda phrase: self._outcome(*phrase), phrases))

    def _outcome(self, text: str, voice: Voice, path: Path) -> Path | SpeechFailed:
        try:
            return self.synthesize(text, voice, path)
        except SpeechFailed as exc:
            return exc


_engine = SpeechEngine()


def speech_engine() -> SpeechEngine:
    """The engine: stateless, so one for the process (kept as a function for the callers)."""
    return _engine
