"""The pure rules: life cycle, numbering and dispatch, without a server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from queue_server.domain import dispatch
from queue_server.domain.numbering import local_day, ticket_label
from queue_server.domain.tickets import (
    Outcome,
    Priority,
    TicketAction,
    TicketStatus,
    allowed_actions,
    transition,
)
from queue_server.errors import IllegalTransition

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
S = TicketStatus
A = TicketAction


@pytest.mark.parametrize(
    ("start", "action", "end"),
    [
        (S.WAITING, A.CALL, S.CALLED),
        (S.CALLED, A.START, S.SERVING),
        (S.SERVING, A.FINISH, S.DONE),
        (S.CALLED, A.NO_SHOW, S.NO_SHOW),
        (S.CALLED, A.RECYCLE, S.WAITING),
        (S.CALLED, A.RECALL, S.CALLED),
        (S.SERVING, A.TRANSFER, S.TRANSFERRED),
        (S.WAITING, A.CANCEL, S.CANCELLED),
    ],
)
def test_each_allowed_step_lands_where_the_life_cycle_says(start, action, end) -> None:
    step = transition(start, action, at=NOW, actor="op1", counter_id="c01")
    assert (step.from_status, step.to_status, step.actor, step.counter_id) == (
        start,
        end,
        "op1",
        "c01",
    )


def test_every_other_step_is_refused_with_a_clear_error() -> None:
    refused = 0
    for status in TicketStatus:
        for action in TicketAction:
            if action in allowed_actions(status):
                continue
            with pytest.raises(IllegalTransition) as caught:
                transition(status, action, at=NOW, actor="op1")
            assert caught.value.code == "illegal_transition"
            assert status.value in caught.value.message
            refused += 1
    assert refused == len(TicketStatus) * len(TicketAction) - 8


def test_finishing_records_an_outcome_and_only_finishing_takes_one() -> None:
    assert transition(S.SERVING, A.FINISH, at=NOW, actor="x").outcome is Outcome.SERVED
    step = transition(S.SERVING, A.FINISH, at=NOW, actor="x", outcome=Outcome.NOT_SERVED)
    assert step.outcome is Outcome.NOT_SERVED
    assert transition(S.CALLED, A.NO_SHOW, at=NOW, actor="x").outcome is Outcome.NO_SHOW
    with pytest.raises(IllegalTransition):
        transition(S.CALLED, A.START, at=NOW, actor="x", outcome=Outcome.SERVED)
    with pytest.raises(IllegalTransition):
        transition(S.SERVING, A.FINISH, at=NOW, actor="x", outcome=Outcome.CANCELLED)


def test_the_local_day_turns_at_tbilisi_midnight_not_utc() -> None:
    # 19:59 UTC is 23:59 in Tbilisi (UTC+4); one minute later it is the next day there.
    assert local_day(datetime(2026, 11, 23, 19, 59, tzinfo=UTC)) == date(2026, 11, 23)
    assert local_day(datetime(2026, 11, 23, 20, 0, tzinfo=UTC)) == date(2026, 11, 24)
    with pytest.raises(ValueError):
        local_day(datetime(2026, 11, 23, 12, 0))


def test_ticket_labels_are_letter_and_three_digits() -> None:
    assert ticket_label("A", 7) == "A007"
    assert ticket_label("B", 1234) == "B1234"


def _ticket(
    ticket_id: str, service: str, waited_min: float, priority: Priority = Priority.NORMAL, **kw
) -> dispatch.QueuedTicket:
    return dispatch.QueuedTicket(
        id=ticket_id,
        service_id=service,
        priority=priority,
        queued_at=NOW - timedelta(minutes=waited_min),
        target_wait_s=kw.pop("target_min", 10) * 60,
        **kw,
    )


def test_counter_only_takes_tickets_of_services_it_serves() -> None:
    waiting = [_ticket("t1", "passport", 30), _ticket("t2", "id_card", 5)]
    pick = dispatch.call_next(waiting, "c1", {"id_card": 1.0}, NOW)
    assert pick is not None and pick.ticket.id == "t2"
    assert dispatch.call_next(waiting, "c1", {"apostille": 1.0}, NOW) is None


def test_the_ticket_furthest_past_its_target_comes_first() -> None:
    waiting = [
        _ticket("long_target", "property", 20, target_min=40),  # half its target
        _ticket("short_target", "id_card", 8, target_min=10),  # 80 % of its target
    ]
    pick = dispatch.call_next(waiting, "c1", {"property": 1.0, "id_card": 1.0}, NOW)
    assert pick is not None and pick.ticket.id == "short_target"
    assert "waited 8 of 10 min target" in pick.reason


def test_priority_goes_first_but_a_normal_ticket_ages_past_it() -> None:
    fresh_priority = _ticket("p", "id_card", 1, Priority.PRIORITY)
    normal = _ticket("n", "id_card", 9)
    first = dispatch.call_next([fresh_priority, normal], "c1", {"id_card": 1.0}, NOW)
    assert first is not None and first.ticket.id == "p"
    assert "priority class" in first.reason
    old_normal = _ticket("n", "id_card", 25)  # 2.5 targets against the head start of one
    aged = dispatch.call_next([fresh_priority, old_normal], "c1", {"id_card": 1.0}, NOW)
    assert aged is not None and aged.ticket.id == "n"


def test_a_due_appointment_beats_walk_ins_but_an_early_one_waits() -> None:
    walk_in = _ticket("w", "id_card", 30)
    due = _ticket("a", "id_card", 0, Priority.APPOINTMENT, appointment_at=NOW)
    early = _ticket(
        "e", "id_card", 0, Priority.APPOINTMENT, appointment_at=NOW + timedelta(hours=1)
    )
    pick = dispatch.call_next([walk_in, due], "c1", {"id_card": 1.0}, NOW)
    assert pick is not None and pick.ticket.id == "a" and "appointment due" in pick.reason
    pick = dispatch.call_next([walk_in, early], "c1", {"id_card": 1.0}, NOW)
    assert pick is not None and pick.ticket.id == "w"
    # a walk-in past the fairness guard (1.5 targets) goes before priority tickets, but a due
    # appointment keeps its time; it is still "appointment due", not the guard, that says why
    overdue = _ticket("w", "id_card", 15)  # 1.5 targets, against 1.4 + 1 of the priority one
    old_priority = _ticket("p", "id_card", 14, Priority.PRIORITY)
    pick = dispatch.call_next([overdue, due, old_priority], "c1", {"id_card": 1.0}, NOW)
    assert pick is not None and pick.ticket.id == "a" and "appointment due" in pick.reason
    assert "fairness guard" not in pick.reason
    pick = dispatch.call_next([overdue, old_priority], "c1", {"id_card": 1.0}, NOW)
    assert pick is not None and pick.ticket.id == "w" and "fairness guard" in pick.reason
    pick = dispatch.call_next([overdue, old_priority], "c1", {"id_card": 1.0}, NOW, guard=None)
    assert pick is not None and pick.ticket.id == "p"


def test_a_ticket_transferred_to_a_counter_goes_only_there() -> None:
    bound = _ticket("b", "id_card", 50, counter_id="c2")
    assert dispatch.call_next([bound], "c1", {"id_card": 1.0}, NOW) is None
    pick = dispatch.call_next([bound], "c2", {"passport": 1.0}, NOW)
    assert pick is not None and "transferred to this counter" in pick.reason


def test_weights_make_a_counter_prefer_its_main_service() -> None:
    waiting = [_ticket("pass", "passport", 5), _ticket("id", "id_card", 4)]
    pick = dispatch.call_next(waiting, "c1", {"id_card": 3.0, "passport": 1.0}, NOW)
    assert pick is not None and pick.ticket.id == "id"


def test_tickets_of_one_service_are_served_in_issue_order() -> None:
    waiting = [_ticket("third", "id_card", 1), _ticket("first", "id_card", 9)]
    waiting.append(_ticket("second", "id_card", 4))
    ranked = dispatch.rank_for_counter(waiting, "c1", {"id_card": 1.0}, NOW)
    assert [p.ticket.id for p in ranked] == ["first", "second", "third"]
