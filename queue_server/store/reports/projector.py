"""The projector: applies a branch's events, in order, to the visit facts, rollups and counter
time, and moves the branch's cursor in the same transaction. An event at or below the cursor is
never applied again; one the cursor has not reached is never lost (pruning waits for it).

Everything here is synchronous over one `Connection` (run through `AsyncConnection.run_sync`),
so a batch of many events is one transaction and one thread crossing per statement at most.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, delete, func, select, update

from queue_server.catalog.loader import Catalog
from queue_server.domain import kpis
from queue_server.domain.numbering import DEFAULT_TIMEZONE
from queue_server.errors import NotFound
from queue_server.store.schema import branch_streams, events, tickets
from queue_server.store.schema_reports import (
    counter_clocks,
    counter_time,
    report_cursors,
    visit_days,
    visit_facts,
    visit_rollups,
)
from queue_server.store.statements import upsert_insert

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
    cursor = _lock_cursor(conn, branch_id)
    head = conn.execute(
        select(branch_streams.c.epoch).where(branch_streams.c.branch_id == branch_id)
    ).scalar_one_or_none()
    if head is None:
        return Applied(0, None, 0)
    epoch, seq = cursor if cursor and cursor[0] == head else (head, 0)  # a new epoch restarts
    rows = conn.execute(
        select(events)
        .where(events.c.branch_id == branch_id, events.c.seq > seq, events.c.epoch == epoch)
        .order_by(events.c.seq)
        .limit(limit)
    ).all()
    if rows and rows[0].seq != seq + 1:
        log.warning(
            "%s: events %d..%d were pruned before reports applied them",
            branch_id,
            seq + 1,
            rows[0].seq - 1,
        )
    if rows:
        projection = _Projection(conn, catalog, branch_id)
        projection.apply(rows)
        seq = rows[-1].seq
    if cursor != (epoch, seq):
        conn.execute(
            update(report_cursors)
            .where(report_cursors.c.branch_id == branch_id)
            .values(epoch=epoch, seq=seq, updated_at=datetime.now(UTC))
        )
    return Applied(len(rows), epoch, seq)


def reset_branch(conn: Connection, branch_id: str, *, allow_partial: bool = False) -> None:
    """Forget a branch's facts, rollups, counter time and cursor, so that applying its events
    again makes them from the event log. Refused when the log no longer holds the stream's first
    event (the visits before it would be lost), unless `allow_partial`."""
    _lock_cursor(conn, branch_id)
    first = conn.execute(
        select(func.min(events.c.seq)).where(events.c.branch_id == branch_id)
    ).scalar()
    if first is not None and first > 1 and not allow_partial:
        raise LogPruned(
            f"{branch_id}: the event log starts at event {first}; the facts of earlier visits "
            "cannot be made again from it"
        )
    for table in (visit_facts, visit_rollups, visit_days, counter_time, counter_clocks):
        conn.execute(delete(table).where(table.c.branch_id == branch_id))
    conn.execute(
        update(report_cursors)
        .where(report_cursors.c.branch_id == branch_id)
        .values(epoch="", seq=0, updated_at=datetime.now(UTC))
    )


def _lock_cursor(conn: Connection, branch_id: str) -> tuple[str, int] | None:
    """Make sure the branch's cursor row exists and lock it (FOR UPDATE on PostgreSQL; on
    SQLite the insert takes the database's one write lock). None: nothing applied yet."""
    insert = upsert_insert(conn.dialect.name)(report_cursors).values(
        branch_id=branch_id, epoch="", seq=0, updated_at=datetime.now(UTC)
    )
    conn.execute(insert.on_conflict_do_nothing(index_elements=[report_cursors.c.branch_id]))
    row = conn.execute(
        select(report_cursors.c.epoch, report_cursors.c.seq)
        .where(report_cursors.c.branch_id == branch_id)
        .with_for_update()
    ).one()
    return (row.epoch, row.seq) if row.epoch else None


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class _Projection:
    """One batch of one branch's events: facts and clocks loaded once, changed in memory in
    event order, and written back together."""

    def __init__(self, conn: Connection, catalog: Catalog, branch_id: str) -> None:
        self.conn = conn
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
        self.tickets: dict[str, Any] = {}

    def apply(self, rows: Iterable[Row[Any]]) -> None:
        decoded = [(row, json.loads(row.data)) for row in rows]
        self._load(decoded)
        for row, data in decoded:
            if row.kind in COUNTER_STATES:
                self._counter_state(data["counter_id"], row.kind, row.at, row.actor)
            elif row.kind.startswith("ticket."):
                self._ticket(row.kind, row.at, row.actor, data)
        self._flush()

    # ---- loading and writing -----------------------------------------------------------------

    def _load(self, decoded: list[tuple[Row[Any], dict[str, Any]]]) -> None:
        ids = {data["ticket"]["id"] for row, data in decoded if row.kind.startswith("ticket.")}
        for chunk in _chunks(sorted(ids)):
            for fact in self.conn.execute(
                select(visit_facts).where(visit_facts.c.ticket_id.in_(chunk))
            ):
                self.facts[fact.ticket_id] = dict(fact._mapping)
                self.before[fact.ticket_id] = visit_of(fact)
                self.before_group[fact.ticket_id] = (fact.service_id, fact.priority, fact.channel)
            # What the events do not carry: the estimate given, the finishing outcome, and
            # which visit a transfer came from.
            for ticket in self.conn.execute(
                select(
                    tickets.c.id,
                    tickets.c.outcome,
                    tickets.c.wait_estimate_s,
                    tickets.c.transferred_from,
                ).where(tickets.c.id.in_(chunk))
            ):
                self.tickets[ticket.id] = ticket
        for clock in self.conn.execute(
            select(counter_clocks).where(counter_clocks.c.branch_id == self.branch_id)
        ):
            self.clocks[clock.counter_id] = dict(clock._mapping)

    def _flush(self) -> None:
        dialect = self.conn.dialect.name
        if self.changed:
            rows = [self.facts[ticket_id] for ticket_id in sorted(self.changed)]
            _upsert(self.conn, dialect, visit_facts, rows)
            self._rollups(rows)
        if self.clocks_changed:
            rows = [self.clocks[c] for c in sorted(self.clocks_changed)]
            _upsert(self.conn, dialect, counter_clocks, rows)
        if self.spent:
            insert = upsert_insert(dialect)(counter_time)
            sums = {name: counter_time.c[name] + insert.excluded[name] for name in _SPENT}
            self.conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[c for c in counter_time.primary_key], set_=sums
                ),
                [
                    self._hour_fields(hour)
                    | {"branch_id": self.branch_id, "counter_id": counter, "operator": who}
                    | dict(zip(_SPENT, spent, strict=True))
                    for (counter, who, hour), spent in sorted(self.spent.items())
                ],
            )

    def _rollups(self, changed: list[dict[str, Any]]) -> None:
        """Move the rollup rows (hourly and daily) of the changed facts by what changed: each
        fact counted in as it is now and out as it was before this batch (exact: integers)."""
        hourly: dict[tuple[str, str, str, Any], kpis.Sums] = {}
        daily: dict[tuple[str, str, str, Any], kpis.Sums] = {}
        agencies: dict[str, str] = {}
        for fact in changed:
            visit = visit_of(_Attributes(fact))
            before = self.before.get(fact["ticket_id"])
            group = (fact["service_id"], fact["priority"], fact["channel"])
            # Counted out where it was: staff granting priority moves a visit between groups.
            was = self.before_group.get(fact["ticket_id"], group)
            for deltas, when in ((hourly, fact["hour"]), (daily, fact["local_date"])):
                deltas.setdefault((*group, when), kpis.Sums()).add_visit(visit)
                if before is not None:
                    deltas.setdefault((*was, when), kpis.Sums()).add_visit(before, sign=-1)
            agencies[fact["service_id"]] = fact["agency_id"]
        self._move(visit_rollups, "hour", hourly, agencies, self._hour_fields)
        self._move(visit_days, "local_date", daily, agencies, lambda day: {"local_date": day})

    def _move(
        self,
        table: Any,
        when: str,
        deltas: dict[tuple[str, str, str, Any], kpis.Sums],
        agencies: dict[str, str],
        fields_of: Any,
    ) -> None:
        """Add `deltas` to the rows of `table` (keyed by service, priority, channel, `when`)."""
        current: dict[tuple[str, str, str, Any], kpis.Sums] = {}
        for chunk in _chunks(sorted({key[3] for key in deltas})):
            for row in self.conn.execute(
                select(table).where(table.c.branch_id == self.branch_id, table.c[when].in_(chunk))
            ):
                key = (row.service_id, row.priority, row.channel, getattr(row, when))
                if key in deltas:
                    current[key] = sums_of_row(row)
        rows = []
        for key, delta in sorted(deltas.items()):
            sums = current.get(key) or kpis.Sums()
            sums.add(delta)
            service, priority, channel, moment = key
            rows.append(
                rollup_row(sums)
                | fields_of(moment)
                | {
                    "branch_id": self.branch_id,
                    "service_id": service,
                    "agency_id": agencies[service],
                    "priority": priority,
                    "channel": channel,
                }
            )
        _upsert(self.conn, self.conn.dialect.name, table, rows)

    def _hour_fields(self, hour: datetime) -> dict[str, Any]:
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


_SPENT = ("serving_ms", "idle_ms", "paused_ms", "closed_ms")
_HIST_FIELDS = frozenset({"wait_hist", "service_hist"})


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
    )


class _Attributes:
    """A fact held as a dict, read like a row."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def rollup_row(sums: kpis.Sums) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in kpis.Sums.__dataclass_fields__:
        value = getattr(sums, name)
        row[name] = json.dumps(value, sort_keys=True) if name in _HIST_FIELDS else value
    return row


def sums_of_row(row: Any) -> kpis.Sums:
    """A rollup row as sums, ready to add to others."""
    values = {}
    for name in kpis.Sums.__dataclass_fields__:
        value = getattr(row, name)
        if name in _HIST_FIELDS:
            value = {int(bucket): count for bucket, count in json.loads(value).items()}
        values[name] = value
    return kpis.Sums(**values)


def _upsert(conn: Connection, dialect: str, table: Any, rows: list[dict[str, Any]]) -> None:
    insert = upsert_insert(dialect)(table)
    keys = [c.name for c in table.primary_key]
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=keys,
            set_={c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys},
        ),
        rows,
    )


def _chunks(items: list[Any], size: int = 500) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
