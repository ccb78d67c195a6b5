"""Print jobs and printers in the database.

A ticket issued at a kiosk gets one print job whose id is the ticket's id (docs/printing.md).
Every change of a job or of a printer's health is one transaction that also appends its event
(`printer.job`, `printer.health`), so the kiosk and the branch's live view hear of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, delete, or_, select, update

from queue_server.catalog.loader import Catalog
from queue_server.catalog.models import LANGUAGES
from queue_server.errors import Conflict, NotFound
from queue_server.store.database import Database
from queue_server.store.events import Event, append_event
from queue_server.store.schema_printing import print_jobs, printer_kiosks, printers
from queue_server.store.statements import upsert_insert

ERROR_MESSAGE_MAX = 500
PRINTING_ACTOR = "printing"


class PrintStatus(StrEnum):
    QUEUED = "queued"
    PRINTED = "printed"
    FAILED = "failed"
    NO_PRINTER = "no_printer"


class Paper(StrEnum):
    OK = "ok"
    NEAR_END = "near_end"
    OUT = "out"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class PrintChange:
    """What a printing operation returns: its result, the events to publish after the commit,
    and the `print` messages to send to agents."""

    result: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)


def print_message(job: Row[Any] | dict[str, Any]) -> dict[str, Any]:
    """The `print` frame of docs/printing.md for a stored job."""
    data = job if isinstance(job, dict) else dict(job._mapping)
    return {
        "type": "print",
        "printer": data["printer_id"],
        "job": {
            "id": data["id"],
            "reprint": bool(data["reprint"]),
            "kiosk": data["kiosk_id"],
            "ticket": json.loads(data["ticket"]),
        },
    }


def printer_view(row: Row[Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "id": row.printer_id,
        "kiosks": json.loads(row.kiosks),
        "connected": bool(row.connected),
        "online": row.online,
        "paper": row.paper,
    }


def _waiting_reason(printer: Row[Any] | None) -> dict[str, str] | None:
    """Why a queued job is not printing yet, for the kiosk's screen; None when nothing is wrong."""
    if printer is None:
        return None
    if not printer.connected:
        return {"code": "printer_agent_offline", "message": "The printer's computer is offline."}
    if printer.online is False:
        return {"code": "printer_offline", "message": "The printer is offline."}
    if printer.paper == Paper.OUT:
        return {"code": "paper_out", "message": "The printer is out of paper."}
    return None


def job_view(job: Row[Any], printer: Row[Any] | None) -> dict[str, Any]:
    """The `print` part of a ticket view: status, what went wrong, the printer's health."""
    error: dict[str, str] | None
    if job.status == PrintStatus.FAILED:
        error = {"code": job.error_code or "print_failed", "message": job.error_message or ""}
    elif job.status == PrintStatus.QUEUED:
        error = _waiting_reason(printer)
    else:
        error = None
    return {
        "status": job.status,
        "error": error,
        "reprint": bool(job.reprint),
        "printer": printer_view(printer),
    }


