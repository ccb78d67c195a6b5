"""The public JSON of a ticket and of a counter: no names, nothing personal."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from queue_server.catalog.loader import Catalog
from queue_server.domain import estimate
from queue_server.domain.numbering import ticket_label
from queue_server.store.rows import CounterMode, iso


def ticket_view(
    catalog: Catalog,
    row: Any,
    guess: estimate.WaitEstimate | None = None,
    counter_number: int | None = None,
) -> dict[str, Any]:
    """The public view of a ticket row (or its dict), with its wait estimate when given."""
    data = row if isinstance(row, dict) else dict(row._mapping)
    counter_id = data.get("counter_id")
    if counter_id and counter_number is None:
        counter_number = catalog.counter(data["branch_id"], counter_id).number
    service = catalog.service(data["service_id"])
    view = {
        "id": data["id"],
        "branch": data["branch_id"],
        "label": ticket_label(data["letter"], data["number"]),
        "letter": data["letter"],
        "number": data["number"],
        "service_id": data["service_id"],
        "service_name": service.name.get(data["language"]),
        "status": data["status"],
        "priority": data["priority"],
        "language": data["language"],
        "counter_id": counter_id,
        "counter_number": counter_number,
        "issued_at": iso(data["issued_at"]),
        "called_at": iso(data.get("called_at")),
        "recalls": data.get("recalls") or 0,
    }
    if guess is not None:
        view |= wait_fields(guess)
    return view


def wait_fields(guess: estimate.WaitEstimate) -> dict[str, Any]:
    """A waiting ticket's wait: people ahead, the median in minutes (`wait_minutes`, as old
    clients read it), the range "about median–p90 min" when a forecast is known, and whether an
    open counter serves the service now (when not: when the next one opens, if known)."""
    wait_range = None
    if guess.p90_minutes is not None:
        wait_range = {"median_min": guess.minutes, "p90_min": max(guess.p90_minutes, guess.minutes)}
    return {
        "people_ahead": guess.people_ahead,
        "wait_minutes": guess.minutes,
        "wait_range": wait_range,
        "served_now": guess.served_now,
        "next_open_at": iso(guess.next_open_at),
    }


def counter_view(counter: Any, state: Row[Any] | None) -> dict[str, Any]:
    """A configured counter with its stored state (closed when it has none)."""
    return {
        "counter_id": counter.id,
        "number": counter.number,
        "area": counter.area,
        "state": state.state if state else CounterMode.CLOSED.value,
        "pause_reason": state.pause_reason if state else None,
        "operator": state.operator if state else None,
        "current_ticket_id": state.current_ticket_id if state else None,
    }
