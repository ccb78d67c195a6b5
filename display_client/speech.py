"""The process's one pyttsx3 engine, owned by one thread.

pyttsx3's espeak driver initialises libespeak-ng once per process and keeps global state in it,
so even two engines in two threads would trample each other ("run loop already started", empty
files). Every synthesis in the process — the display's announcer and the server's cached WAV —
therefore goes through this single worker, one `save_to_file` + `runAndWait` per file (two
`save_to_file` calls before one `runAndWait` write only the last file).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import shutil
import subprocess
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from display_client.audio import read_wav
from display_client.errors import SpeechFailed

log = logging.getLogger(__name__)

SYNTHESIS_TIMEOUT_S = 30.0
SYNTHESIS_ATTEMPTS = 2
DEFAULT_RATE_WPM = 150  # espeak-ng's 175 is brisk for a noisy hall
DEFAULT_VOLUME = 1.0


@dataclass(frozen=True)
class Voice:
    """What the engine is told before a phrase: espeak-ng voice name, words/minute, 0–1 volume."""

    name: str
    rate: int = DEFAULT_RATE_WPM
    volume: float = DEFAULT_VOLUME


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak_version() -> str:
    """Part of the WAV cache key: a new espeak-ng may pronounce differently."""
    if not espeak_available():
        return "none"
    try:
        result = subprocess.run(
            ["espeak-ng", "--version"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip()


class SpeechEngine:
    """A single thread that owns the pyttsx3 engine; callers from any thread wait on futures."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyttsx3")
        self._engine: Any = None
        self._voice_names: set[str] = set()

    def _engine_in_thread(self) -> Any:
        if self._engine is None:
            import pyttsx3

            try:
                self._engine = pyttsx3.init("espeak")
            except Exception as exc:
                raise SpeechFailed(f"pyttsx3 could not start espeak-ng: {exc}") from exc
            for known in self._engine.getProperty("voices"):
                self._voice_names.update(
                    {known.id, known.id.rsplit("/", 1)[-1], str(known.name), *known.languages}
                )
        return self._engine

    def _check_voice(self, name: str) -> None:
        """espeak-ng accepts an unknown voice name and speaks in its default voice: a typo in
        the phrasebook would announce Georgian text with English rules. Refuse it instead."""
        if self._voice_names and name not in self._voice_names:
            raise SpeechFailed(f"espeak-ng has no voice {name!r}", code="unknown_voice")

    def _synthesize_in_thread(self, text: str, voice: Voice, path: Path) -> Path:
        """One phrase, retried once: pyttsx3's espeak driver was seen (rarely, in tests) to write
        an empty file for a phrase it voices fine on the next try; the cause is not pinned down."""
        for attempt in range(1, SYNTHESIS_ATTEMPTS + 1):
            try:
                return self._synthesize_once(text, voice, path)
            except SpeechFailed as exc:
                if attempt == SYNTHESIS_ATTEMPTS or "empty" not in exc.message:
                    raise
                log.warning("retrying speech (attempt %d): %s", attempt, exc.message)
        raise AssertionError("unreachable")

    def _synthesize_once(self, text: str, voice: Voice, path: Path) -> Path:
        engine = self._engine_in_thread()
        self._check_voice(voice.name)
        try:
            engine.setProperty("voice", voice.name)
            engine.setProperty("rate", voice.rate)
            engine.setProperty("volume", voice.volume)
        except (ValueError, KeyError) as exc:
            raise SpeechFailed(f"espeak-ng voice {voice.name!r} unusable: {exc}") from exc
        path.unlink(missing_ok=True)
        engine.save_to_file(text, str(path))
        engine.runAndWait()
        if not path.exists():
            raise SpeechFailed(f"espeak-ng wrote no audio for {text!r} ({voice.name})")
        info, _ = read_wav(path)
        if info.frames == 0:
            raise SpeechFailed(f"espeak-ng wrote an empty file for {text!r} ({voice.name})")
        return path

    def close(self) -> None:
        """Drop the pyttsx3 engine on its own thread and end the thread. Run at exit: left to
        interpreter shutdown, pyttsx3's finaliser runs after its modules are torn down and
        prints an ignored AttributeError."""

        def _drop() -> None:
            self._engine = None

        # A synthesis may be stuck, or the executor already shut down: leave then.
        with contextlib.suppress(FutureTimeout, RuntimeError):
            self._executor.submit(_drop).result(SYNTHESIS_TIMEOUT_S)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def submit(self, text: str, voice: Voice, path: Path) -> Future[Path]:
        return self._executor.submit(self._synthesize_in_thread, text, voice, path)

    def synthesize(
        self, text: str, voice: Voice, path: Path, timeout: float = SYNTHESIS_TIMEOUT_S
    ) -> Path:
        """Write `text` spoken by `voice` to the WAV file `path`; raise SpeechFailed if not."""
        if threading.current_thread().name.startswith("pyttsx3"):
            return self._synthesize_in_thread(text, voice, path)
        try:
            return self.submit(text, voice, path).result(timeout)
        except FutureTimeout:
            raise SpeechFailed(f"espeak-ng took over {timeout:.0f} s for {text!r}") from None
        except SpeechFailed:
            raise
        except Exception as exc:
            raise SpeechFailed(f"speech failed for {text!r}: {exc}") from exc


_engine: SpeechEngine | None = None
_engine_lock = threading.Lock()


def speech_engine() -> SpeechEngine:
    """The process-wide engine, created on first use (nothing starts at import time)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = SpeechEngine()
            atexit.register(_engine.close)
        return _engine
