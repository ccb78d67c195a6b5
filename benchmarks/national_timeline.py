"""Where the national day's slow deliveries spent their time: the servers' timelines
(`queue_server/ops/timeline.py`, RIGI_TIMELINE_DIR) joined with what the bench saw.

Every delivery of a call to a display is cut into stages, on the one monotonic clock of the
machine:
- `request`: call-next sent by the operator → the server's middleware has it (the bench's own
  pool and loop, nginx, the server's loop accepting it);
- `transaction`: → the commit's listeners are told (session check, route, the database);
- `to hub`: → the fan-out starts in the display's process (locally: the hub's lock; elsewhere:
  `publish` → Redis → the other process's reader → its hub, split again below);
- `fan-out`: the fan-out in that process, up to the last socket written;
- `to client`: → the display's client stamps it (kernel, nginx, the client's loop).

Which process a display is on is not known to the bench; the stage uses the latest fan-out
that ended before the delivery (so the server side gets the doubt). A slow delivery is one over
the run's p99; each is listed with its stages and what overlapped it: garbage collections and
loop stalls in either server (with the code the watchdog saw running), and stalls of the
client process that stamped it.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STAGES = ("request", "transaction", "to hub", "fan-out", "to client")
REMOTE = ("publish", "redis", "reader", "hub lock")  # `to hub` in the other process, split


@dataclass
class Process:
    """One server process's timeline."""

    commits: dict[tuple[str, int], list[Any]] = field(default_factory=dict)
    published: dict[tuple[str, int], float] = field(default_factory=dict)
    bus: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)
    offers: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)
    gcs: list[tuple[int, float, float]] = field(default_factory=list)
    stalls: list[tuple[float, float]] = field(default_factory=list)
    stacks: list[tuple[float, str, list[str]]] = field(default_factory=list)


def read_timelines(folder: Path) -> dict[str, Process]:
    processes: dict[str, Process] = {}
    for path in sorted(folder.glob("timeline-*.jsonl")):
        process = processes[path.stem.removeprefix("timeline-")] = Process()
        for line in path.read_text().splitlines():
            record = json.loads(line)
            what, rest = record[0], record[1:]
            if what == "commit":
                process.commits[(rest[0], rest[1])] = rest
            elif what == "published":
                process.published[(rest[0], rest[1])] = rest[2]
            elif what == "bus":
                process.bus[(rest[0], rest[1])] = (rest[2], rest[3])
            elif what == "offer":
                process.offers[(rest[0], rest[1])] = (rest[2], rest[3])
            elif what == "gc":
                process.gcs.append((rest[0], rest[1], rest[2]))
            elif what == "stall":
                process.stalls.append((rest[0], rest[1]))
            elif what == "stack":
                process.stacks.append((rest[0], rest[1], rest[2]))
    return processes


@dataclass
class Delivery:
    key: str
    sent: float
    at: float
    worker: int
    stages: dict[str, float]  # seconds
    remote: dict[str, float] | None  # the `to hub` split when the display was elsewhere
    committer: str
    display_process: str

    @property
    def total(self) -> float:
        return self.at - self.sent


def deliveries(
    processes: dict[str, Process],
    called_at: dict[str, float],
    arrivals: list[tuple[int, str, float]],  # (client worker, key, at)
) -> list[Delivery]:
    by_key = {
        commit[3]: (pid, (commit[0], commit[1]), commit)
        for pid, process in processes.items()
        for commit in process.commits.values()
        if commit[3] is not None
    }
    out = []
    for worker, key, at in arrivals:
        if key not in by_key or key not in called_at:
            continue
        committer, event, (_, _, _, _, started, committed) = by_key[key]
        ended = [(p.offers[event], pid) for pid, p in processes.items() if event in p.offers]
        before = [(offer, pid) for offer, pid in ended if offer[1] <= at]
        if not before:
            continue
        (offer_start, offer_end), where = max(before, key=lambda item: item[0][1])
        sent = called_at[key]
        started = started if started is not None else committed
        stages = {
            "request": started - sent,
            "transaction": committed - started,
            "to hub": offer_start - committed,
            "fan-out": offer_end - offer_start,
            "to client": at - offer_end,
        }
        remote = None
        published = processes[committer].published.get(event)
        received = processes[where].bus.get(event)
        if where != committer and published is not None and received is not None:
            remote = {
                "publish": published - committed,
                "redis": received[0] - published,
                "reader": received[1] - received[0],
                "hub lock": offer_start - received[1],
            }
        out.append(Delivery(key, sent, at, worker, stages, remote, committer, where))
    return out


