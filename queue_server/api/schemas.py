"""Request and response bodies, validated by pydantic and published in /openapi.json."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from queue_server.catalog.models import Language
from queue_server.domain.tickets import Outcome, Priority

SLUG = r"^[A-Za-z0-9_-]{1,64}$"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IssueTicket(Body):
    service_id: str = Field(pattern=SLUG)
    priority: Priority = Priority.NORMAL
    language: Language = "ka"
    appointment_at: AwareDatetime | None = None


class PauseCounter(Body):
    reason: str = Field(min_length=1, max_length=200)


class FinishVisit(Body):
    outcome: Literal[Outcome.SERVED, Outcome.NOT_SERVED, Outcome.REFERRED] = Outcome.SERVED


class TransferVisit(Body):
    service_id: str | None = Field(default=None, pattern=SLUG)
    counter_id: str | None = Field(default=None, pattern=SLUG)
    keep_queue_time: bool = True


class CallTicket(Body):
    ticket_id: str = Field(pattern=r"^[0-9a-f]{32}$")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, object] | None = None


class TicketView(BaseModel):
    id: str
    branch: str
    label: str
    letter: str
    number: int
    service_id: str
    service_name: str
    status: str
    priority: str
    language: str
    counter_id: str | None
    counter_number: int | None
    issued_at: datetime
    called_at: datetime | None
    recalls: int
    people_ahead: int | None = None
    wait_minutes: int | None = None  # the forecast's median (estimate_wait until it is ready)
    wait_range: dict[str, int] | None = None  # {"median_min", "p90_min"} once forecast
    served_now: bool | None = None  # False: no open counter serves the service now
    next_open_at: datetime | None = None  # when not served now, when a counter serving it opens
    reason: str | None = None
    transferred_to: object | None = None
    print: dict[str, object] | None = None  # the ticket's print job, when issued at a kiosk
    # A kiosk asked for priority where the attendant confirms it: issued normal until then.
    priority_requested: bool | None = None


class CounterView(BaseModel):
    counter_id: str
    number: int
    area: str
    state: str
    pause_reason: str | None
    operator: str | None
    current_ticket_id: str | None


class CounterChange(BaseModel):
    branch: str
    counter_id: str
    counter_number: int
    state: str
    pause_reason: str | None
    current_ticket_id: str | None


class QueueView(BaseModel):
    service_id: str
    letter: str
    waiting: int
    longest_wait_s: int
    target_wait_s: int


class CallView(BaseModel):
    # A board never sees a ticket's id (it opens and cancels the ticket): calls carry a one-way
    # board key instead (domain/public.py).
    key: str = Field(description="the call's board key, stable across recalls; not the id")
    label: str
    letter: str
    number: int
    service_id: str
    counter_id: str | None
    counter_number: int | None
    called_at: datetime | None
    recalls: int


class BoardCounter(BaseModel):
    number: int
    state: str


class BoardView(BaseModel):
    branch: str
    calls: list[CallView]
    waiting: dict[str, int]
    counters: dict[str, BoardCounter]


class SnapshotView(BaseModel):
    epoch: str | None
    seq: int
    board: BoardView


class ServiceView(BaseModel):
    id: str
    agency: str
    letter: str
    category: str
    target_wait_min: float
    service_time_min: float
    name: dict[str, str | None]
    served_now: bool  # False: no open counter serves it at the moment


class BranchSummary(BaseModel):
    id: str
    kind: str
    name: dict[str, str | None]
    municipality: str | None
    counters: int


class BranchView(BranchSummary):
    services: list[ServiceView]


class Health(BaseModel):
    status: str
