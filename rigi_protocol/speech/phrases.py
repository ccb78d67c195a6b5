"""Announcement phrases: one template per language from config/announcements.yaml.

The display client speaks them and the server serves them as a WAV: both read this module, so
a call sounds the same from either.

The text is written for espeak-ng, not for the eye: numbers as digits without leading zeros
(every voice here reads digits as words; "012" would be "zero twelve"), and the ticket letter as
a letter of the voice's own language, because espeak-ng switches to English on a Latin letter.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rigi_protocol.errors import PhrasebookError as ConfigError

ANNOUNCEMENTS_FILE = "announcements.yaml"
SHIPPED_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
GEORGIAN_MAP = "georgian"


@dataclass(frozen=True)
class LanguagePhrase:
    """How one language announces a call: its espeak-ng voice, template and letter names."""

    language: str
    voice: str
    template: str
    letters: Mapping[str, str] = field(default_factory=dict)

    def spoken_letter(self, letter: str) -> str:
        return self.letters.get(letter.upper(), letter)

    def text(self, letter: str, number: int, counter_number: int) -> str:
        """The phrase for a call, e.g. "ბილეთი ა 12, ფანჯარა 5"."""
        return self.template.format(
            letter=self.spoken_letter(letter), number=int(number), counter=int(counter_number)
        )


@dataclass(frozen=True)
class Phrasebook:
    """Every configured language plus the default order they are spoken in."""

    languages: Mapping[str, LanguagePhrase]
    default_languages: tuple[str, ...]

    def phrase(self, language: str) -> LanguagePhrase:
        try:
            return self.languages[language]
        except KeyError:
            known = ", ".join(self.languages)
            raise ConfigError(
                f"no announcement phrase for language {language!r} (known: {known})"
            ) from None

    def check(self, languages: tuple[str, ...]) -> tuple[str, ...]:
        """Fail at start-up, not at the first call, when a language has no phrase."""
        for language in languages:
            self.phrase(language)
        return languages


# How a Latin ticket letter is spoken and shown in Georgian (the letter of the same sound).
GEORGIAN_LETTERS = {
    "A": "ა", "B": "ბ", "C": "ც", "D": "დ", "E": "ე", "F": "ფ", "G": "გ", "H": "ჰ", "I": "ი",
    "J": "ჯ", "K": "კ", "L": "ლ", "M": "მ", "N": "ნ", "O": "ო", "P": "პ", "Q": "ქ", "R": "რ",
    "S": "ს", "T": "ტ", "U": "უ", "V": "ვ", "W": "ვ", "X": "ხ", "Y": "ი", "Z": "ზ",
}  # fmt: skip


def _language(code: str, raw: Mapping[str, Any], where: str) -> LanguagePhrase:
    template = raw.get("template")
    if not isinstance(template, str) or not template.strip():
        raise ConfigError(f"{where}.template is required")
    try:
        template.format(letter="A", number=1, counter=1)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{where}.template may use only {{letter}}, {{number}}, {{counter}}: {exc}"
        ) from None
    letters_raw = raw.get("letters") or {}
    if letters_raw == GEORGIAN_MAP:
        letters = dict(GEORGIAN_LETTERS)
    elif isinstance(letters_raw, Mapping):
        letters = {str(k).upper(): str(v) for k, v in letters_raw.items()}
    else:
        raise ConfigError(f"{where}.letters must be a mapping or {GEORGIAN_MAP!r}")
    return LanguagePhrase(
        language=code, voice=str(raw.get("voice") or code), template=template, letters=letters
    )


def parse_phrasebook(raw: Mapping[str, Any]) -> Phrasebook:
    languages_raw = raw.get("languages")
    if not isinstance(languages_raw, Mapping) or not languages_raw:
        raise ConfigError("announcements.languages must list at least one language")
    languages = {
        str(code): _language(str(code), spec or {}, f"announcements.languages.{code}")
        for code, spec in languages_raw.items()
    }
    default = tuple(str(code) for code in raw.get("default_languages") or languages)
    book = Phrasebook(languages=languages, default_languages=default)
    book.check(default)
    return book


def phrasebook_path(environ: Mapping[str, str] | None = None) -> Path:
    """RIGI_DISPLAY_PHRASES, else announcements.yaml in RIGI_CONFIG, else the shipped config/."""
    env = os.environ if environ is None else environ
    if env.get("RIGI_DISPLAY_PHRASES"):
        return Path(env["RIGI_DISPLAY_PHRASES"])
    if env.get("RIGI_CONFIG"):
        candidate = Path(env["RIGI_CONFIG"]) / ANNOUNCEMENTS_FILE
        if candidate.exists():
            return candidate
    return SHIPPED_CONFIG_DIR / ANNOUNCEMENTS_FILE


def load_phrasebook(path: str | os.PathLike[str] | None = None) -> Phrasebook:
    location = Path(path) if path else phrasebook_path()
    try:
        raw = yaml.safe_load(location.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"RIGI_DISPLAY_PHRASES: no such file {location}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"RIGI_DISPLAY_PHRASES: {location} is not valid YAML: {exc}") from None
    return parse_phrasebook(raw)
