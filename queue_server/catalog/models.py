"""Typed shape of the configuration in `config/`, validated by pydantic at load time."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

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
    documents: tuple[LocalizedText, ...] = Field(
        default=(), max_length=20, description="what to bring: shown at the kiosk, printed"
    )
    online_url: str | None = Field(
        default=None,
        pattern=r"^https://[^\s]{3,300}$",
        description="where the service can be done online instead",
    )


class Area(_Strict):
    id: str
    name: LocalizedText


class Screen(_Strict):
    """A lobby screen: which areas' or services' calls it shows (neither: the whole branch)."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=100)
    areas: tuple[str, ...] = ()
    services: tuple[str, ...] = ()


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Period(_Strict):
    """Open from `opens` to `closes` (local time, "HH:MM"); a break is the gap between two."""

    opens: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    closes: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")

    @model_validator(mode="after")
    def _opens_before_closes(self) -> Period:
        if self.closes <= self.opens:
            raise ValueError(f"closes {self.closes} is not after opens {self.opens}")
        return self


def _no_overlap(periods: tuple[Period, ...]) -> tuple[Period, ...]:
    """A day's periods in order and apart, so that "open now" has one answer."""
    for before, after in itertools.pairwise(periods):
        if after.opens < before.closes:
            raise ValueError(
                f"{after.opens}-{after.closes} overlaps or precedes {before.opens}-{before.closes}"
            )
    return periods


DayPeriods = Annotated[tuple[Period, ...], Field(max_length=6), AfterValidator(_no_overlap)]


class Counter(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    number: int = Field(ge=1)
    area: str
    # service id → weight; an agency id expands to all its services; "*" means every service.
    # A weight of 0 takes a service out of a wider entry ({"*": 1, "liberty_bank": 0}).
    serves: dict[str, Annotated[float, Field(ge=0)]] = Field(min_length=1)
    # Its rota: weekday → staffed periods (a gap between two is a planned break, as lunch).
    # Empty: not stated. The wait forecast plays it forward (who leaves for lunch, and when
    # they return); it does not open or close the counter.
    hours: dict[Weekday, DayPeriods] = Field(default_factory=dict)


class Room(_Strict):
    """A conference room that a Community Centre lends to institutions (issue 19)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    name: LocalizedText
    capacity: int | None = Field(default=None, ge=1, le=2000, description="seats")
    # weekday → when it may be booked; empty: the centre's own hours (else the booking hours)
    hours: dict[Weekday, DayPeriods] = Field(default_factory=dict)


class Branch(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    kind: Literal["hall", "community_centre"]
    name: LocalizedText
    region: str | None = None
    municipality: str | None = None
    timezone: str = "Asia/Tbilisi"
    # weekday → opening periods; a weekday left out is closed. Empty: hours not set.
    hours: dict[Weekday, DayPeriods] = Field(default_factory=dict)
    holidays: tuple[dt.date, ...] = ()
    # What the branch offers (service ids, agency ids, "*"); None: whatever its counters serve.
    offers: tuple[str, ...] | None = None
    areas: tuple[Area, ...] = ()
    counters: tuple[Counter, ...] = Field(min_length=1)
    screens: tuple[Screen, ...] = ()
    # A Community Centre's conference rooms; None: the one room every centre lends, on its hours.
    rooms: tuple[Room, ...] | None = Field(default=None, max_length=20)

    @field_validator("hours")
    @classmethod
    def _hours_in_week_order(
        cls, hours: dict[str, tuple[Period, ...]]
    ) -> dict[str, tuple[Period, ...]]:
        """Monday first, whatever order they were written in, so an export reads the same."""
        return {day: hours[day] for day in WEEKDAYS if day in hours}

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

    @model_validator(mode="after")
    def _rooms_of_a_centre(self) -> Branch:
        """Only a Community Centre lends rooms, and each is named by its own id."""
        if self.rooms and self.kind != "community_centre":
            raise ValueError("rooms: only a community_centre lends conference rooms")
        ids = [room.id for room in self.rooms or ()]
        if len(ids) != len(set(ids)):
            raise ValueError(f"rooms: a room id repeats: {sorted(ids)}")
        return self
