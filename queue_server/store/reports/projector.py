"""The projector: applies a branch's events, in order, to the visit facts, rollups and counter
time, and moves the branch's cursor in the same transaction. An event at or below the cursor is
never applied again; one the cursor has not reached is never lost (pruning waits for it).

Everything here is synchronous over one `Connection` (run through `AsyncConnection.run_sync`),
so a batch of many events is one transaction and one thread crossing per statement at most.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, and_, bindparam, delete, func, or_, select, update

from queue_server.catalog.loader import Catalog
from queue_server.domain import kpis
from queue_server.domain.numbering import DEFAULT_TIMEZONE
from queue_server.errors import NotFound
from queue_server.store.reports.group_rollups import move_group_days
from queue_server.store.reports.rollups import (
    SPENT,
    BranchDeltas,
    Deltas,
    add_counter_time,
    chunks,
    lock_cursor,
    move_branch_hours,
    move_branch_rows,
    move_network_days,
    network_arrivals,
    on_date,
    take_branch_out_of_network,
    upsert_rows,
)
from queue_server.store.schema import branch_streams, events, tickets
from queue_server.store.schema_reports import (
    BRANCH_ROWS,
    counter_clocks,
    report_cursors,
    visit_days,
    visit_facts,
    visit_rollups,
)

log = logging.getLogger(__name__)

BATCH_EVENTS = 2000  # events applied in one transaction
HOUR = timedelta(hours=1)
ENDS = {  # ticket event kind → the outcome it ends a visit with (finish: the ticket's own)
    "ticket.no_show": kpis.NO_SHOW,
    "ticket.transferred": kpis.TRANSFERRED,
    "ticket.cancelled": kpis.CANCELLED,
}
FREES_COUNTER = frozenset(
    {"ticket.finished", "ticket.no_show", "ticket.transferred", "ticket.recycled"}
)
COUNTER_STATES = {"counter.opened": "open", "counter.paused": "paused", "counter.closed": "closed"}
UNKNOWN_AGENCY = "unknown"


class LogPruned(Exception):
    """The event log no longer starts at the stream's first event: a rebuild would lose visits."""


@dataclass(frozen=True, slots=True)
class Applied:
    """What one batch did: how many events it applied and where the cursor now stands."""

    events: int
    epoch: str | None
    seq: int


def apply_batch(
    conn: Connection, catalog: Catalog, branch_id: str, limit: int = BATCH_EVENTS
) -> Applied:
    """Apply up to `limit` of the branch's events after its cursor, in one transaction (the
    caller's). The cursor row is locked first, so one process at a time projects a branch."""
    cursor = lock_cursor(conn, branch_id)
    return apply_locked(conn, catalog, {branch_id: cursor}, limit)[branch_id]


