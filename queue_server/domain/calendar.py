"""The booking calendar: which slot times a service offers on a day, and how many bookings each
slot may take, so that a share of the counters' time stays free for walk-ins.

A slot is one typical service time long. The counters that serve the service give
`counters × (1 − walk-in share)` bookable places per slot; the fraction is spread over the day
(0.5 place per slot is one booking every other slot) rather than rounded away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """When a branch is open on its working days, in its own time zone."""

    opens: time
    closes: time
    weekdays: frozenset[int]  # Monday is 0


END_OF_DAY = "24:00"


def clock_time(text: str) -> time:
    """ "09:30" → 09:30; "24:00" (closing at midnight) → the day's last moment."""
    if text == END_OF_DAY:
        return time.max
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable start time (UTC) and how many bookings it takes in all."""

    at: datetime
    capacity: int


def day_slots(
    day: date,
    hours: OpeningHours,
    timezone: str,
    *,
    counters: float,
    service_time_min: float,
    walkin_share: float,
) -> list[Slot]:
    """The slots of `day` with a capacity above zero; none on a closed day or without counters."""
    if day.weekday() not in hours.weekdays or counters <= 0 or walkin_share >= 1:
        return []
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, hours.opens, zone)
    end = datetime.combine(day, hours.closes, zone)
    length = timedelta(minutes=service_time_min)
    per_slot = counters * (1 - walkin_share)
    slots: list[Slot] = []
    index = 0
    at = start
    while at + length <= end:
        capacity = math.floor((index + 1) * per_slot + 1e-9) - math.floor(index * per_slot + 1e-9)
        if capacity > 0:
            slots.append(Slot(at.astimezone(UTC), capacity))
        index += 1
        at = start + index * length
    return slots


def slot_capacity(slots: list[Slot], at: datetime) -> int:
    """How many bookings the slot starting at `at` takes; 0 when no slot starts then."""
    return next((slot.capacity for slot in slots if slot.at == at), 0)


def day_periods(
    day: date, periods: Sequence[tuple[time, time]], timezone: str
) -> tuple[tuple[datetime, datetime], ...]:
    """Local periods of `day` ("09:00"–"12:30", …) as UTC start and end moments."""
    zone = ZoneInfo(timezone)
    return tuple(
        (
            datetime.combine(day, opens, zone).astimezone(UTC),
            datetime.combine(day, closes, zone).astimezone(UTC),
        )
        for opens, closes in periods
    )
