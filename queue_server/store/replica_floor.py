"""Central's counters and printers of a node-owned branch, kept from the node's replicated
events, so the national view and the branch's views count them like any branch's.

Only what the events carry is kept: a counter's state and pause reason (`counter.*`), and a
printer's health (`printer.health`: its agent connected, the printer online, its paper). The
newest event of each counter and printer in a batch wins; older ones change nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from queue_server.store.counter_actions import COUNTER_EVENT
from queue_server.store.events import Event
from queue_server.store.rows import upsert_counter
from queue_server.store.schema_printing import printers
from queue_server.store.statements import upsert_insert
from rigi_protocol.wire import compact_json

COUNTER_KINDS = frozenset(COUNTER_EVENT.values())
PRINTER_HEALTH = "printer.health"
UNKNOWN_PAPER = "unknown"


def mirror_floor(conn: Connection, branch_id: str, applied: Sequence[Event]) -> None:
    """Fold a batch's counter and printer events into the branch's rows."""
    for event in _newest(applied, COUNTER_KINDS, "counter_id").values():
        values = {
            "state": event.data["state"],
            "pause_reason": event.data.get("pause_reason"),
            "updated_at": event.at,
        }
        upsert_counter(conn, branch_id, event.data["counter_id"], values)
    for printer_id, event in _newest(applied, {PRINTER_HEALTH}, "id").items():
        _upsert_printer(conn, branch_id, printer_id, event)


def _newest(applied: Sequence[Event], kinds: Any, key: str) -> dict[str, Event]:
    """The last event of each thing (named by `data[key]`) among the events of these kinds; an
    event that does not name its thing is left out."""
    newest: dict[str, Event] = {}
    for event in applied:
        if event.kind in kinds and isinstance(event.data.get(key), str):
            newest[event.data[key]] = event
    return newest


def _upsert_printer(conn: Connection, branch_id: str, printer_id: str, event: Event) -> None:
    data = event.data
    kiosks = data.get("kiosks")
    values = {
        "kiosks": compact_json(kiosks if isinstance(kiosks, list) else []),
        "connected": bool(data.get("connected")),
        "online": data.get("online") if isinstance(data.get("online"), bool) else None,
        "paper": str(data.get("paper") or UNKNOWN_PAPER)[:16],
        "updated_at": event.at,
    }
    insert: Callable[..., Any] = upsert_insert(conn.dialect.name)
    conn.execute(
        insert(printers)
        .values(branch_id=branch_id, printer_id=printer_id, **values)
        .on_conflict_do_update(
            index_elements=[printers.c.branch_id, printers.c.printer_id], set_=values
        )
    )
