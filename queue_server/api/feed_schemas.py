"""The frames the WebSocket feeds send (docs/protocol.md), as schemas for the OpenAPI document.

OpenAPI has no words for a WebSocket, so the frames are components (`BoardFeedFrame`,
`CounterFeedFrame`, `TicketFeedFrame`) and `x-feeds` maps each feed's path to its frame.
Every object here forbids keys it does not name: a field the server adds or renames without
saying so here fails `tests/test_feed_frames.py`, which checks real frames against them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from queue_server.api.schemas import BoardCounter, BoardView, CallView, CounterView, TicketView

STRICT = ConfigDict(extra="forbid")
TICKET_KIND = r"^ticket\.[a-z_]+$"
COUNTER_KIND = r"^counter\.[a-z_]+$"
# Staff, device, printer and display events reach boards without data (docs/protocol.md).
OTHER_KIND = r"^(?!ticket\.|counter\.)[a-z_]+\.[a-z_]+$"


class Ping(BaseModel):
    """Sent every heartbeat; the client answers `{"type": "pong"}`."""

    model_config = STRICT
    type: Literal["ping"]


# -- the board feed (lobby displays, display_client, the live view) ---------------------------


class PublicTicket(BaseModel):
    """A ticket as a board sees it: a board key instead of its id, nothing personal."""

    model_config = STRICT
    key: str = Field(pattern="^[0-9a-f]{16}$")
    label: str
    letter: str
    number: int
    service_id: str
    status: str
    counter_id: str | None
    counter_number: int | None
    called_at: datetime | None
    recalls: int


class BoardTicketData(BaseModel):
    model_config = STRICT
    ticket: PublicTicket
    counter_id: str | None = Field(default=None, description="calls and recalls")
    counter_number: int | None = Field(default=None, description="calls and recalls")
    rating: int | None = Field(default=None, description="`ticket.rated`: 1 to 5")


class BoardCounterData(BaseModel):
    """A counter's change, without the visit's id or the operator's name."""

    model_config = STRICT
    branch: str
    counter_id: str
    counter_number: int
    state: str
    pause_reason: str | None


class NoData(BaseModel):
    model_config = STRICT


class _BoardEvent(BaseModel):
    model_config = STRICT
    type: Literal["event"]
    branch: str
    epoch: str
    seq: int = Field(ge=1)
    at: datetime


class BoardTicketEvent(_BoardEvent):
    kind: str = Field(pattern=TICKET_KIND)
    data: BoardTicketData


class BoardCounterEvent(_BoardEvent):
    kind: str = Field(pattern=COUNTER_KIND)
    data: BoardCounterData


class BoardOtherEvent(_BoardEvent):
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")  # the lookahead
    kind: str = Field(pattern=OTHER_KIND)
    data: NoData


class StrictCallView(CallView):
    model_config = STRICT


class StrictBoardCounter(BoardCounter):
    model_config = STRICT


class StrictBoard(BoardView):
    model_config = STRICT
    calls: list[StrictCallView]  # type: ignore[assignment]
    counters: dict[str, StrictBoardCounter]  # type: ignore[assignment]


class BoardSnapshot(BaseModel):
    """The board as of `seq`, when the client's gap cannot be replayed."""

    model_config = STRICT
    type: Literal["snapshot"]
    epoch: str | None
    seq: int = Field(ge=0)
    board: StrictBoard


BoardFeedFrame = BoardSnapshot | BoardTicketEvent | BoardCounterEvent | BoardOtherEvent | Ping


# -- the counter feed (an operator's console) --------------------------------------------------


class FeedTicket(TicketView):
    """A ticket as its holder and staff see it (the REST `TicketView`, nothing more)."""

    model_config = STRICT


class WaitingTicket(FeedTicket):
    waited_s: int = Field(ge=0)
    reason: str | None  # type: ignore[assignment]  # why the dispatcher ranks it there


class StrictCounterView(CounterView):
    model_config = STRICT


class CounterFrame(BaseModel):
    """The counter, its visit in hand and its waiting list, most urgent first."""

    model_config = STRICT
    type: Literal["counter"]
    counter: StrictCounterView
    current: FeedTicket | None
    waiting: list[WaitingTicket]


CounterFeedFrame = CounterFrame | Ping


# -- the ticket feed (a citizen's phone) -------------------------------------------------------


class TicketFrame(BaseModel):
    model_config = STRICT
    type: Literal["ticket"]
    ticket: FeedTicket


TicketFeedFrame = TicketFrame | Ping

FEEDS: dict[str, tuple[str, Any]] = {
    "/ws/branches/{branch}/board": ("BoardFeedFrame", BoardFeedFrame),
    "/ws/branches/{branch}/counters/{counter}": ("CounterFeedFrame", CounterFeedFrame),
    "/ws/tickets/{ticket_id}": ("TicketFeedFrame", TicketFeedFrame),
}