class PrintJobs:
    """Print jobs and printer health of every branch, kept in the database."""

    def __init__(self, database: Database, catalog: Catalog, clock: Callable[[], datetime]) -> None:
        self.database = database
        self.catalog = catalog
        self.clock = clock

    # ---- jobs ----------------------------------------------------------------------------

    async def request(
        self, ticket_view: dict[str, Any], kiosk_id: str, *, reprint: bool = False
    ) -> PrintChange:
        """Store the print job of a ticket issued at `kiosk_id`. Asking again for the same
        ticket (a retried issue) changes nothing and answers the job's status; `reprint`
        queues a printed or failed ticket once more, marked REPRINT."""
        branch_id = ticket_view["branch"]
        ticket_id = ticket_view["id"]
        now = self.clock()

        def body(conn: Connection) -> Any:
            job = _job_row(conn, ticket_id, lock=True)
            if job is not None and not reprint:
                return PrintChange(self._view(conn, job))
            if job is not None:
                return self._requeue(conn, job, now)
            printer_id = (
                conn.execute(
                    select(printer_kiosks.c.printer_id).where(
                        printer_kiosks.c.branch_id == branch_id,
                        printer_kiosks.c.kiosk_id == kiosk_id,
                    )
                )
            ).scalar()
            row = {
                "id": ticket_id,
                "branch_id": branch_id,
                "kiosk_id": kiosk_id,
                "printer_id": printer_id,
                "status": PrintStatus.QUEUED if printer_id else PrintStatus.NO_PRINTER,
                "reprint": False,
                "prints": 0,
                "ticket": json.dumps(self._ticket_json(ticket_view), ensure_ascii=False),
                "created_at": now,
                "updated_at": now,
                "sent_at": None,
            }
            conn.execute(print_jobs.insert().values(**row))
            job = _job_row(conn, ticket_id)
            assert job is not None
            view = self._view(conn, job)
            event = _job_event(conn, job, view, now)
            messages = [print_message(job)] if printer_id else []
            return PrintChange(view, [event], messages)

        return await self.database.transaction(body)

    async def reprint(self, ticket_id: str) -> PrintChange:
        """Staff ask for a ticket to be printed again at the kiosk it was issued at."""
        now = self.clock()

        def body(conn: Connection) -> Any:
            job = _job_row(conn, ticket_id, lock=True)
            if job is None:
                raise NotFound("This ticket was never printed.", code="no_print_job")
            if job.printer_id is None:
                raise Conflict(
                    "The kiosk this ticket was issued at has no printer.", code="no_printer"
                )
            return self._requeue(conn, job, now)

        return await self.database.transaction(body)

    def _requeue(self, conn: Connection, job: Row[Any], now: datetime) -> PrintChange:
        if job.status == PrintStatus.QUEUED:
            # Not printed yet: sending it again is enough, and it must not say REPRINT.
            return PrintChange(self._view(conn, job), [], [print_message(job)])
        if job.printer_id is None:
            return PrintChange(self._view(conn, job))
        conn.execute(
            update(print_jobs)
            .where(print_jobs.c.id == job.id)
            .values(
                status=PrintStatus.QUEUED,
                reprint=True,
                error_code=None,
                error_message=None,
                updated_at=now,
                sent_at=None,
            )
        )
        requeued = _job_row(conn, job.id)
        assert requeued is not None
        view = self._view(conn, requeued)
        event = _job_event(conn, requeued, view, now)
        return PrintChange(view, [event], [print_message(requeued)])

    async def acknowledge(self, branch_id: str, ack: dict[str, Any]) -> PrintChange | None:
        """Record an agent's result. Acks repeat after reconnects and are idempotent; an ack
        of the first print arriving after a reprint was asked for is ignored."""
        job_id = str(ack.get("job_id") or "")
        printed = ack.get("result") == "printed"
        now = self.clock()

        def body(conn: Connection) -> Any:
            job = _job_row(conn, job_id, lock=True)
            if job is None or job.branch_id != branch_id:
                return None
            if job.status != PrintStatus.QUEUED:
                return None  # already recorded
            if printed and job.reprint and not ack.get("reprint"):
                return None  # the original print's ack, late: the reprint is still due
            values: dict[str, Any] = {"updated_at": now}
            if printed:
                values |= {"status": PrintStatus.PRINTED, "prints": job.prints + 1}
            else:
                error = ack.get("error") or {}
                values |= {
                    "status": PrintStatus.FAILED,
                    "error_code": str(error.get("code") or "print_failed")[:32],
                    "error_message": str(error.get("message") or "")[:ERROR_MESSAGE_MAX],
                }
            conn.execute(update(print_jobs).where(print_jobs.c.id == job_id).values(**values))
            job = _job_row(conn, job_id)
            assert job is not None
            view = self._view(conn, job)
            event = _job_event(conn, job, view, now)
            return PrintChange(view, [event])

        return await self.database.transaction(body)

    async def pending(
        self, branch_id: str, printer_ids: Iterable[str], *, sent_before: datetime | None = None
    ) -> list[dict[str, Any]]:
        """`print` messages of jobs still waiting for an ack, oldest first; with `sent_before`
        only those never sent or sent before then (the ack timed out)."""
        query = select(print_jobs).where(
            print_jobs.c.branch_id == branch_id,
            print_jobs.c.printer_id.in_(list(printer_ids)),
            print_jobs.c.status == PrintStatus.QUEUED,
        )
        if sent_before is not None:
            query = query.where(
                or_(print_jobs.c.sent_at.is_(None), print_jobs.c.sent_at < sent_before)
            )

        def body(conn: Connection) -> Any:
            rows = (conn.execute(query.order_by(print_jobs.c.created_at))).all()
            return [print_message(row) for row in rows]

        return await self.database.reading(body)

    async def queued_message(self, job_id: str) -> dict[str, Any] | None:

        def body(conn: Connection) -> Any:
            job = _job_row(conn, job_id)
            if job is None or job.status != PrintStatus.QUEUED:
                return None
            return print_message(job)

        return await self.database.reading(body)

    async def mark_sent(self, job_ids: list[str]) -> None:
        """Remember when jobs went out, so that an ack that never comes sends them again."""
        if not job_ids:
            return

        def body(conn: Connection) -> Any:
            conn.execute(
                update(print_jobs)
                .where(print_jobs.c.id.in_(job_ids), print_jobs.c.status == PrintStatus.QUEUED)
                .values(sent_at=self.clock())
            )

        return await self.database.transaction(body)

    async def status(self, ticket_id: str) -> dict[str, Any] | None:
        """The `print` part of a ticket's view; None when it was never meant to be printed."""
        return (await self.statuses([ticket_id])).get(ticket_id)

    async def statuses(self, ticket_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """The `print` parts of several tickets' views, read together (tickets never meant to
        be printed are left out)."""
        return await self.database.reading(lambda conn: print_statuses(conn, ticket_ids))

    async def jobs(self, branch_id: str, statuses: Iterable[PrintStatus]) -> list[dict[str, Any]]:
        """Jobs of a branch in the given states, oldest first, for staff to act on."""
        self.catalog.branch(branch_id)

        def body(conn: Connection) -> Any:
            rows = (
                conn.execute(
                    select(print_jobs)
                    .where(
                        print_jobs.c.branch_id == branch_id,
                        print_jobs.c.status.in_([s.value for s in statuses]),
                    )
                    .order_by(print_jobs.c.created_at)
                )
            ).all()
            known = _printer_rows(conn, branch_id)
            return [
                {
                    "ticket_id": row.id,
                    "label": json.loads(row.ticket)["label"],
                    "kiosk_id": row.kiosk_id,
                    "printer_id": row.printer_id,
                    "created_at": row.created_at.isoformat(),
                    "updated_at": row.updated_at.isoformat(),
                }
                | job_view(row, known.get(row.printer_id))
                for row in rows
            ]

        return await self.database.reading(body)

    # ---- printers ------------------------------------------------------------------------

    async def connect_agent(self, branch_id: str, declared: list[dict[str, Any]]) -> list[Event]:
        """An agent said hello: remember its printers and which kiosks print where."""
        now = self.clock()
        events: list[Event] = []

        def body(conn: Connection) -> Any:
            for printer in declared:
                kiosks = list(dict.fromkeys(printer["kiosks"]))
                values = {
                    "kiosks": json.dumps(kiosks),
                    "width": printer.get("width"),
                    "connected": True,
                    "updated_at": now,
                }
                insert = upsert_insert(conn.dialect.name)(printers).values(
                    branch_id=branch_id, printer_id=printer["id"], paper=Paper.UNKNOWN, **values
                )
                conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=[printers.c.branch_id, printers.c.printer_id], set_=values
                    )
                )
                conn.execute(
                    delete(printer_kiosks).where(
                        printer_kiosks.c.branch_id == branch_id,
                        or_(
                            printer_kiosks.c.printer_id == printer["id"],
                            printer_kiosks.c.kiosk_id.in_(kiosks),
                        ),
                    )
                )
                if kiosks:
                    conn.execute(
                        printer_kiosks.insert(),
                        [
                            {"branch_id": branch_id, "kiosk_id": k, "printer_id": printer["id"]}
                            for k in kiosks
                        ],
                    )
                events.append(self._health_event(conn, branch_id, printer["id"], now))
            return events

        return await self.database.transaction(body)

    async def record_health(
        self, branch_id: str, printer_id: str, *, online: bool, paper: str
    ) -> list[Event]:
        """A health report; an event only when something changed."""
        now = self.clock()
        paper = paper if paper in set(Paper) else Paper.UNKNOWN

        def body(conn: Connection) -> Any:
            row = _printer_row(conn, branch_id, printer_id)
            if row is None:
                return []  # a printer the agent did not declare in its hello
            if row.online is online and row.paper == paper and row.connected:
                return []
            conn.execute(
                update(printers)
                .where(printers.c.branch_id == branch_id, printers.c.printer_id == printer_id)
                .values(online=online, paper=paper, connected=True, updated_at=now)
            )
            return [self._health_event(conn, branch_id, printer_id, now)]

        return await self.database.transaction(body)

    async def disconnect_agent(self, branch_id: str, printer_ids: Iterable[str]) -> list[Event]:
        """The agent's connection ended: its printers cannot print until it is back."""
        now = self.clock()
        events: list[Event] = []

        def body(conn: Connection) -> Any:
            for printer_id in printer_ids:
                conn.execute(
                    update(printers)
                    .where(printers.c.branch_id == branch_id, printers.c.printer_id == printer_id)
                    .values(connected=False, updated_at=now)
                )
                events.append(self._health_event(conn, branch_id, printer_id, now))
            return events

        return await self.database.transaction(body)

    async def printers(self, branch_id: str) -> list[dict[str, Any]]:
        self.catalog.branch(branch_id)

        def body(conn: Connection) -> Any:
            rows = _printer_rows(conn, branch_id)
            return [printer_view(row) for row in rows.values()]

        return await self.database.reading(body)

    def _view(self, conn: Connection, job: Row[Any]) -> dict[str, Any]:
        printer = None
        if job.printer_id is not None:
            printer = _printer_row(conn, job.branch_id, job.printer_id)
        return job_view(job, printer)

    def _health_event(
        self, conn: Connection, branch_id: str, printer_id: str, now: datetime
    ) -> Event:
        row = _printer_row(conn, branch_id, printer_id)
        data = printer_view(row)
        assert data is not None
        return append_event(conn, branch_id, "printer.health", now, data, PRINTING_ACTOR)

    def _ticket_json(self, view: dict[str, Any]) -> dict[str, Any]:
        """What the agent lays out: names in every language it may need, nothing personal."""
        service = self.catalog.service(view["service_id"])
        branch = self.catalog.branch(view["branch"]).name
        return {
            "label": view["label"],
            "language": view.get("language") or "ka",
            "service_name": {lang: getattr(service.name, lang) for lang in LANGUAGES},
            "documents": [
                {lang: text for lang in LANGUAGES if (text := getattr(document, lang))}
                for document in service.documents
            ],
            "online_url": service.online_url,
            "branch_name": {lang: getattr(branch, lang) for lang in LANGUAGES},
            "issued_at": view["issued_at"],
            "people_ahead": view.get("people_ahead"),
            "wait_minutes": view.get("wait_minutes"),
            "status_url": view.get("status_url"),
            # a kiosk's priority that the attendant must still confirm (docs/bookings.md)
            "priority_requested": bool(view.get("priority_requested")),
        }


