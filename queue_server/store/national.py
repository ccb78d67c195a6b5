"""The national view's read: every branch's floor in four grouped queries, not four per branch.

Each branch's event head, then waiting tickets per branch × service (count, oldest), counters
per branch × state and printers: a row is at least as new as the `seq` it carries (no snapshot
lock, which on SQLite would hold up writes). With 211 branches and thousands waiting this is one
pass over the `waiting` rows through `ix_tickets_branch_status`.

A branch its node serves is read the same way: its `tickets`, counters and printers are kept
from the node's replicated events in the transaction that applies them
(`store.replica_tickets`, `store.replica_floor`), and its row carries the node's link
(`link_rows`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from queue_server.catalog.loader import Catalog
from queue_server.domain.national import PrinterHealth, ServiceQueue, branch_row
from queue_server.domain.tickets import TicketStatus
from queue_server.store.database import Database
from queue_server.store.replication import link_rows
from queue_server.store.schema import branch_streams, counter_states, tickets
from queue_server.store.schema_printing import printers


async def floor_rows(
    database: Database,
    catalog: Catalog,
    branch_ids: Collection[str],
    now: datetime,
    stale_after_s: float,
) -> dict[str, dict[str, Any]]:
    """Branch id → its national row (see `domain.national.branch_row`) with its `epoch`, `seq`
    and `link` (a node's, `stale_after_s` of silence showing it disconnected; None for a branch
    central serves), for the given branches (all of the catalog's when there are as many)."""
    wanted = [b for b in branch_ids if b in catalog.branches]
    every = len(wanted) == len(catalog.branches)

    def read(conn: Connection) -> dict[str, dict[str, Any]]:
        def only(column: Any) -> Any:
            return True if every else column.in_(wanted)

        # The heads first: a row is then at least as new as the seq it carries.
        heads, nodes = {}, []
        for head in conn.execute(select(branch_streams).where(only(branch_streams.c.branch_id))):
            heads[head.branch_id] = (head.epoch, head.last_seq)
            if head.node_owned:
                nodes.append(head.branch_id)
        queues: dict[str, list[ServiceQueue]] = {b: [] for b in wanted}
        waiting = list(
            conn.execute(
                select(
                    tickets.c.branch_id,
                    tickets.c.service_id,
                    func.count(),
                    func.min(tickets.c.queued_at),
                )
                .where(tickets.c.status == TicketStatus.WAITING, only(tickets.c.branch_id))
                .group_by(tickets.c.branch_id, tickets.c.service_id)
            )
        )
        links = link_rows(conn, now, stale_after_s) if nodes else {}
        for branch_id, service_id, count, oldest in waiting:
            if branch_id in queues:
                target = round(catalog.service(service_id).target_wait_min * 60)
                queues[branch_id].append(ServiceQueue(service_id, count, oldest, target))
        states: dict[str, dict[str, int]] = {b: {} for b in wanted}
        counted = conn.execute(
            select(counter_states.c.branch_id, counter_states.c.state, func.count())
            .where(only(counter_states.c.branch_id))
            .group_by(counter_states.c.branch_id, counter_states.c.state)
        )
        for branch_id, state, count in counted:
            if branch_id in states:
                states[branch_id][state] = count
        health: dict[str, list[PrinterHealth]] = {b: [] for b in wanted}
        for printer in conn.execute(
            select(printers.c.branch_id, printers.c.connected, printers.c.online,
                   printers.c.paper).where(only(printers.c.branch_id))
        ):  # fmt: skip
            if printer.branch_id in health:
                health[printer.branch_id].append(
                    PrinterHealth(bool(printer.connected), printer.online, printer.paper)
                )
        result = {}
        for branch_id in wanted:
            row = branch_row(
                queues[branch_id],
                states[branch_id],
                len(catalog.branch(branch_id).counters),
                health[branch_id],
                now,
            )
            epoch, seq = heads.get(branch_id, (None, 0))
            link = links.get(branch_id)
            result[branch_id] = row | {"epoch": epoch, "seq": seq, "link": link}
        return result

    return await database.reading(read)
