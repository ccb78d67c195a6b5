"""Typed shape of the configuration in `config/`, validated by pydantic at load time."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

LANGUAGES = ("ka", "en", "ru", "az", "hy")
Language = Literal["ka", "en", "ru", "az", "hy"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalizedText(_Strict):
    """A text in Georgian and English, and in Russian, Azerbaijani, Armenian where written."""

    ka: str = Field(min_length=1)
    en: str = Field(min_length=1)
    ru: str | None = None
    az: str | None = None
    hy: str | None = None

    def get(self, language: str) -> str:
        """The text in `language`, falling back to Georgian then English."""
        return getattr(self, language, None) or self.en if language != "ka" else self.ka


class Agency(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: LocalizedText
    private: bool = False


class Service(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    agency: str
    name: LocalizedText
    letter: str = Field(pattern=r"^[A-Z]$")
    target_wait_min: float = Field(gt=0, le=480)
    service_time_min: float = Field(gt=0, le=480)
    category: Literal["quick", "long"]
    popularity: int = Field(default=0, ge=0, description="higher is shown first on the kiosk")


class Counter(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    number: int = Field(ge=1)
    area: str
    # service id → weight; an agency id expands to all its services; "*" means every service.
    serves: dict[str, float] = Field(min_length=1)


class Area(_Strict):
    id: str
    name: LocalizedText


class Branch(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    kind: Literal["hall", "community_centre"]
    name: LocalizedText
    municipality: str | None = None
    timezone: str = "Asia/Tbilisi"
    areas: tuple[Area, ...] = ()
    counters: tuple[Counter, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_counters(self) -> Branch:
        ids = [c.id for c in self.counters]
        if len(ids) != len(set(ids)):
            raise ValueError(f"counter ids repeat in branch {self.id}")
        return self
