"""The national view at the country's size: `python -m benchmarks.national_view_bench [postgres]`.

The shipped organisation (86 branches) plus 125 halls synthesised for this run only (copies of
the Tbilisi hall under other ids, names and municipalities): 211 branches, 33 counters in each
hall. One `queue-server serve` (SQLite by default, PostgreSQL with `postgres`), people waiting
in every branch, two counters open in each.

- **First full paint**: real Chromium, an administrator already signed in, from navigating to
  `/national` until all 211 rows and the country's totals are on screen. The first load starts
  the process's national floor (211 hub listeners and the first read); the later ones find it
  running while the first page stays open (as a central office's wall screen would).
- **A change anywhere shows within**: while a load of issues and calls runs at every other
  branch (LOAD_PER_S actions a second spread over the 210, i.e. every branch active), a ticket
  is issued at a random branch and the time from sending the request until the page's row for
  that branch shows one more waiting is taken, PROBES times. The probed branch is left out of
  the load while it is probed, so "one more" is the probe's own change.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks._support import (
    ADMIN,
    PASSWORD,
    POSTGRES_URL,
    create_admin,
    percentile,
    reset_postgres,
    rigi_cli,
    rigi_environment,
)
from queue_server.settings import SHIPPED_CONFIG

EXTRA_HALLS = 125
BRANCHES = 86 + EXTRA_HALLS
WAITING_PER_BRANCH = int(os.environ.get("NATIONAL_VIEW_WAITING", "8"))
OPEN_COUNTERS = 2
PAINTS = 7
PROBES = int(os.environ.get("NATIONAL_VIEW_PROBES", "100"))
# The load at a national day's rate: 20,000 visits over nine opening hours, each an issue and a
# call-next (two load actions): 1.23 actions a second for the country. NATIONAL_VIEW_RATE=k runs
# at k times that; the default 2 is a busy hour at twice the day's mean. (The old default, 20
# actions a second, was 16 times the day's rate: overload on the shared machine.)
NATIONAL_VISITS = 20_000
REAL_DAY_S = 9 * 3600
REAL_ACTIONS_PER_S = 2 * NATIONAL_VISITS / REAL_DAY_S
RATE = float(os.environ.get("NATIONAL_VIEW_RATE", "2"))
LOAD_PER_S = float(os.environ.get("NATIONAL_VIEW_LOAD", str(RATE * REAL_ACTIONS_PER_S)))
SEED_CONCURRENCY = 16
LOAD_IN_FLIGHT = 8  # the load waits rather than queue without bound on a slow server
PAINT_GOAL_S = 1.0
CHANGE_GOAL_S = 1.0
PAGE_TIMEOUT_MS = 30_000
PAGE_CHECK_TIMEOUT_MS = 5_000  # the page's own times of a row Playwright has seen shown
CHROMIUM = "/usr/bin/chromium"
# Injected before the page's own scripts (the same instrument for any version of the page):
# the Performance API's clock (epoch ms) at the feed's open and first frame, and, for every
# row, when each count it shows reached the DOM and when the frame after it was painted
# (a task queued from requestAnimationFrame runs after that frame's paint).
PAGE_TIMELINE = """
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const marks = { ws_open: null, first_frame: null, rows_at: null, rows_painted: null };
  Object.assign(marks, { shown: {}, painted: {} });
  window.__rigiBench = marks;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("open", () => { marks.ws_open ??= now(); });
      this.addEventListener("message", () => { marks.first_frame ??= now(); });
    }
  };
  const note = (row, at, seen) => {
    const count = row.querySelector("td.waiting")?.textContent;
    if (count === undefined) return;
    const key = `${row.dataset.branch}:${count}`;
    if (seen.has(key)) return;
    seen.add(key);
    (marks.shown[key] ??= []).push(at);
    (marks.painted[key] ??= []).push(null);
  };
  new MutationObserver((records) => {
    const at = now();
    const seen = new Set();
    for (const record of records) {
      const target = record.target.nodeType === 1 ? record.target : record.target.parentElement;
      const row = target?.closest?.("tr.branch-row");
      if (row) note(row, at, seen);
      for (const node of record.addedNodes) {
        if (node.nodeType !== 1) continue;
        if (node.matches("tr.branch-row")) note(node, at, seen);
        else for (const inner of node.querySelectorAll("tr.branch-row")) note(inner, at, seen);
      }
    }
    const complete = marks.rows_at === null
      && document.querySelectorAll("tr.branch-row td.waiting").length === BRANCHES
      && document.getElementById("total-waiting") !== null;
    if (complete) marks.rows_at = at;
    requestAnimationFrame(() => setTimeout(() => {
      const painted = now();
      if (complete) marks.rows_painted = painted;
      for (const key of seen) {
        const times = marks.painted[key];
        times[times.length - 1] ??= painted;
      }
    }, 0));
  }).observe(document, { childList: true, subtree: true, characterData: true });
})();
""".replace("BRANCHES", str(BRANCHES))


def network_config(folder: Path) -> Path:
    """The shipped configuration plus EXTRA_HALLS copies of the Tbilisi hall."""
    config = folder / "config"
    shutil.copytree(SHIPPED_CONFIG, config)
    with (config / "municipalities.csv").open(encoding="utf-8") as source:
        municipalities = [row["municipality"] for row in csv.DictReader(source)]
    hall = (config / "branches" / "tbilisi.yaml").read_text(encoding="utf-8")
    for number, municipality in zip(
        range(1, EXTRA_HALLS + 1), itertools.cycle(municipalities), strict=False
    ):
        text = hall.replace("id: tbilisi", f"id: hall{number:03d}", 1)
        text = text.replace("municipality: Tbilisi", f"municipality: {municipality}", 1)
        text = text.replace("Tbilisi Public Service Hall", f"{municipality} Hall {number}", 1)
        text = text.replace("თბილისის იუსტიციის სახლი", f"იუსტიციის სახლი {number}", 1)
        (config / "branches" / f"hall{number:03d}.yaml").write_text(text, encoding="utf-8")
    return config


@dataclass
class Network:
    url: str
    branches: dict[str, dict[str, Any]]  # id → {"services": [...], "counters": [...]}
    cookie: str = ""
    probing: str | None = None
    in_flight: Counter[str] = field(default_factory=Counter)  # load requests per branch
    load_actions: int = 0
    load_errors: int = 0
    load_s: float = 0.0
    paints_s: list[float] = field(default_factory=list)
    changes_s: list[float] = field(default_factory=list)  # from sending the request
    after_commit_s: list[float] = field(default_factory=list)  # from its answer
    # From sending the request until the row reaches a plain WebSocket client of the feed
    # (no browser): the server's part of `changes_s`; the rest is Chromium's.
    feed_s: list[float] = field(default_factory=list)
    answer_s: list[float] = field(default_factory=list)  # the issue request alone
    # The page's own clock (PAGE_TIMELINE): from sending the request until the row's new count
    # was in the DOM, and until the frame after it was painted (no Playwright round trip).
    page_dom_s: list[float] = field(default_factory=list)
    page_painted_s: list[float] = field(default_factory=list)
    paint_phases: list[dict[str, float | None]] = field(default_factory=list)  # ms from navigation


async def _signed_in(url: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=30)
    response = await client.post("/api/v1/session", json={"username": ADMIN, "password": PASSWORD})
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


async def _seed(network: Network) -> str:
    """People waiting everywhere and OPEN_COUNTERS counters open in each branch; returns the
    administrator's session cookie."""
    client = await _signed_in(network.url)
    gate = asyncio.Semaphore(SEED_CONCURRENCY)
    pick = random.Random(211)

    async def one(method_path: str, body: dict[str, Any] | None = None) -> None:
        async with gate:
            response = await client.post(method_path, json=body or {})
            response.raise_for_status()

    jobs = []
    for branch, shape in network.branches.items():
        base = f"/api/v1/branches/{branch}"
        for counter in shape["counters"][:OPEN_COUNTERS]:
            jobs.append(one(f"{base}/counters/{counter}/open"))
        for _ in range(WAITING_PER_BRANCH):
            jobs.append(one(f"{base}/tickets", {"service_id": pick.choice(shape["services"])}))
    await asyncio.gather(*jobs)
    cookie = client.cookies["rigi_session"]
    await client.aclose()
    return cookie


