"""Typed shape of the configuration in `config/`, validated by pydantic at load time."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rigi_protocol.languages import LANGUAGES as LANGUAGES  # re-exported
from rigi_protocol.languages import Language as Language


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
        """The text in `language`; English when it is not written in that language (or the
        language is unknown). Georgian and English are always written."""
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
    # A weight of 0 takes a service out of a wider entry ({"*": 1, "liberty_bank": 0}).
    serves: dict[str, Annotated[float, Field(ge=0)]] = Field(min_length=1)


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

    @field_validator("counters")
    @classmethod
    def _unique_counters(cls, counters: tuple[Counter, ...]) -> tuple[Counter, ...]:
        """Operators and screens address a counter by id and by number, so both must be unique."""
        for attribute in ("id", "number"):
            seen: dict[object, int] = {}
            for index, counter in enumerate(counters):
                value = getattr(counter, attribute)
                if value in seen:
                    raise ValueError(
                        f"counter {attribute} {value!r} repeats: "
                        f"counters[{seen[value]}] and counters[{index}]"
                    )
                seen[value] = index
        return counters
