"""What a citizen hears: each language's phrase is real espeak-ng audio with the right numbers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from rigi_protocol.speech.announcement import announcement_cache_key, synthesize_announcement
from rigi_protocol.speech.audio import SAMPLE_RATE, default_chime, loud_fraction, read_wav
from rigi_protocol.speech.espeak import Voice, speech_engine
from rigi_protocol.speech.phrases import load_phrasebook

pytestmark = [
    pytest.mark.speech,
    pytest.mark.skipif(
        shutil.which("espeak-ng") is None,
        reason="install espeak-ng (Debian: apt-get install espeak-ng)",
    ),
]

MIN_PHRASE_S, MAX_PHRASE_S = 1.0, 8.0
MIN_LOUD_FRACTION = 0.1

# (language, ticket letter, ticket number, counter, the numbers' words as written in the language)
# The words are compared by their espeak-ng phonemes, so "105" must be read as "ას ხუთი", not as
# digits, not with a leading zero, not in English.
CASES = [
    ("ka", "A", 105, 12, ["ას ხუთი", "თორმეტი"]),
    ("ka", "B", 12, 5, ["თორმეტი", "ხუთი"]),
    ("en", "A", 105, 12, ["one", "hundred", "five", "twelve"]),
    ("az", "C", 105, 12, ["yüz beş", "on iki"]),
    ("hy", "A", 105, 3, ["հարյուր հինգ", "երեք"]),
    ("ru", "A", 100, 2, ["сто", "два"]),
]
# Russian numerals come from espeak-ng's numeral rules, which write some words differently from
# the same word spelt out ("пять": p;'jat; vs p;'At;), so Russian is also checked against these.
RUSSIAN_NUMERAL_PHONEMES = {105: "st'o p;'jat;", 12: "dv;In'AttsVt;"}


def phonemes(voice: str, text: str) -> str:
    result = subprocess.run(
        ["espeak-ng", "-v", voice, "-x", "-q", text],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    return result.stdout


def normalized(text: str) -> str:
    """Phonemes without stress, pause and word-boundary marks, which shift with context."""
    return "".join(ch for ch in text if ch not in "',_: \n")


@pytest.mark.parametrize(("language", "letter", "number", "counter", "words"), CASES)
def test_each_language_speaks_the_ticket_and_counter_numbers(
    tmp_path: Path, language: str, letter: str, number: int, counter: int, words: list[str]
) -> None:
    phrase = load_phrasebook().phrase(language)
    text = phrase.text(letter, number, counter)
    wav = speech_engine().synthesize(text, Voice(phrase.voice), tmp_path / "phrase.wav")
    info, frames = read_wav(wav)
    assert info.rate == SAMPLE_RATE and info.width == 2 and info.channels == 1
    assert MIN_PHRASE_S <= info.seconds <= MAX_PHRASE_S
    assert loud_fraction(frames) > MIN_LOUD_FRACTION

    heard = phonemes(phrase.voice, text)
    for word in words:
        assert normalized(phonemes(phrase.voice, word)) in normalized(heard), (word, heard)
    if language != "en":
        assert "(en)" not in heard, f"espeak-ng switched to English: {heard}"
    assert f"0{number}" not in text


def test_russian_numbers_are_read_as_russian_numerals() -> None:
    phrase = load_phrasebook().phrase("ru")
    heard = phonemes("ru", phrase.text("B", 105, 12))
    for expected in RUSSIAN_NUMERAL_PHONEMES.values():
        assert normalized(expected) in normalized(heard)
    assert "(en)" not in heard


def test_georgian_ticket_letter_is_a_georgian_letter() -> None:
    phrase = load_phrasebook().phrase("ka")
    assert phrase.text("A", 12, 5) == "ბილეთი ა 12, ფანჯარა 5"
    assert "(en)" in phonemes("ka", "ბილეთი A 12")  # what the mapping avoids
    assert "(en)" not in phonemes("ka", phrase.text("A", 12, 5))


def test_leading_zeros_are_not_spoken() -> None:
    phrase = load_phrasebook().phrase("ka")
    assert phrase.text("A", int("012"), 5) == "ბილეთი ა 12, ფანჯარა 5"
    assert "n'uli" in phonemes("ka", "012")  # what "012" would have sounded like


def test_served_wav_is_the_chime_then_each_language() -> None:
    wav = synthesize_announcement("A", 12, 5, ["ka", "en"])
    info, frames = read_wav(wav)
    chime, _ = read_wav(default_chime())
    assert info.rate == SAMPLE_RATE and info.width == 2 and info.channels == 1
    assert info.seconds > chime.seconds + 2 * MIN_PHRASE_S
    assert loud_fraction(frames) > MIN_LOUD_FRACTION
    assert synthesize_announcement("A", 12, 5, ["ka", "en"]) == wav  # cached


def test_cache_key_changes_with_anything_audible() -> None:
    key = announcement_cache_key("A", 12, 5, ["ka", "en"])
    assert key == announcement_cache_key("A", 12, 5, ("ka", "en"))
    assert key != announcement_cache_key("A", 12, 6, ["ka", "en"])
    assert key != announcement_cache_key("A", 12, 5, ["en", "ka"])
    assert key != announcement_cache_key("A", 12, 5, ["ka", "en"], rate=120)
