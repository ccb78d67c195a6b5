"""The ticket life cycle as an explicit state machine.

waiting → called → serving → done; called → no_show; called → waiting (recycle);
serving → transferred (a new waiting visit is issued elsewhere); waiting → cancelled.
Recall keeps a called ticket called and announces it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from queue_server.errors import IllegalTransition


class TicketStatus(StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    DONE = "done"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    TRANSFERRED = "transferred"


class TicketAction(StrEnum):
    CALL = "call"
    RECALL = "recall"
    RECYCLE = "recycle"
    START = "start"
    FINISH = "finish"
    NO_SHOW = "no_show"
    TRANSFER = "transfer"
    CANCEL = "cancel"


class Priority(StrEnum):
    """Priority classes, most urgent first in `PRIORITY_RANK`."""

    NORMAL = "normal"
    PRIORITY = "priority"  # disability, elderly, pregnancy
    APPOINTMENT = "appointment"


class Outcome(StrEnum):
    """Why a visit ended; recorded on every transition that ends or moves a visit."""

    SERVED = "served"
    NOT_SERVED = "not_served"  # e.g. missing documents
    REFERRED = "referred"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    TRANSFERRED = "transferred"


TRANSITIONS: dict[tuple[TicketStatus, TicketAction], TicketStatus] = {
    (TicketStatus.WAITING, TicketAction.CALL): TicketStatus.CALLED,
    (TicketStatus.WAITING, TicketAction.CANCEL): TicketStatus.CANCELLED,
    (TicketStatus.CALLED, TicketAction.RECALL): TicketStatus.CALLED,
    (TicketStatus.CALLED, TicketAction.RECYCLE): TicketStatus.WAITING,
    (TicketStatus.CALLED, TicketAction.START): TicketStatus.SERVING,
    (TicketStatus.CALLED, TicketAction.NO_SHOW): TicketStatus.NO_SHOW,
    (TicketStatus.SERVING, TicketAction.FINISH): TicketStatus.DONE,
    (TicketStatus.SERVING, TicketAction.TRANSFER): TicketStatus.TRANSFERRED,
}

DEFAULT_OUTCOME: dict[TicketAction, Outcome] = {
    TicketAction.FINISH: Outcome.SERVED,
    TicketAction.NO_SHOW: Outcome.NO_SHOW,
    TicketAction.CANCEL: Outcome.CANCELLED,
    TicketAction.TRANSFER: Outcome.TRANSFERRED,
}


@dataclass(frozen=True, slots=True)
class Transition:
    """One recorded step of a ticket's life: who did what, when, and with what outcome."""

    action: TicketAction
    from_status: TicketStatus
    to_status: TicketStatus
    at: datetime
    actor: str
    counter_id: str | None = None
    outcome: Outcome | None = None


def next_status(current: TicketStatus, action: TicketAction) -> TicketStatus:
    """The status after `action`, or IllegalTransition naming both."""
    try:
        return TRANSITIONS[(current, action)]
    except KeyError:
        raise IllegalTransition(
            f"A {current.value} ticket cannot be {_past(action)}.",
            status=current.value,
            action=action.value,
        ) from None


def transition(
    current: TicketStatus,
    action: TicketAction,
    *,
    at: datetime,
    actor: str,
    counter_id: str | None = None,
    outcome: Outcome | None = None,
) -> Transition:
    """Validate one step and describe it; the caller stores it."""
    target = next_status(current, action)
    if outcome is None:
        outcome = DEFAULT_OUTCOME.get(action)
    elif action is not TicketAction.FINISH:
        raise IllegalTransition("Only finishing a visit takes an outcome.", action=action.value)
    elif outcome not in (Outcome.SERVED, Outcome.NOT_SERVED, Outcome.REFERRED):
        raise IllegalTransition(f"A visit cannot finish as {outcome.value}.", outcome=outcome.value)
    return Transition(action, current, target, at, actor, counter_id, outcome)


def allowed_actions(current: TicketStatus) -> list[TicketAction]:
    """What may be done next to a ticket in this status (for consoles and error messages)."""
    return [action for (status, action) in TRANSITIONS if status is current]


def _past(action: TicketAction) -> str:
    return {
        TicketAction.CALL: "called",
        TicketAction.RECALL: "recalled",
        TicketAction.RECYCLE: "put back in the queue",
        TicketAction.START: "started",
        TicketAction.FINISH: "finished",
        TicketAction.NO_SHOW: "marked as a no-show",
        TicketAction.TRANSFER: "transferred",
        TicketAction.CANCEL: "cancelled",
    }[action]