def _overlapping(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of `spans` inside [start, end]."""
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)


@dataclass
class Around:
    """What the bench itself did and saw during the day, beside the servers' records."""

    vacuums: list[tuple[float, float]]  # each `VACUUM (ANALYZE)`'s span
    phones_at: list[float]  # each phone's feed asked for
    loads: list[float]  # the machine's 1-minute load average, every `load_every_s`
    started: float  # the day's first issue
    load_every_s: float


def report(
    processes: dict[str, Process],
    found: list[Delivery],
    client_stalls: list[list[tuple[float, float]]],
    around: Around | None = None,
    listed: int = 12,
) -> str:
    """The stages of the median and the slow deliveries, and what overlapped the slow ones."""
    if not found:
        return "timeline: no delivery could be joined with the servers' records"
    totals = sorted(d.total for d in found)
    p99 = totals[int(0.99 * (len(totals) - 1))]
    slow = sorted((d for d in found if d.total >= p99), key=lambda d: -d.total)
    lines = [
        f"timeline: {len(found)} deliveries joined; p50 {statistics.median(totals) * 1000:.1f} ms,"
        f" p99 {p99 * 1000:.1f} ms; {len(slow)} at or over p99"
    ]
    for name in STAGES:
        values = sorted(d.stages[name] for d in found)
        lines.append(
            f"  {name:<12} median {statistics.median(values) * 1000:7.1f} ms, "
            f"p99 {values[int(0.99 * (len(values) - 1))] * 1000:7.1f} ms"
        )
    largest: Counter[str] = Counter()
    for d in slow:
        largest[max(STAGES, key=lambda name: d.stages[name])] += 1
    lines.append(f"  the largest stage of each slow delivery: {dict(largest)}")
    for d in slow[:listed]:
        lines.append("  " + _one(processes, d, client_stalls))
    lines.extend("  " + line for line in pauses(processes))
    if around is not None:
        lines.extend("  " + line for line in overlaps(processes, found, slow, around))
    lines.append("  code seen running during server stalls inside slow deliveries:")
    for where, count in _stacks_in(processes, slow).most_common(8):
        lines.append(f"    {count:4d} × {where}")
    return "\n".join(lines)


def _one(
    processes: dict[str, Process], d: Delivery, client_stalls: list[list[tuple[float, float]]]
) -> str:
    stages = " ".join(f"{name} {d.stages[name] * 1000:.0f}" for name in STAGES)
    remote = (
        " [" + " ".join(f"{n} {v * 1000:.0f}" for n, v in d.remote.items()) + "]"
        if d.remote
        else " [local]"
    )
    gcs = {
        pid: _overlapping([(a, b) for g, a, b in p.gcs if g >= 1], d.sent, d.at)
        for pid, p in processes.items()
    }
    stalls = {pid: _overlapping(p.stalls, d.sent, d.at) for pid, p in processes.items()}
    client = _overlapping(client_stalls[d.worker], d.sent, d.at) if client_stalls else 0.0
    return (
        f"{d.total * 1000:.0f} ms: {stages}{remote}; committed in {d.committer}, shown by "
        f"{d.display_process}; server stalls "
        + ", ".join(f"{pid} {v * 1000:.0f}" for pid, v in stalls.items())
        + "; gen 1-2 GC "
        + ", ".join(f"{pid} {v * 1000:.0f}" for pid, v in gcs.items())
        + f"; client {d.worker} stalled {client * 1000:.0f} ms"
    )


def _stacks_in(processes: dict[str, Process], slow: list[Delivery]) -> Counter[str]:
    """The frames the watchdog saw (innermost project frame and the thread) while slow
    deliveries were on their way."""
    seen: Counter[str] = Counter()
    windows = [(d.sent, d.at) for d in slow]
    for process in processes.values():
        for at, thread, frames in process.stacks:
            if any(a <= at <= b for a, b in windows):
                seen[f"{thread}: {' < '.join(frames[:3])}"] += 1
    return seen


def client_arrivals(reports: list[Any]) -> tuple[list[tuple[int, str, float]], list[Any]]:
    """(worker, key, at) of every call a display saw, and each worker's stalls."""
    arrivals = [
        (n, key, at)
        for n, report in enumerate(reports)
        for _, display in report.arrivals
        for key, at in display
    ]
    return arrivals, [report.stalls for report in reports]


def pauses(processes: dict[str, Process]) -> list[str]:
    """Each process's garbage collections by generation and its loop stalls over the run."""
    lines = []
    for pid, process in processes.items():
        spans = [f"{len(process.stalls)} stalls {_spans_ms(process.stalls)}"]
        for generation in (0, 1, 2):
            gcs = [(a, b) for g, a, b in process.gcs if g == generation]
            spans.append(f"gen {generation} GC {len(gcs)}× {_spans_ms(gcs)}")
        lines.append(f"process {pid}: " + "; ".join(spans))
    return lines


def _spans_ms(spans: list[tuple[float, float]]) -> str:
    if not spans:
        return ""
    lengths = sorted(b - a for a, b in spans)
    return (
        f"(total {sum(lengths) * 1000:.0f} ms, p50 {statistics.median(lengths) * 1000:.1f},"
        f" max {lengths[-1] * 1000:.0f})"
    )


PHONE_BURST_S = 1.0  # phones asked for within this before a delivery count as its burst


def overlaps(
    processes: dict[str, Process], found: list[Delivery], slow: list[Delivery], around: Around
) -> list[str]:
    """How often the slow deliveries met each suspect, against how often every delivery did:
    a suspect the slow ones meet no more often than the rest is not their cause."""

    def share(deliveries: list[Delivery], met: Any) -> str:
        return f"{100 * sum(map(met, deliveries)) / max(len(deliveries), 1):.0f}%"

    def in_vacuum(d: Delivery) -> bool:
        return _overlapping(around.vacuums, d.sent, d.at) > 0

    def in_full_gc(d: Delivery) -> bool:
        return any(
            _overlapping([(a, b) for g, a, b in p.gcs if g == 2], d.sent, d.at) > 0
            for p in processes.values()
        )

    def in_stall(d: Delivery) -> bool:
        return any(_overlapping(p.stalls, d.sent, d.at) > 0 for p in processes.values())

    def phones(d: Delivery) -> int:
        return sum(d.sent - PHONE_BURST_S <= at <= d.at for at in around.phones_at)

    def load(d: Delivery) -> float:
        at = int((d.sent - around.started) / around.load_every_s)
        return around.loads[min(max(at, 0), len(around.loads) - 1)] if around.loads else 0.0

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else 0.0

    return [
        f"overlapped (slow / all deliveries): a VACUUM {share(slow, in_vacuum)} / "
        f"{share(found, in_vacuum)}; a full GC {share(slow, in_full_gc)} / "
        f"{share(found, in_full_gc)}; a server loop stall {share(slow, in_stall)} / "
        f"{share(found, in_stall)}",
        f"phones asked for in the second before or during: median {median(list(map(phones, slow)))}"
        f" / {median(list(map(phones, found)))}; machine load at the call: median "
        f"{median(list(map(load, slow))):.1f} / {median(list(map(load, found))):.1f}, "
        f"max {max(map(load, slow), default=0.0):.1f}",
        f"{len(around.vacuums)} VACUUMs, {_spans_ms(around.vacuums)}",
    ]