async def _load(network: Network, stop: threading.Event) -> None:
    """Issues and call-nexts at LOAD_PER_S over every branch but the one being probed."""
    client = await _signed_in(network.url)
    pick = random.Random(17)
    branches = list(network.branches)
    tasks: set[asyncio.Task[None]] = set()

    async def act() -> None:
        branch = pick.choice(branches)
        while branch == network.probing:
            branch = pick.choice(branches)
        shape = network.branches[branch]
        base = f"/api/v1/branches/{branch}"
        if pick.random() < 0.5:
            path = f"{base}/tickets"
            body = {"service_id": pick.choice(shape["services"])}
        else:
            path = f"{base}/counters/{pick.choice(shape['counters'][:OPEN_COUNTERS])}/call-next"
            body = {}
        network.in_flight[branch] += 1
        try:
            response = await client.post(path, json=body)
            network.load_actions += 1
            if response.status_code >= 500:
                network.load_errors += 1
        except httpx.HTTPError:
            network.load_errors += 1
        finally:
            network.in_flight[branch] -= 1

    gate = asyncio.Semaphore(LOAD_IN_FLIGHT)

    async def bounded() -> None:
        try:
            await act()
        finally:
            gate.release()

    try:
        while not stop.is_set():
            await gate.acquire()
            task = asyncio.create_task(bounded())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(pick.expovariate(LOAD_PER_S))
        await asyncio.gather(*tasks)
    finally:
        await client.aclose()


