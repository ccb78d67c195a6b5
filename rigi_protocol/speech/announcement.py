"""A whole call as one WAV (chime, then the call in each language), for the display client and
for the server's `announcement.wav` that browser-only displays play."""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from rigi_protocol.errors import SpeechFailed
from rigi_protocol.speech.audio import concatenate, default_chime
from rigi_protocol.speech.espeak import (
    DEFAULT_RATE_WPM,
    DEFAULT_VOLUME,
    Voice,
    espeak_version,
    speech_engine,
)
from rigi_protocol.speech.phrases import Phrasebook, load_phrasebook

PHRASE_GAP_S = 0.35  # silence between languages
WAV_CACHE_ENTRIES = 64


def phrase_texts(
    book: Phrasebook, letter: str, number: int, counter_number: int, languages: Sequence[str]
) -> list[tuple[str, str]]:
    """(language, text) for each language in order."""
    return [
        (language, book.phrase(language).text(letter, number, counter_number))
        for language in languages
    ]


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
    """The whole announcement as one WAV (chime, then each language).

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
    engine = speech_engine()
    with tempfile.TemporaryDirectory(prefix="rigi-announce-") as scratch:
        # One file per position: a language may be asked for twice (`en,az,en`), and its two
        # phrases are made at the same time.
        phrases = [
            (
                text,
                Voice(book.phrase(language).voice, rate, volume),
                Path(scratch) / f"{index}-{language}.wav",
            )
            for index, (language, text) in enumerate(
                phrase_texts(book, letter, number, counter_number, chosen)
            )
        ]
        parts: list[Path | bytes] = [chime_path]
        for outcome in engine.synthesize_all(phrases):
            if isinstance(outcome, SpeechFailed):
                raise outcome
            parts.append(outcome)
        wav = concatenate(parts, gap_s=PHRASE_GAP_S)
    with _wav_cache_lock:
        _wav_cache[key] = wav
        while len(_wav_cache) > WAV_CACHE_ENTRIES:
            _wav_cache.popitem(last=False)
    return wav
