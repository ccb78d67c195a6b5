"""The languages a citizen can choose, in the order the screens offer them (Georgian first)."""

from __future__ import annotations

from typing import Literal

LANGUAGES: tuple[str, ...] = ("ka", "en", "ru", "az", "hy")
Language = Literal["ka", "en", "ru", "az", "hy"]
DEFAULT_LANGUAGE: Language = "ka"  # the state language, and every fallback's first choice