def _rows_shown(page: Any) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('tr.branch-row td.waiting').length === n"
        " && document.getElementById('total-waiting') !== null",
        arg=BRANCHES,
        timeout=PAGE_TIMEOUT_MS,
        polling=5,
    )


def _measure_in_chromium(network: Network) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1920, "height": 1080})
        context.add_init_script(PAGE_TIMELINE)
        host = network.url.split("//", 1)[1].split(":")[0]
        context.add_cookies(
            [{"name": "rigi_session", "value": network.cookie, "domain": host, "path": "/"}]
        )
        wall = context.new_page()  # stays open: the floor keeps running for the later paints
        for _ in range(PAINTS):
            page = wall if not network.paints_s else context.new_page()
            started = time.perf_counter()
            page.goto(f"{network.url}/national?lang=ka")
            _rows_shown(page)
            network.paints_s.append(time.perf_counter() - started)
            network.paint_phases.append(_paint_phases(page))
            if page is not wall:
                page.close()
        _probe(network, wall)
        browser.close()


def _paint_phases(page: Any) -> dict[str, float | None]:
    """Where a first paint's time went, in ms from the navigation's start (Performance API)."""
    painted = "() => window.__rigiBench.rows_painted !== null"
    page.wait_for_function(painted, timeout=PAGE_TIMEOUT_MS)
    phases: dict[str, float | None] = page.evaluate(
        """() => {
          const origin = performance.timeOrigin;
          const since = (epoch) => (epoch === null ? null : epoch - origin);
          const navigation = performance.getEntriesByType("navigation")[0];
          const session = performance.getEntriesByType("resource")
            .find((entry) => entry.name.endsWith("/api/v1/session"));
          const marks = window.__rigiBench;
          return {
            html: navigation.responseEnd,
            scripts_run: navigation.domContentLoadedEventEnd,
            session: session ? session.responseEnd : null,
            feed_open: since(marks.ws_open),
            first_frame: since(marks.first_frame),
            rows_in_dom: since(marks.rows_at),
            painted: since(marks.rows_painted),
          };
        }"""
    )
    return phases


