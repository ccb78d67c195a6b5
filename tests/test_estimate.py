"""The waiting line behind wait estimates: it must count exactly whom the dispatcher puts first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import assume, example, given
from hypothesis import strategies as st

from queue_server.domain import dispatch
from queue_server.domain.dispatch import QueuedTicket
from queue_server.domain.estimate import EstimatorCounter, ServiceTimes, WaitingLine, estimate_wait
from queue_server.domain.tickets import Priority

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
TARGETS_S = {"a": 600.0, "b": 600.0, "c": 1200.0}  # b shares a's target, c has its own
US = timedelta(microseconds=1)


def exact_urgency(ticket: QueuedTicket, now: datetime) -> Fraction:
    """The dispatcher's urgency in exact arithmetic: the order the line must reproduce."""
    waited_us = max((now - ticket.queued_at) // US, 0)
    target_us = round(max(ticket.target_wait_s, 1.0) * 1e6)
    return Fraction(waited_us, target_us) + Fraction(dispatch.head_start(ticket, now))


def ranks_before(other: QueuedTicket, ticket: QueuedTicket, now: datetime) -> bool:
    theirs, mine = exact_urgency(other, now), exact_urgency(ticket, now)
    return theirs > mine or (theirs == mine and other.queued_at < ticket.queued_at)


tickets = st.builds(
    lambda number, service, priority, waited_us, appointment_in_min: QueuedTicket(
        id=f"t{number}",
        service_id=service,
        priority=priority,
        queued_at=NOW - waited_us * US,
        target_wait_s=TARGETS_S[service],
        appointment_at=(
            NOW + timedelta(minutes=appointment_in_min)
            if priority is Priority.APPOINTMENT
            else None
        ),
    ),
    number=st.integers(0, 10**9),
    service=st.sampled_from(sorted(TARGETS_S)),
    priority=st.sampled_from(list(Priority)),
    # whole minutes make ties between services likely; microseconds make near-ties
    waited_us=st.one_of(
        st.integers(0, 180).map(lambda m: m * 60_000_000), st.integers(0, 3 * 3600 * 10**6)
    ),
    appointment_in_min=st.integers(-60, 60),
)


def _due_appointment(ticket_id: str) -> QueuedTicket:
    return QueuedTicket(ticket_id, "a", Priority.APPOINTMENT, NOW, 600.0, appointment_at=NOW)


@given(
    waiting=st.lists(tickets, max_size=40, unique_by=lambda t: t.id),
    newcomer=tickets,
    probe_index=st.integers(0, 40),
    later_s=st.integers(0, 3 * 3600),
)
# Two appointments due together, queued together: neither is ahead of the other.
@example(waiting=[_due_appointment("x")], newcomer=_due_appointment("y"), probe_index=1, later_s=0)
def test_the_line_counts_whom_the_dispatcher_ranks_first(
    waiting: list[QueuedTicket], newcomer: QueuedTicket, probe_index: int, later_s: int
) -> None:
    assume(all(t.id != newcomer.id for t in waiting))  # a ticket id is unique in a branch
    line = WaitingLine(waiting)
    line.add(newcomer)
    everyone = [*waiting, newcomer]
    probe = everyone[probe_index % len(everyone)]
    now = NOW + timedelta(seconds=later_s)
    # Across services with different targets the line compares in floating point, like the
    # dispatcher; only an exact tie there may go either way, so such cases are left out.
    assume(
        not any(
            exact_urgency(other, now) == exact_urgency(probe, now)
            for other in everyone
            if other.target_wait_s != probe.target_wait_s
        )
    )
    expected = {
        service: sum(
            1
            for other in everyone
            if other.service_id == service
            and other.id != probe.id
            and ranks_before(other, probe, now)
        )
        for service in TARGETS_S
    }
    assert line.ahead(probe, sorted(TARGETS_S), now) == expected


def test_people_issued_one_after_another_each_wait_behind_all_before_them() -> None:
    counters = [EstimatorCounter("c1", True, {"a": 1.0}, busy=True)]
    times = ServiceTimes({"a": 300.0})
    line = WaitingLine()
    seen = []
    for number in range(5):
        ticket = QueuedTicket(f"t{number}", "a", Priority.NORMAL, NOW + number * US, 600.0)
        seen.append(estimate_wait(ticket, line, counters, times, NOW + 5 * US))
        line.add(ticket)
    assert [guess.people_ahead for guess in seen] == [0, 1, 2, 3, 4]
    assert [guess.minutes for guess in seen] == [5, 10, 15, 20, 25]


def test_a_priority_ticket_is_estimated_ahead_of_walk_ins_until_they_have_aged_past_it() -> None:
    counters = [EstimatorCounter("c1", True, {"a": 1.0}, busy=True)]
    times = ServiceTimes({"a": 300.0})
    walk_ins = [
        QueuedTicket(f"w{minutes}", "a", Priority.NORMAL, NOW - timedelta(minutes=minutes), 600.0)
        for minutes in (2, 5, 12, 15)
    ]
    line = WaitingLine(walk_ins)
    priority = QueuedTicket("p", "a", Priority.PRIORITY, NOW, 600.0)
    # One target (10 min) head start: only walk-ins that waited longer than that stay ahead.
    assert estimate_wait(priority, line, counters, times, NOW).people_ahead == 2


def test_a_copy_of_the_line_grows_on_its_own_while_readers_keep_the_original() -> None:
    counters = [EstimatorCounter("c1", True, {"a": 1.0}, busy=True)]
    times = ServiceTimes({"a": 300.0})
    original = WaitingLine([QueuedTicket("w1", "a", Priority.NORMAL, NOW, 600.0)])
    copy = original.copy()
    copy.add(QueuedTicket("w2", "a", Priority.NORMAL, NOW + US, 600.0))
    copy.add(_due_appointment("x"))
    probe = QueuedTicket("probe", "a", Priority.NORMAL, NOW + 2 * US, 600.0)
    assert estimate_wait(probe, original, counters, times, NOW + 2 * US).people_ahead == 1
    assert estimate_wait(probe, copy, counters, times, NOW + 2 * US).people_ahead == 3
