"""Ticket numbers: per branch, per letter, per local day, starting at 1, never reused that day."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Asia/Tbilisi"
NUMBER_DIGITS = 3


def local_day(moment: datetime, timezone: str = DEFAULT_TIMEZONE) -> date:
    """The branch's calendar day at `moment` (which must be timezone-aware)."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(ZoneInfo(timezone)).date()


def ticket_label(letter: str, number: int) -> str:
    """The printed form, e.g. `A012`: letters keep tickets of different queues apart."""
    return f"{letter}{number:0{NUMBER_DIGITS}d}"