def _page_clock_offset(page: Any, samples: int = 7) -> float:
    """The page's clock (PAGE_TIMELINE's, epoch ms) minus this process's `time.time()`, in
    seconds, from the quickest of a few round trips."""
    best = (float("inf"), 0.0)
    for _ in range(samples):
        before = time.time()
        at_page = page.evaluate("performance.timeOrigin + performance.now()") / 1000
        after = time.time()
        best = min(best, (after - before, at_page - (before + after) / 2))
    return best[1]


def _page_times(page: Any, key: str, started_epoch: float) -> tuple[float, float] | None:
    """When the page's row first showed `key` ("branch:count") after `started_epoch` (on the
    page's clock): in the DOM and painted, as seconds since `started_epoch`."""
    with contextlib.suppress(Exception):
        return _page_times_or_raise(page, key, started_epoch)
    return None


def _page_times_or_raise(page: Any, key: str, started_epoch: float) -> tuple[float, float]:
    handle = page.wait_for_function(
        """([key, since]) => {
          const marks = window.__rigiBench;
          const shown = marks.shown[key] ?? [];
          const index = shown.findIndex((at) => at >= since);
          const painted = index < 0 ? null : marks.painted[key][index];
          return painted === null ? null : [shown[index], painted];
        }""",
        arg=[key, started_epoch * 1000],
        timeout=PAGE_CHECK_TIMEOUT_MS,
    )
    in_dom, painted = handle.json_value()
    return in_dom / 1000 - started_epoch, painted / 1000 - started_epoch


async def _follow_feed(
    network: Network, seen: dict[tuple[str, int], list[float]], stop: Any
) -> None:
    """Note when each (branch, waiting) reaches a plain client of `/ws/national`."""
    from websockets.asyncio.client import connect

    ws_url = network.url.replace("http://", "ws://") + "/ws/national"
    cookie = {"Cookie": f"rigi_session={network.cookie}"}
    async with connect(ws_url, additional_headers=cookie, compression=None) as feed:
        await feed.send(json.dumps({"type": "hello"}))
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                message = json.loads(await asyncio.wait_for(feed.recv(), 0.5))
                now = time.perf_counter()
                if message["type"] == "ping":
                    await feed.send('{"type":"pong"}')
                for branch, row in message.get("rows", {}).items():
                    seen.setdefault((branch, row["waiting"]), []).append(now)


def _probe(network: Network, page: Any) -> None:
    """Issue a ticket at a random branch and wait for its row to show one more waiting."""
    stop = threading.Event()
    load_started = time.perf_counter()
    loader = threading.Thread(target=lambda: asyncio.run(_load(network, stop)), daemon=True)
    loader.start()
    seen: dict[tuple[str, int], list[float]] = {}
    follower = threading.Thread(
        target=lambda: asyncio.run(_follow_feed(network, seen, stop)), daemon=True
    )
    follower.start()
    pick = random.Random(99)
    branches = list(network.branches)
    page.bring_to_front()  # a wall screen is shown: a page behind others paints no frames
    offset_s = _page_clock_offset(page)
    try:
        with httpx.Client(base_url=network.url, timeout=30) as client:
            signed = client.post(
                "/api/v1/session", json={"username": ADMIN, "password": PASSWORD}
            ).json()
            client.headers["X-CSRF-Token"] = signed["csrf_token"]
            time.sleep(2.0)  # the load is running everywhere before the first probe
            for _ in range(PROBES):
                branch = pick.choice(branches)
                network.probing = branch
                while network.in_flight[branch]:  # a load action sent here before has landed
                    time.sleep(0.01)
                # What waits there now, from the server (the page may still be on its way).
                queues = client.get(f"/api/v1/branches/{branch}/queues").json()
                before = sum(queue["waiting"] for queue in queues)
                selector = f"#row-{branch} td.waiting"
                service = pick.choice(network.branches[branch]["services"])
                started = time.perf_counter()
                started_epoch = time.time()
                client.post(
                    f"/api/v1/branches/{branch}/tickets", json={"service_id": service}
                ).raise_for_status()
                answered = time.perf_counter()
                page.wait_for_function(
                    "([s, n]) => document.querySelector(s)?.textContent === n",
                    arg=[selector, str(before + 1)],
                    timeout=PAGE_TIMEOUT_MS,
                    polling=5,
                )
                shown = time.perf_counter()
                network.changes_s.append(shown - started)
                network.after_commit_s.append(shown - answered)
                network.answer_s.append(answered - started)
                times = _page_times(page, f"{branch}:{before + 1}", started_epoch + offset_s)
                if times is not None:
                    network.page_dom_s.append(times[0])
                    network.page_painted_s.append(times[1])
                arrived = [t for t in seen.get((branch, before + 1), []) if t >= started]
                if arrived:
                    network.feed_s.append(min(arrived) - started)
    finally:
        network.probing = None
        stop.set()
        loader.join(timeout=30)
        follower.join(timeout=30)
        network.load_s = time.perf_counter() - load_started


