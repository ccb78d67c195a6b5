"""`python -m benchmarks.run` (`make bench`): every benchmark in one run, each against its bare
baseline measured in the same run; prints medians and p99 and writes docs/benchmarks.md."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import platform
import re
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import forecast_bench, issue_bench, notify_bench, offline_bench, realtime_bench
from benchmarks._support import ROOT, raise_open_files
from queue_server.domain import forecast

REPORT = ROOT / "docs" / "benchmarks.md"
# Everything in the report from this line on is written by hand and kept across runs.
ANALYSIS_MARKER = "<!-- analysis below: written by hand, kept by benchmarks/run.py -->"
GOAL_SINGLE = 1.5  # call-to-display, one process, against the bare broadcast
GOAL_SCALE_OUT = 2.0  # the same through Redis, two processes
GOAL_ISSUE_SHARE = 0.70  # issue rate against the bare INSERT+commit
GOAL_IDLE_MB = 40.0  # server memory per 1,000 idle displays
GOAL_NATIONAL = 2.0  # a national day through nginx: call-to-display p99 against the bare broadcast
FACTS_COST_ROUNDS = 2  # each round measures the server with and without facts, side by side


def _machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GB RAM"
    return (
        f"{model}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _step(title: str, results: dict[str, Any], key: str, work: Callable[[], Any]) -> Any:
    print(f"\n== {title}", flush=True)
    started = time.monotonic()
    try:
        results[key] = work()
    except Exception:
        traceback.print_exc()
        results[key] = None
    print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    return results[key]


def _latency_step(
    title: str, results: dict[str, Any], key: str, work: Callable[[], Any], label: str
) -> Any:
    """A step that measures a `Latency`, printed under `label` when it was measured."""
    latency = _step(title, results, key, work)
    if latency:
        print(latency.line(label))
    return latency


def _organisation() -> dict[str, tuple[float, float]]:
    from benchmarks import organisation_bench

    return organisation_bench.main()


def _announce() -> dict[str, float]:
    from benchmarks import announce_bench

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        announce_bench.main()
    text = out.getvalue()
    print(text, end="")
    found = re.search(r"median ([\d.]+) ms, p99 ([\d.]+) ms", text)
    if not found:
        raise RuntimeError(f"announce_bench printed no figures: {text!r}")
    return {"median_ms": float(found[1]), "p99_ms": float(found[2])}


def _printer() -> dict[str, float]:
    from benchmarks import printer_bench

    return printer_bench.main()


def _national() -> Any:
    from benchmarks import national_bench

    result = national_bench.main()
    print(national_bench.describe(result))
    return result


def _visit_cpu() -> Any:
    from benchmarks import visit_cpu_bench

    result = visit_cpu_bench.main()
    print(visit_cpu_bench.describe(result))
    return result


def _country_year() -> Any:
    """RIGI_BENCH_COUNTRY_DAYS / _VISITS_A_DAY make it smaller (benchmarks/country_year_bench)."""
    from benchmarks import country_year_bench

    return country_year_bench.main()


def _facts_cost(database: str) -> Any:
    from benchmarks import facts_cost_bench

    result = facts_cost_bench.main(database, rounds=FACTS_COST_ROUNDS)
    print(facts_cost_bench.describe(result))
    return result


def _national_view() -> Any:
    from benchmarks import national_view_bench

    result = national_view_bench.main()
    print(national_view_bench.describe(result))
    return result


def national_rows(result: Any) -> tuple[list[str], list[str]]:
    """The report's row and goal line for benchmarks/national_bench.py's result (also printed
    by `python -m benchmarks.national_bench`, which runs that step alone)."""
    what = "a national day through nginx, 2 processes (PostgreSQL + Redis)"
    if result is None:
        return [], [f"{what}: not measured (see the run's output)"]
    latency, bare = result.latency, result.bare
    errors = sum(result.errors.values())
    r99 = _ratio(latency.p99_ms, bare.p99_ms)
    met = r99 <= GOAL_NATIONAL and errors == 0 and result.lost == 0 and result.doubled == 0
    row = (
        f"| {what}: {result.branches} branches, {result.issued} of {result.visits} visits in "
        f"{result.day_s:.0f} s ({result.rate_multiple:.1f}× a real day's rate), "
        f"{result.displays} displays, {result.phones_peak} phones at once "
        f"({result.phones_opened} in all): call-next → each display of the branch "
        f"| p50 {latency.p50_ms:.1f} ms, p99 {latency.p99_ms:.1f} ms; servers' CPU "
        f"{result.cpu_per_1000_s:.1f} s per 1,000 visits "
        f"| {r99:.2f}× the p99 of a bare broadcast to {result.displays} through nginx "
        f"(p50 {bare.p50_ms:.1f} ms, p99 {bare.p99_ms:.1f} ms; goal ≤ {GOAL_NATIONAL}×) "
        f"| errors {errors}, lost {result.lost}, doubled {result.doubled}; {_verdict(met)} |"
    )
    goal = (
        f"{what}: {_verdict(met)} ({r99:.2f}× p99, {errors} errors, {result.lost} lost, "
        f"{result.doubled} doubled)"
    )
    return [row], [goal]


def _verdict(met: bool) -> str:
    return "**met**" if met else "**short**"


def _ratio(value: float, base: float) -> float:
    return value / base if base else float("nan")


def _notify_rows(results: dict[str, Any], bare: Any, goals: list[str]) -> list[str]:
    """Call → display with SUBSCRIBED subscribed tickets, and the worker's messages a second."""
    rows = []
    waiting = results.get("notify_unsubscribed")
    if waiting and waiting.latency and bare:
        latency = waiting.latency
        rows.append(
            f"| call-next → display with {notify_bench.SUBSCRIBED} waiting, nobody subscribed "
            f"(SQLite), {realtime_bench.DISPLAYS} displays | p50 {latency.p50_ms:.1f} ms, "
            f"p99 {latency.p99_ms:.1f} ms | {_ratio(latency.p50_ms, bare.p50_ms):.2f}× / "
            f"{_ratio(latency.p99_ms, bare.p99_ms):.2f}× bare | missing {latency.missing}; "
            f"the line without notifications |"
        )
    what = f"call-next → display with {notify_bench.SUBSCRIBED} subscribed tickets (SQLite)"
    notify = results.get("notify_sqlite")
    if notify and notify.latency and bare:
        latency = notify.latency
        r50, r99 = _ratio(latency.p50_ms, bare.p50_ms), _ratio(latency.p99_ms, bare.p99_ms)
        met = r50 <= GOAL_SINGLE and r99 <= GOAL_SINGLE and latency.missing == 0
        rows.append(
            f"| {what}, {realtime_bench.DISPLAYS} displays, {realtime_bench.CALLS} calls "
            f"| p50 {latency.p50_ms:.1f} ms, p99 {latency.p99_ms:.1f} ms "
            f"| {r50:.2f}× / {r99:.2f}× bare (goal ≤ {GOAL_SINGLE}×) "
            f"| missing {latency.missing}; {_verdict(met)} |"
        )
        goals.append(f"{what}: {_verdict(met)} ({r50:.2f}× p50, {r99:.2f}× p99)")
    else:
        goals.append(f"{what}: not measured (see the run's output)")
    for database in ("sqlite", "postgresql"):
        result = results.get(f"notify_{database}")
        if result:
            rate = result.rate
            rows.append(
                f"| notification worker → local SMS gateway ({database}): a broadcast to "
                f"{notify_bench.SUBSCRIBED} subscribed tickets | {rate.messages} messages in "
                f"{rate.seconds:.2f} s: {rate.per_s:.0f}/s | — | no goal set |"
            )
    return rows


