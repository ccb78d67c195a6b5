"""The audit trail over HTTP: `GET /api/v1/audit` (JSON, paged) and `/api/v1/audit.csv`, and
the lifespan part that prunes it by age.

A branch manager reads their own branch's trail; an admin reads every branch's, and the
network-wide actions (people managed by an admin). Filters: branch, person, device, kind
(`counter` or `counter.opened`), from and to (ISO dates or times, UTC unless zoned).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from queue_server.access.principal import Role
from queue_server.api.http import Endpoint, principal_of
from queue_server.errors import Forbidden, ValidationFailed
from queue_server.store import audit as trail

if TYPE_CHECKING:
    from queue_server.app import Rigi


log = logging.getLogger(__name__)
CSV_MAX_ROWS = 100_000
CSV_COLUMNS = ("at", "branch", "actor", "role", "person", "device", "kind", "target", "detail")
PRUNE_INTERVAL_S = 3600.0
NAME_PATTERN = r"^[^\x00-\x1f]{1,120}$"


class AuditFilter(BaseModel):
    """The query parameters of an audit read."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    branch: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    person: str | None = Field(default=None, pattern=NAME_PATTERN)
    device: str | None = Field(default=None, pattern=NAME_PATTERN)
    kind: str | None = Field(default=None, pattern=r"^[a-z_]{1,32}(\.[a-z_]{1,32})?$")
    since: datetime | date | None = Field(default=None, alias="from")
    until: datetime | date | None = Field(default=None, alias="to")
    before: int | None = Field(default=None, ge=1, description="page: entries older than this id")
    limit: int = Field(default=100, ge=1, le=trail.PAGE_MAX)


class AuditEntry(BaseModel):
    id: int
    at: str
    branch: str | None
    actor: str
    role: str
    person: str | None
    device: str | None
    kind: str
    target: str | None
    detail: dict[str, Any]


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_before: int | None = Field(description="pass as `before` for the next (older) page")


def _query(request: Request, limit: int | None = None) -> trail.AuditQuery:
    """The filters of the request, narrowed to what the caller may read."""
    try:
        wanted = AuditFilter.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise ValidationFailed(
            "Some query parameters are wrong.",
            fields=[
                {"field": str(e["loc"][0]) if e["loc"] else "", "problem": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False)
            ],
        ) from None
    principal = principal_of(request)
    branch = wanted.branch
    if principal.role is not Role.ADMIN:
        if branch is not None and branch != principal.branch:
            raise Forbidden("This belongs to another branch.", code="forbidden_branch")
        branch = principal.branch
    if branch is not None:
        request.app.state.rigi.catalog.branch(branch)
    return trail.AuditQuery(
        branch=branch,
        person=wanted.person,
        device=wanted.device,
        kind=wanted.kind,
        since=_moment(wanted.since, end=False),
        until=_moment(wanted.until, end=True),
        before=wanted.before,
        limit=limit or wanted.limit,
    )


def _moment(value: datetime | date | None, *, end: bool) -> datetime | None:
    """A bound of the period: a date means the whole day (`to` includes it), UTC if unzoned."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value + timedelta(days=1) if end else value, time())
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def read_audit(request: Request) -> dict[str, Any]:
    """Who did what, when: newest first, one page."""
    query = _query(request)
    entries = await request.app.state.rigi.database.reading(lambda c: trail.read(c, query))
    full = len(entries) == min(query.limit, trail.PAGE_MAX)
    return {"entries": entries, "next_before": entries[-1]["id"] if full else None}


async def audit_csv(request: Request) -> Response:
    """The same trail as a CSV file (UTF-8 with a BOM, so spreadsheets read Georgian)."""
    query = _query(request)
    database = request.app.state.rigi.database
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    written = 0
    before = query.before
    while written < CSV_MAX_ROWS:
        page = replace(query, before=before, limit=trail.PAGE_MAX)
        rows = await database.reading(lambda c, q=page: trail.read(c, q))
        for row in rows:
            writer.writerow([_csv_cell(row, column) for column in CSV_COLUMNS])
        written += len(rows)
        if len(rows) < trail.PAGE_MAX:
            break
        before = rows[-1]["id"]
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


def _csv_cell(row: dict[str, Any], column: str) -> str:
    value = row[column]
    if column == "detail":
        return "; ".join(f"{k}={v}" for k, v in value.items())
    text = "" if value is None else str(value)
    # A cell a spreadsheet would run as a formula is written as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


@contextlib.asynccontextmanager
async def audit_pruning(rigi: Rigi) -> AsyncIterator[None]:
    """Lifespan part: drop audit rows older than `RIGI_AUDIT_DAYS`, hourly."""

    async def prune() -> None:
        while True:
            try:
                cutoff = rigi.store.clock() - timedelta(days=rigi.settings.audit_days)
                pruned = await rigi.database.transaction(
                    functools.partial(trail.prune_audit, older_than=cutoff)
                )
                if pruned:
                    log.info("pruned %d audit rows older than %s", pruned, cutoff.date())
            except Exception:
                log.exception("pruning the audit trail failed; retrying later")
            await asyncio.sleep(PRUNE_INTERVAL_S)

    task = asyncio.create_task(prune(), name="prune-audit")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


AUDIT_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/v1/audit", read_audit,
             "The audit trail: who did what, when (filters: branch, person, device, kind, "
             "from, to; paged by `before`)", response=AuditPage, access="manager",
             errors=(403, 404, 422), tags=("audit",), query=AuditFilter),
    Endpoint("GET", "/api/v1/audit.csv", audit_csv, "The audit trail as CSV (same filters)",
             access="manager", errors=(403, 404, 422), tags=("audit",), query=AuditFilter,
             media_type="text/csv"),
)  # fmt: skip