def _job_event(conn: Connection, job: Row[Any], view: dict[str, Any], now: datetime) -> Event:
    data = {"ticket_id": job.id, "kiosk_id": job.kiosk_id, "printer_id": job.printer_id}
    return append_event(
        conn, job.branch_id, "printer.job", now, data | {"print": view}, PRINTING_ACTOR
    )


def _job_row(conn: Connection, job_id: str, *, lock: bool = False) -> Row[Any] | None:
    query = select(print_jobs).where(print_jobs.c.id == job_id)
    if lock:
        query = query.with_for_update()
    return (conn.execute(query)).one_or_none()


def _printer_row(conn: Connection, branch_id: str, printer_id: str) -> Row[Any] | None:
    return (
        conn.execute(
            select(printers).where(
                printers.c.branch_id == branch_id, printers.c.printer_id == printer_id
            )
        )
    ).one_or_none()


def _printer_rows(conn: Connection, branch_id: str) -> dict[str, Row[Any]]:
    rows = conn.execute(
        select(printers).where(printers.c.branch_id == branch_id).order_by(printers.c.printer_id)
    )
    return {row.printer_id: row for row in rows}


def print_statuses(conn: Connection, ticket_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """`PrintJobs.statuses` as a plain read, so a caller can run it inside its own read (the
    phones' refresh reads their tickets and these in one round of queries)."""
    jobs = conn.execute(select(print_jobs).where(print_jobs.c.id.in_(list(ticket_ids)))).all()
    known: dict[str, dict[str, Row[Any]]] = {}
    for branch_id in {job.branch_id for job in jobs if job.printer_id is not None}:
        known[branch_id] = _printer_rows(conn, branch_id)
    return {job.id: job_view(job, known.get(job.branch_id, {}).get(job.printer_id)) for job in jobs}
