"""Announcements: a chime, then the call in each language, never two at once.

One queue and one worker thread play announcements strictly in order. The phrases are
synthesized by the process's single pyttsx3 thread (display_client.speech), one file per phrase,
and handed to a pluggable player. Speech and playback failures are logged and never reach the
board: a silent display is bad, a frozen one is worse.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from display_client.audio import concatenate, default_chime
from display_client.errors import PlaybackFailed, SpeechFailed
from display_client.phrases import Phrasebook, load_phrasebook
from display_client.players import Player, SilentPlayer
from display_client.speech import DEFAULT_RATE_WPM, DEFAULT_VOLUME, Voice, espeak_version
from display_client.speech import speech_engine as _speech_engine

log = logging.getLogger(__name__)

QUEUE_LIMIT = 32  # overflow rule: the oldest waiting announcement is dropped and logged
PHRASE_GAP_S = 0.35  # silence between languages in the served WAV
WAV_CACHE_ENTRIES = 64
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Call:
    """One spoken call: the ticket letter and number, the counter, and whether it is a recall."""

    letter: str
    number: int
    counter_number: int
    recall: bool = False
    seq: int | None = None
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

    @property
    def latency_s(self) -> float | None:
        """From receiving the call event to its audio being ready to play."""
        return None if self.ready_at is None else self.ready_at - self.call.received_at


def phrase_texts(
    book: Phrasebook, letter: str, number: int, counter_number: int, languages: Sequence[str]
) -> list[tuple[str, str]]:
    """(language, text) for each language in order."""
    return [
        (language, book.phrase(language).text(letter, number, counter_number))
        for language in languages
    ]


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
        for language, text in announcement.texts:
            path = self.work_dir / f"{self._counter:06d}-{language}.wav"
            voice = Voice(self.book.phrase(language).voice, self.rate, self.volume)
            try:
                announcement.files.append(engine.synthesize(text, voice, path))
            except SpeechFailed as exc:
                announcement.error = exc.message
                log.error(
                    "speech failed for %s%s (%s): %s", call.letter, call.number, language, exc
                )
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
                break
        announcement.ended_at = time.monotonic()
        for path in announcement.files:
            path.unlink(missing_ok=True)


def announcement_cache_key(
    letter: str,
    number: int,
    counter_number: int,
    languages: Sequence[str],
    *,
    rate: int = DEFAULT_RATE_WPM,
    volume: float = DEFAULT_VOLUME,
    phrasebook: Phrasebook | None = None,
    chime: Path | None = None,
) -> str:
    """A stable key for the WAV of one call: it changes when anything audible changes — the
    texts (hence the templates and letter maps), voices, rate, volume, chime or espeak-ng."""
    book = phrasebook or load_phrasebook()
    texts = phrase_texts(book, letter, int(number), int(counter_number), languages)
    digest = hashlib.sha256()
    for language, text in texts:
        digest.update(f"{language}\x1f{book.phrase(language).voice}\x1f{text}\x1e".encode())
    digest.update(f"{rate}\x1f{volume}\x1f{espeak_version()}\x1e".encode())
    digest.update(hashlib.sha256((chime or default_chime()).read_bytes()).digest())
    return digest.hexdigest()


_wav_cache: OrderedDict[str, bytes] = OrderedDict()
_wav_cache_lock = threading.Lock()


def synthesize_announcement(
    letter: str,
    number: int,
    counter_number: int,
    languages: Sequence[str] | None = None,
    *,
    rate: int = DEFAULT_RATE_WPM,
    volume: float = DEFAULT_VOLUME,
    phrasebook: Phrasebook | None = None,
    chime: Path | None = None,
) -> bytes:
    """The whole announcement as one WAV (chime, then each language), for browser-only displays.

    Blocking (run it in a thread from async code); results are kept in a small in-process LRU
    under `announcement_cache_key`. Raises SpeechFailed when espeak-ng gives no audio.
    """
    book = phrasebook or load_phrasebook()
    chosen = book.check(tuple(languages or book.default_languages))
    chime_path = chime or default_chime()
    key = announcement_cache_key(
        letter,
        number,
        counter_number,
        chosen,
        rate=rate,
        volume=volume,
        phrasebook=book,
        chime=chime_path,
    )
    with _wav_cache_lock:
        if key in _wav_cache:
            _wav_cache.move_to_end(key)
            return _wav_cache[key]
    engine = _speech_engine()
    with tempfile.TemporaryDirectory(prefix="rigi-announce-") as scratch:
        parts: list[Path | bytes] = [chime_path]
        for language, text in phrase_texts(book, letter, number, counter_number, chosen):
            voice = Voice(book.phrase(language).voice, rate, volume)
            parts.append(engine.synthesize(text, voice, Path(scratch) / f"{language}.wav"))
        wav = concatenate(parts, gap_s=PHRASE_GAP_S)
    with _wav_cache_lock:
        _wav_cache[key] = wav
        while len(_wav_cache) > WAV_CACHE_ENTRIES:
            _wav_cache.popitem(last=False)
    return wav
