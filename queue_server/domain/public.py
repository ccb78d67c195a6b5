"""What a public screen may know of a ticket.

A ticket's id is the key to its holder's status page and to cancelling it, so it must not reach
a lobby board (a screen in a public hall, and a device token that could be lifted from it).
Boards get a *board key* instead: derived from the id one way, the same in every process and
after restarts, so calls and recalls still match up, but useless for opening the ticket.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

BOARD_KEY_HEX = 16  # 64 bits: no two tickets of a day's board share one
# What a board shows of a ticket: no id, no language, no priority class, no estimates.
PUBLIC_TICKET_FIELDS = (
    "label", "letter", "number", "service_id", "status", "counter_id", "counter_number",
    "called_at", "recalls",
)  # fmt: skip


def board_key(ticket_id: str) -> str:
    """The ticket's key on public boards (a one-way hash of its random id)."""
    return hashlib.sha256(b"rigi-board:" + ticket_id.encode()).hexdigest()[:BOARD_KEY_HEX]


def public_ticket(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """A ticket view as a public board may see it."""
    view = {name: ticket.get(name) for name in PUBLIC_TICKET_FIELDS}
    return {"key": board_key(ticket["id"]), **view}


def public_call(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """A call on a board's list of current calls (what a display builds from call events)."""
    view = public_ticket(ticket)
    del view["status"]
    return view