def apply_locked(
    conn: Connection,
    catalog: Catalog,
    cursors: dict[str, tuple[str, int] | None],
    limit: int = BATCH_EVENTS,
) -> dict[str, Applied]:
    """Apply up to `limit` events in all of these branches, whose cursor rows the caller has
    locked (`cursors`: where each stands), in one transaction, with one statement per table
    whatever the number of branches: a busy day moves many branches a second, and a batch of
    statements per branch was most of the projector's cost. Fewer than `limit` applied: every
    branch is at its head."""
    heads = dict(
        conn.execute(
            select(branch_streams.c.branch_id, branch_streams.c.epoch).where(
                branch_streams.c.branch_id.in_(sorted(cursors))
            )
        ).all()
    )
    starts: dict[str, tuple[str, int]] = {}
    for branch_id, cursor in cursors.items():
        if (head := heads.get(branch_id)) is not None:  # a new epoch restarts at its first
            starts[branch_id] = cursor if cursor and cursor[0] == head else (head, 0)
    by_branch: dict[str, list[Row[Any]]] = {}
    if starts:
        after = [
            and_(events.c.branch_id == b, events.c.epoch == epoch, events.c.seq > seq)
            for b, (epoch, seq) in sorted(starts.items())
        ]
        for row in conn.execute(
            select(events)
            .where(or_(*after))
            .order_by(events.c.branch_id, events.c.seq)
            .limit(limit)
        ):
            by_branch.setdefault(row.branch_id, []).append(row)
    for branch_id, rows in by_branch.items():
        if rows[0].seq != starts[branch_id][1] + 1:
            log.warning(
                "%s: events %d..%d were pruned before reports applied them",
                branch_id,
                starts[branch_id][1] + 1,
                rows[0].seq - 1,
            )
    if by_branch:
        _Batch(conn, catalog, by_branch).apply()
    applied: dict[str, Applied] = {}
    moved: list[dict[str, Any]] = []
    for branch_id, cursor in cursors.items():
        if branch_id not in starts:
            applied[branch_id] = Applied(0, None, 0)
            continue
        epoch, seq = starts[branch_id]
        rows = by_branch.get(branch_id, [])
        seq = rows[-1].seq if rows else seq
        if cursor != (epoch, seq):
            moved.append({"cursor_branch": branch_id, "new_epoch": epoch, "new_seq": seq})
        applied[branch_id] = Applied(len(rows), epoch, seq)
    if moved:
        conn.execute(
            update(report_cursors)
            .where(report_cursors.c.branch_id == bindparam("cursor_branch"))
            .values(
                epoch=bindparam("new_epoch"), seq=bindparam("new_seq"), updated_at=datetime.now(UTC)
            ),
            moved,
        )
    return applied


def reset_branch(conn: Connection, branch_id: str, *, allow_partial: bool = False) -> None:
    """Forget a branch's facts, rollups, counter time and cursor, so that applying its events
    again makes them from the event log. Refused when the log no longer holds the stream's first
    event (the visits before it would be lost), unless `allow_partial`."""
    lock_cursor(conn, branch_id)
    first = conn.execute(
        select(func.min(events.c.seq)).where(events.c.branch_id == branch_id)
    ).scalar()
    if first is not None and first > 1 and not allow_partial:
        raise LogPruned(
            f"{branch_id}: the event log starts at event {first}; the facts of earlier visits "
            "cannot be made again from it"
        )
    take_branch_out_of_network(conn, branch_id)
    for table in BRANCH_ROWS:
        conn.execute(delete(table).where(table.c.branch_id == branch_id))
    conn.execute(
        update(report_cursors)
        .where(report_cursors.c.branch_id == branch_id)
        .values(epoch="", seq=0, updated_at=datetime.now(UTC))
    )


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class _Batch:
    """One transaction's events of several branches: their facts and clocks loaded with one
    statement per table, changed in memory in each branch's event order (`_Projection`), and
    written back with one statement per table."""

    def __init__(
        self, conn: Connection, catalog: Catalog, by_branch: dict[str, list[Row[Any]]]
    ) -> None:
        self.conn = conn
        self.decoded = {
            branch_id: [(row, json.loads(row.data)) for row in rows]
            for branch_id, rows in by_branch.items()
        }
        self.tickets: dict[str, Any] = {}  # shared: a ticket id is one branch's
        self.projections = {
            branch_id: _Projection(catalog, branch_id, self.tickets) for branch_id in by_branch
        }

    def apply(self) -> None:
        self._load()
        for branch_id, decoded in self.decoded.items():
            self.projections[branch_id].apply(decoded)
        self._flush()

    def _load(self) -> None:
        owner = {
            data["ticket"]["id"]: branch_id
            for branch_id, decoded in self.decoded.items()
            for row, data in decoded
            if row.kind.startswith("ticket.")
        }
        for chunk in chunks(sorted(owner)):
            for fact in self.conn.execute(
                select(visit_facts).where(visit_facts.c.ticket_id.in_(chunk))
            ):
                self.projections[owner[fact.ticket_id]].loaded(fact)
            # What the events do not carry: the estimate given, the finishing outcome, and
            # which visit a transfer came from.
            for ticket in self.conn.execute(
                select(
                    tickets.c.id,
                    tickets.c.outcome,
                    tickets.c.wait_estimate_s,
                    tickets.c.wait_p90_s,
                    tickets.c.transferred_from,
                ).where(tickets.c.id.in_(chunk))
            ):
                self.tickets[ticket.id] = ticket
        for clock in self.conn.execute(
            select(counter_clocks).where(counter_clocks.c.branch_id.in_(sorted(self.decoded)))
        ):
            self.projections[clock.branch_id].clocks[clock.counter_id] = dict(clock._mapping)

    def _flush(self) -> None:
        projections = [self.projections[b] for b in sorted(self.projections)]
        facts = [row for p in projections for row in p.changed_facts()]
        upsert_rows(self.conn, visit_facts, facts)
        if facts:
            self._rollups(projections)
        upsert_rows(
            self.conn, counter_clocks, [row for p in projections for row in p.changed_clocks()]
        )
        add_counter_time(self.conn, [row for p in projections for row in p.spent_rows()])

    def _rollups(self, projections: list[_Projection]) -> None:
        """Move the rollup rows (hourly and daily, of the branches and of the network) by what
        the changed facts changed."""
        hourly: BranchDeltas = {}
        daily: BranchDeltas = {}
        agencies: dict[str, str] = {}
        for projection in projections:
            projection.deltas(hourly, daily, agencies)
        network: Deltas = {}
        for (_, service, priority, channel, day), sums in daily.items():
            network.setdefault((service, priority, channel, day), kpis.Sums()).add(sums)

        def hour_fields(branch_id: str, hour: datetime) -> dict[str, Any]:
            return self.projections[branch_id].hour_fields(hour)

        move_branch_rows(self.conn, visit_rollups, "hour", hourly, agencies, hour_fields)
        move_branch_rows(self.conn, visit_days, "local_date", daily, agencies, on_date)
        move_group_days(self.conn, daily, agencies)  # per service, per class (group_rollups)
        move_branch_hours(self.conn, hourly, hour_fields)
        arrivals = network_arrivals(hourly, hour_fields)
        move_network_days(self.conn, network, agencies, arrivals)


