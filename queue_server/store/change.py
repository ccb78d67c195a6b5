"""What a store operation returns, and the clock it reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from queue_server.store.events import Event

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Change:
    """What an operation returns: its result for the caller and the events it stored (already
    published by its transaction after the commit)."""

    result: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    created: bool = True
