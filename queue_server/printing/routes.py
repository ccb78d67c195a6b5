"""HTTP routes of printing: staff see the jobs that did not print and ask for reprints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from queue_server.api.http import Endpoint
from queue_server.errors import BadRequest
from queue_server.printing.jobs import Paper, PrintStatus
from queue_server.printing.service import PrintService, reprint_ticket

DEFAULT_LISTED = (PrintStatus.FAILED, PrintStatus.QUEUED)


class PrinterView(BaseModel):
    model_config = ConfigDict(title="PrinterView")
    id: str
    kiosks: list[str]
    connected: bool
    online: bool | None
    paper: Paper


class PrintError(BaseModel):
    code: str
    message: str


class PrintView(BaseModel):
    """The `print` part of a ticket view."""

    model_config = ConfigDict(title="PrintView")
    status: PrintStatus
    error: PrintError | None
    reprint: bool
    printer: PrinterView | None


class PrintJobView(PrintView):
    model_config = ConfigDict(title="PrintJobView")
    ticket_id: str
    label: str
    kiosk_id: str
    printer_id: str | None
    created_at: str
    updated_at: str


def _rigi(request: Request) -> Any:
    return request.app.state.rigi


def _authorize_branch(request: Request, access: str, branch: str) -> None:
    """Routes keyed by a ticket, not a branch, check the ticket's branch here."""
    try:
        from queue_server.access.policy import authorize
        from queue_server.api.http import principal_of
    except ImportError:  # a server without access control yet
        return
    authorize(principal_of(request), access, branch)


async def list_print_jobs(request: Request, branch: str) -> list[dict[str, Any]]:
    """Jobs of a branch that have not printed (failed or still queued), oldest first.
    `?status=failed,queued,printed,no_printer` picks others."""
    wanted = request.query_params.get("status")
    try:
        statuses = (
            [PrintStatus(s) for s in wanted.split(",") if s] if wanted else list(DEFAULT_LISTED)
        )
    except ValueError:
        raise BadRequest(
            "status must be a comma-separated list of queued, printed, failed, no_printer.",
            code="bad_status",
        ) from None
    service: PrintService = _rigi(request).printing
    return await service.jobs.jobs(branch, statuses)


async def list_printers(request: Request, branch: str) -> list[dict[str, Any]]:
    service: PrintService = _rigi(request).printing
    return await service.jobs.printers(branch)


async def reprint(request: Request, ticket_id: str) -> dict[str, Any]:
    rigi = _rigi(request)
    ticket = await rigi.store.ticket(ticket_id)
    _authorize_branch(request, "staff", ticket["branch"])
    return await reprint_ticket(rigi, ticket_id)


B = "/api/v1/branches/{branch}"

PRINTING_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", B + "/print-jobs", list_print_jobs, "Print jobs that failed or wait",
             response=list[PrintJobView], errors=(400, 404), access="staff", tags=("printing",)),
    Endpoint("GET", B + "/printers", list_printers, "Ticket printers and their health",
             response=list[PrinterView], errors=(404,), access="staff", tags=("printing",)),
    Endpoint("POST", "/api/v1/tickets/{ticket_id}/reprint", reprint,
             "Print a ticket again at its kiosk, marked REPRINT", response=PrintView,
             errors=(404, 409), access="staff", tags=("printing", "tickets")),
)  # fmt: skip