def _branches(config: Path) -> dict[str, dict[str, Any]]:
    from queue_server.catalog.loader import load_catalog

    catalog = load_catalog(config)
    return {
        branch: {
            "services": [s.id for s in catalog.branch_services(branch)],
            "counters": [c.id for c in catalog.branch(branch).counters],
        }
        for branch in catalog.branches
    }


def main(database: str = "sqlite") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rigi-national-view-") as folder:
        data = Path(folder)
        config = network_config(data)
        url = None
        if database == "postgres":
            reset_postgres()
            url = POSTGRES_URL
        env = rigi_environment(data, url, "memory://") | {"RIGI_CONFIG": str(config)}
        create_admin(env)
        branches = _branches(config)
        assert len(branches) == BRANCHES, len(branches)
        with rigi_cli(env) as server:
            network = Network(server.url, branches)
            started = time.perf_counter()
            network.cookie = asyncio.run(_seed(network))
            seed_s = time.perf_counter() - started
            _measure_in_chromium(network)
        return {
            "database": database,
            "branches": BRANCHES,
            "waiting": BRANCHES * WAITING_PER_BRANCH,
            "seed_s": seed_s,
            "paints_s": network.paints_s,
            "changes_s": network.changes_s,
            "after_commit_s": network.after_commit_s,
            "feed_s": network.feed_s,
            "answer_s": network.answer_s,
            "page_dom_s": network.page_dom_s,
            "page_painted_s": network.page_painted_s,
            "paint_phases": network.paint_phases,
            "load_actions": network.load_actions,
            "load_per_s": network.load_actions / network.load_s if network.load_s else 0.0,
            "load_errors": network.load_errors,
        }