def _report(results: dict[str, Any], date: str, seconds: float) -> tuple[str, list[str]]:
    rows: list[str] = []
    goals: list[str] = []
    displays = realtime_bench.DISPLAYS
    calls = realtime_bench.CALLS
    bare = results.get("bare_broadcast")
    single = results.get("single")
    single_pg = results.get("single_postgresql")
    scale = results.get("scale_out")
    if bare:
        rows.append(
            f"| bare Starlette broadcast, {displays} clients, {calls} POSTs "
            f"({bare.frame_bytes} B frame) | p50 {bare.p50_ms:.1f} ms, p99 {bare.p99_ms:.1f} ms "
            f"| baseline | missing {bare.missing} |"
        )
    for latency, what, goal in (
        (single, "call-next → display, 1 process (SQLite, memory bus)", GOAL_SINGLE),
        (single_pg, "call-next → display, 1 process (PostgreSQL, memory bus)", GOAL_SINGLE),
        (scale, "call-next on A → display on B (PostgreSQL + Redis)", GOAL_SCALE_OUT),
    ):
        if latency and bare:
            r50, r99 = _ratio(latency.p50_ms, bare.p50_ms), _ratio(latency.p99_ms, bare.p99_ms)
            met = r50 <= goal and r99 <= goal and latency.missing == 0
            rows.append(
                f"| {what}, {displays} displays, {calls} calls | p50 {latency.p50_ms:.1f} ms, "
                f"p99 {latency.p99_ms:.1f} ms | {r50:.2f}× / {r99:.2f}× bare (goal ≤ {goal}×) "
                f"| missing {latency.missing}; {_verdict(met)} |"
            )
            goals.append(f"{what}: {_verdict(met)} ({r50:.2f}× p50, {r99:.2f}× p99)")
        else:
            goals.append(f"{what}: not measured (see the run's output)")
    rows.extend(_notify_rows(results, bare, goals))
    phones, bare_phones = results.get("phones"), results.get("bare_phones")
    if phones and bare_phones:
        count = realtime_bench.PHONES
        rows.append(
            f"| phones following their tickets, {count} phones, {calls} calls: call-next → "
            f"each phone's new view (SQLite) | p50 {phones.p50_ms:.1f} ms, "
            f"p99 {phones.p99_ms:.1f} ms | {_ratio(phones.p50_ms, bare_phones.p50_ms):.2f}× / "
            f"{_ratio(phones.p99_ms, bare_phones.p99_ms):.2f}× a bare broadcast to {count} "
            f"(p50 {bare_phones.p50_ms:.1f} ms, p99 {bare_phones.p99_ms:.1f} ms) "
            f"| missing {phones.missing}; no goal set |"
        )
    consoles = results.get("consoles")
    if consoles:
        rows.append(
            f"| operator consoles, {realtime_bench.CONSOLE_COUNTERS} counters × "
            f"{realtime_bench.CONSOLES_PER_COUNTER}, {realtime_bench.CONSOLE_WAITING} waiting, "
            f"{calls} calls: call-next → each console's new list (SQLite, "
            f"{consoles.frame_bytes // 1000} kB frames) | p50 {consoles.p50_ms:.1f} ms, "
            f"p99 {consoles.p99_ms:.1f} ms | — | missing {consoles.missing}; no goal set |"
        )
    for database in ("sqlite", "postgresql"):
        rigi, base = results.get(f"issue_{database}"), results.get(f"bare_issue_{database}")
        if base:
            rows.append(
                f"| bare INSERT+commit ({database}), {issue_bench.CLIENTS} clients "
                f"| {base.per_s:.0f}/s (p50 {base.p50_ms:.1f} ms, p99 {base.p99_ms:.1f} ms) "
                f"| baseline | errors {base.errors} |"
            )
        if rigi and base:
            share = _ratio(rigi.per_s, base.per_s)
            met = share >= GOAL_ISSUE_SHARE and rigi.errors == 0
            rows.append(
                f"| issue a ticket ({database}), {issue_bench.CLIENTS} clients "
                f"| {rigi.per_s:.0f}/s (p50 {rigi.p50_ms:.1f} ms, p99 {rigi.p99_ms:.1f} ms) "
                f"| {share:.0%} of bare (goal ≥ {GOAL_ISSUE_SHARE:.0%}) "
                f"| errors {rigi.errors}; {_verdict(met)} |"
            )
            goals.append(f"issue rate on {database}: {_verdict(met)} ({share:.0%} of bare)")
            off = results.get(f"issue_{database}_forecast_off")
            if off:
                rows.append(
                    f"| the same with the wait forecast off ({database}) "
                    f"| {off.per_s:.0f}/s (p50 {off.p50_ms:.1f} ms, p99 {off.p99_ms:.1f} ms) "
                    f"| {_ratio(off.per_s, base.per_s):.0%} of bare | for comparison |"
                )
        else:
            goals.append(f"issue rate on {database}: not measured")
    for deflate in (False, True):
        memory = results.get(f"memory_deflate_{deflate}")
        label = "on" if deflate else "off (as `serve`)"
        if memory:
            before, after = memory
            per_1000 = (after - before) * 1000 / displays
            met = per_1000 <= GOAL_IDLE_MB
            rows.append(
                f"| server RSS, {displays} idle displays, permessage-deflate {label} "
                f"| {before:.0f} → {after:.0f} MB: {per_1000:.1f} MB per 1,000 "
                f"| goal ≤ {GOAL_IDLE_MB:.0f} MB "
                f"| {'for comparison' if deflate else _verdict(met)} |"
            )
            if not deflate:
                goals.append(f"memory per 1,000 idle displays: {_verdict(met)} ({per_1000:.1f} MB)")
    printer = results.get("printer")
    if printer:
        for width in (576, 384):
            rows.append(
                f"| printer agent, {width} dots: job sent → last byte at printer "
                f"| median {printer[f'printer_job_to_last_byte_{width}_median_ms']:.1f} ms, "
                f"p99 {printer[f'printer_job_to_last_byte_{width}_p99_ms']:.1f} ms | — | |"
            )
    announce = results.get("announce")
    if announce:
        rows.append(
            f"| display_client: call event → announcement audio ready (ka+en) "
            f"| median {announce['median_ms']:.1f} ms, p99 {announce['p99_ms']:.1f} ms | — | |"
        )
    visit_cpu = results.get("visit_cpu")
    if visit_cpu:
        rows.append(
            f"| server CPU per visit, {visit_cpu.visits} visits one at a time, 1 process "
            f"(PostgreSQL + Redis, 86 branches, a phone per visit) "
            f"| {visit_cpu.ms_per_visit:.1f} ms ({visit_cpu.ms_per_visit:.1f} s per 1,000 visits) "
            f"in {visit_cpu.wall_s:.0f} s | — | no goal set; compare runs side by side |"
        )
    from benchmarks import facts_cost_bench

    for database in ("sqlite", "postgresql"):
        facts, facts_goal = facts_cost_bench.report_rows(
            database, results.get(f"facts_cost_{database}")
        )
        rows.extend(facts)
        goals.extend(facts_goal)
    national, national_goal = national_rows(results.get("national"))
    rows.extend(national)
    goals.extend(national_goal)
    from benchmarks.national_view_bench import report_rows

    view, view_goal = report_rows(results.get("national_view"))
    rows.extend(view)
    goals.extend(view_goal)
    offline, offline_goal = offline_bench.report_rows(results.get("offline"))
    rows.extend(offline)
    goals.extend(offline_goal)
    from benchmarks.country_year_bench import report_rows as country_rows

    country, country_goal = country_rows(results.get("country_year"))
    rows.extend(country)
    goals.extend(country_goal)
    table = "\n".join(
        ["| measurement | figures | against | result |", "| --- | --- | --- | --- |", *rows]
    )
    text = f"""# Benchmarks

`make bench` (`python -m benchmarks.run`) measures Rigi's hot paths, each against a bare
baseline measured in the same run on the same machine (`benchmarks/bare_app.py`: a minimal
Starlette app under uvicorn), so the goals are ratios and survive a noisy machine. Clients run
in the benchmark's process on loopback; servers are subprocesses.

Last run: {date}, {seconds:.0f} s, on {_machine()}.

{table}

## Goals

{chr(10).join(f"- {goal}" for goal in goals)}

## What is measured

- **Call to display**: {displays} lobby displays (`websockets`, no compression) on the board
  feed with a display token; per call, the time from sending `POST …/counters/c01/call-next`
  to each display receiving the `ticket.called` frame; {calls} calls after
  {realtime_bench.WARM_UP_CALLS} warm-up calls, a no-show and a {realtime_bench.SETTLE_S} s
  pause between calls. The bare baseline sends the very same frame (a captured `ticket.called`
  event) from a POST to the same number of clients. One process: `queue-server serve` with the
  memory bus, on the default SQLite file and on PostgreSQL (as in production). Two processes:
  calls on A, displays on B, both `queue-server serve` on PostgreSQL with the Redis bus. With
  {calls} calls of {displays} displays each, p99 is the tail of the slowest call or two: one
  pause of the server (a full garbage collection) shows there.
- **Phones**: {realtime_bench.PHONES} citizens follow their own waiting tickets on the ticket
  feed; each call moves every one of them up, so each phone gets a new view (people ahead, wait),
  computed for all of them after the commit. Timed like the displays; the baseline is the bare
  broadcast of one frame to as many clients. **Consoles**: {realtime_bench.CONSOLE_COUNTERS}
  counters with {realtime_bench.CONSOLES_PER_COUNTER} console screens each and
  {realtime_bench.CONSOLE_WAITING} tickets waiting; each call shortens every console's waiting
  list, so each console gets a new frame (no bare equivalent: the frames are the whole list).
- **Issue rate**: {issue_bench.CLIENTS} keep-alive clients post `{{"service_id": "stamp"}}` for
  {issue_bench.DURATION_S:.0f} s after {issue_bench.WARM_UP_S:.0f} s of warm-up; the bare
  endpoint does one INSERT and commit through SQLAlchemy Core on the same driver (SQLite: one
  writer, WAL, `synchronous=FULL`, as Rigi).
- **Idle memory**: the server's RSS before and after {displays} displays connect and say hello
  (one display connected beforehand to warm up), Rigi run by uvicorn with the `create_app`
  factory and `ws_per_message_deflate` off or on (the clients offer deflate in the "on" run).
- **Notifications** (`benchmarks/notify_bench.py`): the call-to-display run above with
  {notify_bench.SUBSCRIBED} waiting tickets that left a number (each call runs the "near" check
  over all of them); then a manager's broadcast to those tickets queues one message each, timed
  from its answer until `queue-server sms-gateway` (a subprocess) holds them all.
- **Printer and announcement**: `benchmarks/printer_bench.py` and
  `benchmarks/announce_bench.py`, as they are.
- **A national day** (`benchmarks/national_bench.py`): nginx with deploy/nginx's files in front
  of two `queue-server serve` processes on PostgreSQL and a Redis of its own; the shipped
  organisation (config/), visits scaled from 20,000 for 211 branches to the branches there are,
  issued at random over the compressed day; an operator at every counter (counters open before
  the day; then call next, start, a short service, finish); displays spread over every branch's
  board and phones following one ticket in visits/NATIONAL_PHONES, both in
  NATIONAL_CLIENT_PROCESSES client processes (benchmarks/client_fleet.py). Lost or doubled:
  every display must see each call of its branch once. The baseline is the bare broadcast of a
  `ticket.called` frame to as many clients as displays, received by the same kind of client
  processes, through the same nginx, measured after the day in the same run; CPU is
  both servers' user + system time over the day, from /proc/<pid>/stat. `make bench` runs a
  short day (1,500 visits); `NATIONAL_DAY=compressed` runs the whole day the issue asks for
  (20,000 visits over 211 branches at 20× the real rate, 1,000 displays, 2,000 phones: about
  half an hour).
"""
    return text, goals


