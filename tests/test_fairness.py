"""The fairness ledger over plain visits: a call of an appointment, remote or priority ticket
counts when a walk-in the same counter could serve had been in the hall longer, not otherwise;
the longest walk-in wait of the hour is set against its target."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from queue_server.domain.fairness import Kind, LedgerVisit, ledger

TEN = datetime(2025, 6, 2, 6, 0, tzinfo=UTC)  # 10:00 in Tbilisi


def visit(
    ticket: str, kind: Kind, arrived: int, called: int | None, counter: str = "c1",
    service: str = "id_card",
) -> LedgerVisit:  # fmt: skip
    return LedgerVisit(
        ticket_id=ticket,
        service_id=service,
        kind=kind,
        arrived_at=TEN + timedelta(minutes=arrived),
        called_at=None if called is None else TEN + timedelta(minutes=called),
        left_at=None,
        counter_id=counter,
        target_wait_s=20 * 60,
    )


def test_calls_ahead_of_longer_waiting_walk_ins_are_counted_by_kind_and_hour() -> None:
    visits = [
        visit("w1", Kind.WALK_IN, 0, 30),
        visit("p-before", Kind.PRIORITY, -10, 10),  # came before w1: not ahead of anyone
        visit("a1", Kind.APPOINTMENT, 5, 6),  # w1 was there first: ahead
        visit("r1", Kind.REMOTE, 20, 21),  # ahead
        visit("other", Kind.APPOINTMENT, 20, 22, counter="c2", service="passport"),  # c2: no id
        visit("late-walk-in", Kind.WALK_IN, 40, 70),  # waits into the 11 o'clock hour
        visit("a2", Kind.APPOINTMENT, 50, 55),  # late-walk-in was there first
    ]
    hours = ledger(visits, {"c1": frozenset({"id_card"}), "c2": frozenset({"passport"})},
                   "Asia/Tbilisi")  # fmt: skip
    assert [h.hour.hour for h in hours] == [10, 11]
    ten, eleven = hours
    assert ten.ahead == {Kind.APPOINTMENT: 2, Kind.REMOTE: 1, Kind.PRIORITY: 0}
    assert ten.called[Kind.WALK_IN] == 1 and ten.longest_walk_in_s == 30 * 60
    assert ten.as_dict()["longest_over_target"] is True
    assert eleven.ahead == {Kind.APPOINTMENT: 0, Kind.REMOTE: 0, Kind.PRIORITY: 0}
    assert eleven.longest_walk_in_s == 30 * 60


def test_a_walk_in_who_left_or_was_called_no_longer_counts() -> None:
    gone = LedgerVisit("w", "id_card", Kind.WALK_IN, TEN, None, TEN + timedelta(minutes=3),
                       None, 1200)  # fmt: skip
    hours = ledger(
        [gone, visit("w2", Kind.WALK_IN, 1, 4), visit("a", Kind.APPOINTMENT, 5, 6)],
        {"c1": frozenset({"id_card"})},
        "Asia/Tbilisi",
    )
    assert hours[0].ahead[Kind.APPOINTMENT] == 0
