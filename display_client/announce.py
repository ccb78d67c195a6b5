"""Announcements: a chime, then the call in each language, never two at once.

One queue and one worker thread play announcements strictly in order. The phrases are
synthesized by espeak-ng (rigi_protocol.speech), one file per phrase, and handed to a pluggable
player. A speech or playback failure never freezes the board, and never passes silently either:
it is logged at warning level and handed to `on_done`, through which the display client marks
the call as not spoken on its board and reports it to the server (a call that is not heard can
be missed by the citizen it calls).
"""

from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from display_client.errors import PlaybackFailed
from display_client.players import Player, SilentPlayer
from rigi_protocol.errors import SpeechFailed
from rigi_protocol.speech.announcement import phrase_texts
from rigi_protocol.speech.audio import default_chime
from rigi_protocol.speech.espeak import DEFAULT_RATE_WPM, DEFAULT_VOLUME, Voice
from rigi_protocol.speech.espeak import speech_engine as _speech_engine
from rigi_protocol.speech.phrases import Phrasebook, load_phrasebook

log = logging.getLogger(__name__)

QUEUE_LIMIT = 32  # overflow rule: the oldest waiting announcement is dropped and logged
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Call:
    """One spoken call: the ticket letter and number, the counter, and whether it is a recall."""

    letter: str
    number: int
    counter_number: int
    recall: bool = False
    seq: int | None = None
    key: str | None = None  # the call's board key, to mark it on the board if unspoken
    received_at: float = field(default_factory=time.monotonic)


@dataclass
class Announcement:
    """What happened to one call: the files made and played, when, and any failure."""

    call: Call
    texts: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    ready_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    error_code: str | None = None

    @property
    def spoken(self) -> bool:
        """Every language was synthesized and played to the end."""
        return self.error is None and self.ended_at is not None

    @property
    def latency_s(self) -> float | None:
        """From receiving the call event to its audio being ready to play."""
        return None if self.ready_at is None else self.ready_at - self.call.received_at


class Announcer:
    """Owns the announcement queue and the one thread that synthesizes and plays in order."""

    def __init__(
        self,
        *,
        player: Player | None = None,
        languages: Sequence[str] | None = None,
        phrasebook: Phrasebook | None = None,
        chime: Path | None = None,
        rate: int = DEFAULT_RATE_WPM,
        volume: float = DEFAULT_VOLUME,
        work_dir: Path | None = None,
        on_done: Callable[[Announcement], None] | None = None,
    ) -> None:
        self.book = phrasebook or load_phrasebook()
        self.languages = self.book.check(tuple(languages or self.book.default_languages))
        self.player: Player = player or SilentPlayer()
        self.chime = chime or default_chime()
        self.rate = rate
        self.volume = volume
        self.on_done = on_done
        self._own_dir = work_dir is None
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="rigi-display-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue[Call | None] = queue.Queue(maxsize=QUEUE_LIMIT)
        self._thread: threading.Thread | None = None
        self._counter = 0
        self.done: list[Announcement] = []

    def start(self) -> Announcer:
        self.work_dir.mkdir(parents=True, exist_ok=True)  # stop() removes its own folder
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="announcer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Finish the announcement being played, drop the rest, end the thread."""
        if self._thread is None:
            return
        self._drain()
        self._queue.put(None)
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            log.warning("announcer did not stop within %.0f s", STOP_TIMEOUT_S)
        self._thread = None
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def announce(self, call: Call) -> None:
        """Queue a call; never blocks the event loop (a full queue loses its oldest entry)."""
        while True:
            try:
                self._queue.put_nowait(call)
                return
            except queue.Full:
                try:
                    dropped = self._queue.get_nowait()
                except queue.Empty:
                    continue
                if dropped is not None:
                    log.warning(
                        "announcement queue full: dropped %s%s", dropped.letter, dropped.number
                    )

    def _run(self) -> None:
        while True:
            call = self._queue.get()
            if call is None:
                return
            announcement = Announcement(call)
            try:
                self._speak(announcement)
            except Exception as exc:  # the thread must outlive any one announcement
                announcement.error = f"{type(exc).__name__}: {exc}"
                announcement.error_code = "announcement_failed"
                log.exception("announcement of %s%s failed", call.letter, call.number)
            self.done.append(announcement)
            if self.on_done is not None:
                try:
                    self.on_done(announcement)
                except Exception:
                    log.exception("announcement callback failed")

    def _speak(self, announcement: Announcement) -> None:
        call = announcement.call
        self._counter += 1
        engine = _speech_engine()
        announcement.texts = phrase_texts(
            self.book, call.letter, call.number, call.counter_number, self.languages
        )
        phrases = [
            (
                text,
                Voice(self.book.phrase(language).voice, self.rate, self.volume),
                self.work_dir / f"{self._counter:06d}-{index}-{language}.wav",
            )
            for index, (language, text) in enumerate(announcement.texts)
        ]
        outcomes = engine.synthesize_all(phrases)
        for (language, _), outcome in zip(announcement.texts, outcomes, strict=True):
            if isinstance(outcome, SpeechFailed):
                announcement.error = outcome.message
                announcement.error_code = outcome.code
                log.error(
                    "speech failed for %s%s (%s): %s", call.letter, call.number, language, outcome
                )
            else:
                announcement.files.append(outcome)
        announcement.ready_at = time.monotonic()
        if not announcement.files:
            return
        announcement.started_at = time.monotonic()
        for path in [self.chime, *announcement.files]:
            try:
                self.player.play(path)
            except PlaybackFailed as exc:
                log.warning("not played (%s): %s", exc.code, exc.message)
                announcement.error = exc.message
                announcement.error_code = exc.code
                break
        announcement.ended_at = time.monotonic()
        for path in announcement.files:
            path.unlink(missing_ok=True)