def _kept_analysis() -> str:
    """The hand-written part of the report (from ANALYSIS_MARKER on), or the marker alone."""
    old = REPORT.read_text() if REPORT.exists() else ""
    start = old.find(ANALYSIS_MARKER)
    return old[start:] if start >= 0 else ANALYSIS_MARKER + "\n"


def main() -> int:
    raise_open_files()
    started = time.monotonic()
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results: dict[str, Any] = {}
    # the wait forecast's numba cache, once: servers then load it (a second or two) instead of
    # each compiling it (a minute or more of a core) while the benches measure them
    _step("wait forecast compiled, not measured", {}, "forecast_compile", forecast.warm_up)
    _step("warm-up: one bare round, not measured", {}, "warm_up", realtime_bench.warm_up)
    single = _step("call-to-display, one process", results, "single", realtime_bench.single_process)
    if single:
        latency, frame = single
        results["single"] = latency
        print(latency.line("rigi, one process"))
        _latency_step(
            "bare broadcast", results, "bare_broadcast",
            lambda: realtime_bench.bare_broadcast(frame), "bare broadcast",
        )  # fmt: skip
        _latency_step(
            f"phones following their tickets, {realtime_bench.PHONES}", results, "phones",
            lambda: realtime_bench.followers("phones"), "rigi, phones",
        )  # fmt: skip
        _latency_step(
            f"bare broadcast, {realtime_bench.PHONES} clients", results, "bare_phones",
            lambda: realtime_bench.bare_broadcast(frame, realtime_bench.PHONES), "bare broadcast",
        )  # fmt: skip
        _latency_step(
            "operator consoles following their counters", results, "consoles",
            lambda: realtime_bench.followers("consoles"), "rigi, consoles",
        )  # fmt: skip
    on_postgres = _step(
        "call-to-display, one process on PostgreSQL", results, "single_postgresql",
        lambda: realtime_bench.single_process("postgresql"),
    )  # fmt: skip
    if on_postgres:
        results["single_postgresql"] = on_postgres[0]
        print(on_postgres[0].line("rigi, one process on PostgreSQL"))
    _latency_step("call-to-display, two processes", results, "scale_out",
                  realtime_bench.two_processes, "rigi, two processes through Redis")  # fmt: skip
    for database in ("sqlite", "postgresql"):
        for key, work, what in (
            (f"issue_{database}", issue_bench.rigi_rate, "rigi"),
            (
                f"issue_{database}_forecast_off",
                functools.partial(issue_bench.rigi_rate, forecast_runs=0),
                "rigi, wait forecast off",
            ),
            (f"bare_issue_{database}", issue_bench.bare_rate, "bare"),
        ):
            rate = _step(f"issue rate, {what}, {database}", results, key,
                         functools.partial(work, database))  # fmt: skip
            if rate:
                print(rate.line(f"{what} {database}"))
    for deflate in (False, True):
        memory = _step(f"idle memory, deflate {deflate}", results, f"memory_deflate_{deflate}",
                       functools.partial(realtime_bench.idle_memory, deflate))  # fmt: skip
        if memory:
            print(f"server RSS {memory[0]:.1f} → {memory[1]:.1f} MB")
    unsubscribed = _step(f"the same line, {notify_bench.SUBSCRIBED} waiting, nobody subscribed",
                         results, "notify_unsubscribed",
                         functools.partial(notify_bench.run, subscribe=False))  # fmt: skip
    if unsubscribed and unsubscribed.latency:
        print(unsubscribed.latency.line("rigi, nobody subscribed"))
    for database in ("sqlite", "postgresql"):
        notify = _step(f"notifications, {notify_bench.SUBSCRIBED} subscribed, {database}",
                       results, f"notify_{database}",
                       functools.partial(notify_bench.run, database,
                                         measure_calls=database == "sqlite"))  # fmt: skip
        if notify:
            if notify.latency:
                print(notify.latency.line(f"rigi, {notify_bench.SUBSCRIBED} subscribed"))
            print(notify.rate.line(f"worker → gateway, {database}"))
    _step("printer agent", results, "printer", _printer)
    _step("announcements", results, "announce", _announce)
    _step("wait forecast refresh", results, "forecast", forecast_bench.main)
    _step("organisation check and edit", results, "organisation", _organisation)
    _step("server CPU per visit", results, "visit_cpu", _visit_cpu)
    for database in ("sqlite", "postgresql"):
        _step(f"the facts' cost, {database}", results, f"facts_cost_{database}",
              functools.partial(_facts_cost, database))  # fmt: skip
    _step("a national day through nginx", results, "national", _national)
    _step("the national view, 211 branches", results, "national_view", _national_view)
    _step("a branch node: catch-up and live link", results, "offline", offline_bench.main)
    _step("a year of the country's reports (PostgreSQL)", results, "country_year", _country_year)
    text, goals = _report(results, date, time.monotonic() - started)
    REPORT.write_text(text.rstrip() + "\n\n" + _kept_analysis())
    print("\n" + "\n".join(goals))
    print(f"written to {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
