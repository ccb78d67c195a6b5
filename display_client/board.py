"""The lobby board as the display holds it: replaced by snapshots, advanced by events by seq.

Applying is idempotent: an event whose seq is not above the last applied one changes nothing,
so a replay that overlaps what the display already saw is harmless.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

BOARD_CALLS = 12
CALL_KINDS = ("ticket.called", "ticket.recalled")
# `key` is the ticket's board key: boards never see ticket ids (docs/protocol.md).
_CALL_FIELDS = (
    "key", "label", "letter", "number", "service_id", "counter_id", "counter_number", "called_at",
)  # fmt: skip
_COUNTER_STATES = {"counter.opened": "open", "counter.paused": "paused", "counter.closed": "closed"}


class Gap(Exception):
    """An event arrived after a hole in the sequence: the display must resume from its seq."""


@dataclass
class Board:
    """Current calls (newest first), waiting counts per service, counters' states."""

    branch: str
    epoch: str | None = None
    seq: int | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    waiting: dict[str, int] = field(default_factory=dict)
    counters: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Calls the display could not speak, by board key: why (a code). Not part of `view()`,
    # which is the server's snapshot; it is what this display adds to what it shows.
    unspoken: dict[str, str] = field(default_factory=dict)

    def replace(self, epoch: str | None, seq: int, board: dict[str, Any]) -> None:
        """Take a snapshot as the whole truth as of `seq`."""
        self.epoch, self.seq = epoch, seq
        self.calls = copy.deepcopy(list(board.get("calls", [])))[:BOARD_CALLS]
        self.waiting = dict(board.get("waiting", {}))
        self.counters = copy.deepcopy(dict(board.get("counters", {})))

    def apply(self, event: dict[str, Any]) -> bool:
        """Apply one event; False when it was already applied. Raises Gap on a hole."""
        seq = int(event["seq"])
        # A branch with no history yet has no epoch; its first event brings one.
        if event.get("epoch") != self.epoch and self.epoch is not None:
            raise Gap(f"epoch changed from {self.epoch} to {event.get('epoch')}")
        if self.seq is not None and seq <= self.seq:
            return False
        if self.seq is not None and seq != self.seq + 1:
            raise Gap(f"expected seq {self.seq + 1}, got {seq}")
        self.epoch, self.seq = event.get("epoch"), seq
        kind = str(event.get("kind", ""))
        data = event.get("data") or {}
        if kind.startswith("ticket."):
            self._ticket(kind, data)
        elif kind in _COUNTER_STATES:
            counter_id = str(data.get("counter_id", ""))
            if counter_id:
                entry = self.counters.setdefault(counter_id, {})
                entry["state"] = _COUNTER_STATES[kind]
                if data.get("counter_number") is not None:
                    entry["number"] = data["counter_number"]
        return True

    def _ticket(self, kind: str, data: dict[str, Any]) -> None:
        ticket = data.get("ticket") or {}
        key = ticket.get("key")
        service = ticket.get("service_id")
        if kind in ("ticket.issued", "ticket.recycled") and service:
            self.waiting[service] = self.waiting.get(service, 0) + 1
        if kind in CALL_KINDS:
            previous = next((c for c in self.calls if c.get("key") == key), None)
            if kind == "ticket.called" and previous is None and service:
                self.waiting[service] = max(0, self.waiting.get(service, 0) - 1)
            call = call_from_event(data)
            call["recalls"] = (previous or {}).get("recalls", 0) + (kind == "ticket.recalled")
            self.calls = [call, *(c for c in self.calls if c.get("key") != key)]
            del self.calls[BOARD_CALLS:]
        elif kind == "ticket.cancelled" and service and key not in self._called_keys():
            self.waiting[service] = max(0, self.waiting.get(service, 0) - 1)

    def mark_unspoken(self, key: str, code: str) -> None:
        """Show that the call with board key `key` was not heard (it stays shown until it
        leaves the board)."""
        self.unspoken[key] = code
        self._forget_unspoken_gone()

    def _forget_unspoken_gone(self) -> None:
        shown = self._called_keys()
        for key in [k for k in self.unspoken if k not in shown]:
            del self.unspoken[key]

    def _called_keys(self) -> set[Any]:
        return {c.get("key") for c in self.calls}

    def view(self) -> dict[str, Any]:
        """The board in the snapshot's shape, to compare with the server's."""
        return {
            "calls": copy.deepcopy(self.calls),
            "waiting": dict(self.waiting),
            "counters": copy.deepcopy(self.counters),
        }


def call_from_event(data: dict[str, Any]) -> dict[str, Any]:
    """A board call entry from a ticket.called / ticket.recalled event's data."""
    ticket = data.get("ticket") or {}
    call = {name: ticket.get(name) for name in _CALL_FIELDS}
    for name in ("counter_id", "counter_number"):
        if data.get(name) is not None:
            call[name] = data[name]
    return call