class _Projection:
    """One branch's events of a batch: its facts and clocks changed in memory in event order."""

    def __init__(self, catalog: Catalog, branch_id: str, known: dict[str, Any]) -> None:
        self.catalog = catalog
        self.branch_id = branch_id
        timezone = catalog.branches[branch_id].timezone if branch_id in catalog.branches else None
        self.zone = ZoneInfo(timezone or DEFAULT_TIMEZONE)
        self.facts: dict[str, dict[str, Any]] = {}
        self.before: dict[str, kpis.Visit] = {}  # facts as they were before this batch
        self.before_group: dict[str, tuple[str, str, str]] = {}  # and their rollup group
        self.changed: set[str] = set()
        self.clocks: dict[str, dict[str, Any]] = {}
        self.clocks_changed: set[str] = set()
        self.spent: dict[tuple[str, str, datetime], list[int]] = {}  # ms per state
        self.tickets = known

    def loaded(self, fact: Row[Any]) -> None:
        self.facts[fact.ticket_id] = dict(fact._mapping)
        self.before[fact.ticket_id] = visit_of(fact)
        self.before_group[fact.ticket_id] = (fact.service_id, fact.priority, fact.channel)

    def apply(self, decoded: list[tuple[Row[Any], dict[str, Any]]]) -> None:
        for row, data in decoded:
            if row.kind in COUNTER_STATES:
                self._counter_state(data["counter_id"], row.kind, row.at, row.actor)
            elif row.kind.startswith("ticket."):
                self._ticket(row.kind, row.at, row.actor, data)

    # ---- what to write -----------------------------------------------------------------------

    def changed_facts(self) -> list[dict[str, Any]]:
        return [self.facts[ticket_id] for ticket_id in sorted(self.changed)]

    def changed_clocks(self) -> list[dict[str, Any]]:
        return [self.clocks[c] for c in sorted(self.clocks_changed)]

    def spent_rows(self) -> list[dict[str, Any]]:
        return [
            self.hour_fields(hour)
            | {"branch_id": self.branch_id, "counter_id": counter, "operator": who}
            | dict(zip(SPENT, spent, strict=True))
            for (counter, who, hour), spent in sorted(self.spent.items())
        ]

    def deltas(self, hourly: BranchDeltas, daily: BranchDeltas, agencies: dict[str, str]) -> None:
        """Add to the rollups' deltas (keyed by branch first) each changed fact counted in as
        it is now and out as it was before this batch (exact: integers)."""
        branch = self.branch_id
        for fact in self.changed_facts():
            visit = visit_of(_Attributes(fact))
            before = self.before.get(fact["ticket_id"])
            group = (fact["service_id"], fact["priority"], fact["channel"])
            # Counted out where it was: staff granting priority moves a visit between groups.
            was = self.before_group.get(fact["ticket_id"], group)
            for deltas, when in ((hourly, fact["hour"]), (daily, fact["local_date"])):
                deltas.setdefault((branch, *group, when), kpis.Sums()).add_visit(visit)
                if before is not None:
                    deltas.setdefault((branch, *was, when), kpis.Sums()).add_visit(before, sign=-1)
            agencies[fact["service_id"]] = fact["agency_id"]

    def hour_fields(self, hour: datetime) -> dict[str, Any]:
        local = hour.astimezone(self.zone)
        return {
            "hour": hour,
            "local_date": local.date(),
            "local_hour": local.hour,
            "weekday": local.weekday(),
        }

    # ---- tickets -----------------------------------------------------------------------------

    def _ticket(self, kind: str, at: datetime, actor: str | None, data: dict[str, Any]) -> None:
        ticket = data["ticket"]
        ticket_id = ticket["id"]
        if kind == "ticket.issued":
            self._issued(ticket, at, actor)
            return
        fact = self.facts.get(ticket_id)
        if fact is None:
            return  # issued before the kept event log began
        self.changed.add(ticket_id)
        if kind == "ticket.called":
            fact |= {"called_at": at, "counter_id": data.get("counter_id"), "operator": actor}
            self._counter_busy(fact["counter_id"], at, busy=True, actor=actor)
        elif kind == "ticket.recalled":
            fact["recalls"] += 1
        elif kind == "ticket.started":
            fact["started_at"] = at
        elif kind == "ticket.prioritized":
            fact["priority"] = ticket["priority"]
        if kind in FREES_COUNTER and fact["counter_id"]:
            self._counter_busy(fact["counter_id"], at, busy=False, actor=actor)
        if kind == "ticket.recycled":
            fact |= {"called_at": None, "counter_id": None}
        elif kind == "ticket.finished":
            known = self.tickets.get(ticket_id)
            outcome = ticket.get("outcome") or (known.outcome if known else None)
            fact |= {"finished_at": at, "outcome": outcome or kpis.SERVED, "operator": actor}
        elif kind in ENDS:
            fact |= {"finished_at": at, "outcome": ENDS[kind]}
        _derive(fact)

    def _issued(self, ticket: dict[str, Any], at: datetime, actor: str | None) -> None:
        known = self.tickets.get(ticket["id"])
        estimate = ticket.get("wait_estimate_s", known.wait_estimate_s if known else None)
        origin = ticket.get("transferred_from", known.transferred_from if known else None)
        service_id = ticket["service_id"]
        try:
            service = self.catalog.service(service_id)
            agency, target_s = service.agency, service.target_wait_min * 60
        except NotFound:
            agency, target_s = UNKNOWN_AGENCY, 0.0
        hour = floor_hour(at)
        self.facts[ticket["id"]] = {
            "ticket_id": ticket["id"],
            "branch_id": self.branch_id,
            "service_id": service_id,
            "agency_id": agency,
            "priority": ticket["priority"],
            "channel": kpis.channel_of(actor, ticket["priority"], origin).value,
            "label": ticket["label"],
            "issued_at": at,
            "hour": hour,
            "local_date": at.astimezone(self.zone).date(),
            "called_at": None,
            "started_at": None,
            "finished_at": None,
            "counter_id": None,
            "operator": None,
            "outcome": None,
            "wait_s": None,
            "service_s": None,
            "recalls": 0,
            "target_wait_s": float(target_s),
            "wait_estimate_s": None if estimate is None else float(estimate),
            "wait_p90_s": known.wait_p90_s if known else None,
        }
        self.changed.add(ticket["id"])

    # ---- counters ----------------------------------------------------------------------------

    def _counter_state(self, counter_id: str, kind: str, at: datetime, actor: str | None) -> None:
        state = COUNTER_STATES[kind]
        self._counter(counter_id, at, state=state, operator="" if state == "closed" else actor)

    def _counter_busy(
        self, counter_id: str, at: datetime, *, busy: bool, actor: str | None
    ) -> None:
        self._counter(counter_id, at, busy=busy, operator=actor)

    def _counter(
        self,
        counter_id: str,
        at: datetime,
        *,
        state: str | None = None,
        busy: bool | None = None,
        operator: str | None = None,
    ) -> None:
        """Spend the time since the counter's last change on its state then, and change it."""
        clock = self.clocks.get(counter_id)
        if clock is None:  # its opening is older than the kept log: count from now on
            clock = {"branch_id": self.branch_id, "counter_id": counter_id, "state": "open"}
            clock |= {"busy": False, "operator": operator or "", "since": at}
            self.clocks[counter_id] = clock
        self._spend(clock, at)
        if state is not None:
            clock["state"] = state
        if busy is not None:
            clock["busy"] = busy
        if state is not None or not clock["operator"]:
            clock["operator"] = operator or ""
        clock["since"] = at
        self.clocks_changed.add(counter_id)

    def _spend(self, clock: dict[str, Any], until: datetime) -> None:
        start: datetime = clock["since"]
        if until <= start:
            return
        if clock["state"] == "closed":
            # Closed time counts within a day (a counter closed for lunch), not overnight.
            if start.astimezone(self.zone).date() != until.astimezone(self.zone).date():
                return
            kind = 3
        else:
            kind = 2 if clock["state"] == "paused" else (0 if clock["busy"] else 1)
        operator = "" if kind == 3 else clock["operator"]
        moment = start
        while moment < until:
            hour = floor_hour(moment)
            end = min(until, hour + HOUR)
            key = (clock["counter_id"], operator, hour)
            spent = self.spent.setdefault(key, [0, 0, 0, 0])
            # Milliseconds of instants, not of a difference: splits never lose a millisecond.
            spent[kind] += _ms(end) - _ms(moment)
            moment = end


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _derive(fact: dict[str, Any]) -> None:
    """A fact's durations from its times."""
    called, started, finished = fact["called_at"], fact["started_at"], fact["finished_at"]
    fact["wait_s"] = (called - fact["issued_at"]).total_seconds() if called else None
    served = started and finished and fact["outcome"] in kpis.SERVICE_ENDS
    fact["service_s"] = (finished - started).total_seconds() if served else None


def visit_of(fact: Any) -> kpis.Visit:
    """The report's view of a fact row."""
    return kpis.Visit(
        issued_at=fact.issued_at,
        outcome=fact.outcome,
        wait_s=fact.wait_s,
        service_s=fact.service_s,
        recalls=fact.recalls,
        target_wait_s=fact.target_wait_s,
        wait_estimate_s=fact.wait_estimate_s,
        wait_p90_s=fact.wait_p90_s,
    )


class _Attributes:
    """A fact held as a dict, read like a row."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