def describe(result: dict[str, Any]) -> str:
    paints, changes = result["paints_s"], result["changes_s"]
    warm = paints[1:]
    lines = [
        f"national view, {result['branches']} branches, {result['waiting']} waiting "
        f"({result['database']}; seeded in {result['seed_s']:.0f} s)",
        f"  first full paint: cold {paints[0] * 1000:.0f} ms (starts the floor); "
        f"warm median {percentile(warm, 0.5) * 1000:.0f} ms, max {max(warm) * 1000:.0f} ms "
        f"(goal ≤ {PAINT_GOAL_S * 1000:.0f} ms)",
        f"  a change in any branch on the page: median {percentile(changes, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(changes, 0.99) * 1000:.0f} ms, max {max(changes) * 1000:.0f} ms "
        f"over {len(changes)} probes (goal p99 ≤ {CHANGE_GOAL_S * 1000:.0f} ms) while "
        f"{result['load_actions']} load actions ran at every other branch "
        f"({result['load_per_s']:.1f}/s, {result['load_per_s'] / REAL_ACTIONS_PER_S:.1f}× a "
        f"national day's rate; {result['load_errors']} errors)",
        f"  from the issue's answer (after its commit) to the row: median "
        f"{percentile(result['after_commit_s'], 0.5) * 1000:.0f} ms, p99 "
        f"{percentile(result['after_commit_s'], 0.99) * 1000:.0f} ms",
        f"  the issue request alone: median {percentile(result['answer_s'], 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(result['answer_s'], 0.99) * 1000:.0f} ms; from the request to a plain "
        f"WebSocket client of the feed (no browser), {len(result['feed_s'])} probes: median "
        f"{percentile(result['feed_s'], 0.5) * 1000:.0f} ms, p99 "
        f"{percentile(result['feed_s'], 0.99) * 1000:.0f} ms",
        f"  on the page's own clock (no Playwright round trip), {len(result['page_dom_s'])} "
        f"probes: request → row in the DOM "
        f"median {percentile(result['page_dom_s'], 0.5) * 1000:.0f} ms, p99 "
        f"{percentile(result['page_dom_s'], 0.99) * 1000:.0f} ms; → painted median "
        f"{percentile(result['page_painted_s'], 0.5) * 1000:.0f} ms, p99 "
        f"{percentile(result['page_painted_s'], 0.99) * 1000:.0f} ms, max "
        f"{max(result['page_painted_s'], default=float('nan')) * 1000:.0f} ms",
        "  first paints, ms from navigation (html / scripts run / session / feed open / first "
        "frame / rows in DOM / painted):",
        *(
            "    " + " / ".join("—" if v is None else f"{v:.0f}" for v in phases.values())
            for phases in result["paint_phases"]
        ),
    ]
    return "\n".join(lines)


def report_rows(result: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """The row of docs/benchmarks.md's table and the goal line (benchmarks/run.py)."""
    what = f"the national view, {BRANCHES} branches, in Chromium"
    if result is None:
        return [], [f"{what}: not measured (see the run's output)"]
    what = f"the national view, {BRANCHES} branches ({result['database']}), in Chromium"
    warm, changes = result["paints_s"][1:], result["changes_s"]
    # The goal on both clocks: Playwright's polling and the page's own (until painted).
    painted_warm = [phases["painted"] / 1000 for phases in result["paint_phases"][1:]]
    paint = max(*warm, *painted_warm)
    change = max(percentile(changes, 0.99), percentile(result["page_painted_s"], 0.99))
    met = paint <= PAINT_GOAL_S and change <= CHANGE_GOAL_S and result["load_errors"] == 0
    verdict = "**met**" if met else "**short**"
    row = (
        f"| {what}, {result['waiting']} waiting: first full paint; an issue at a random branch "
        f"→ its row, {len(changes)} probes, {result['load_per_s']:.1f} load actions/s at every "
        f"other branch | paint: cold {result['paints_s'][0] * 1000:.0f} ms, warm max "
        f"{paint * 1000:.0f} ms; change p50 {percentile(changes, 0.5) * 1000:.0f} ms, p99 "
        f"{change * 1000:.0f} ms (the larger of Playwright's and the page's clock; after the "
        f"commit: p99 "
        f"{percentile(result['after_commit_s'], 0.99) * 1000:.0f} ms) "
        f"| goals paint ≤ {PAINT_GOAL_S:.0f} s, change p99 ≤ "
        f"{CHANGE_GOAL_S:.0f} s | load errors {result['load_errors']}; {verdict} |"
    )
    return [row], [f"{what}: {verdict} (paint {paint * 1000:.0f} ms, change p99 "
                   f"{change * 1000:.0f} ms)"]  # fmt: skip


if __name__ == "__main__":
    outcome = main(sys.argv[1] if len(sys.argv) > 1 else "sqlite")
    print(describe(outcome))
    with contextlib.suppress(OSError):
        print(json.dumps(outcome))
