"""The order in which `make test`'s two workers take the test files: the longest first.

`make test` runs `pytest -n 2 --dist loadfile --no-loadscope-reorder`: xdist hands out whole
files in the order collected, and a worker takes the next file when it runs low. xdist's own
order (the files with most tests first) put the long files of one or two tests last: the fuzzer,
the two-process notifications, the clusters of processes, the country-year, overload. One
worker then ran them alone at the end while the other had nothing left to take. Handed out
longest first, the last files are short ones and the two workers end within seconds of each
other (the longest-processing-time rule).

The lengths are measured (`SECONDS`, from a run's `--durations=0`, summed by file; only the
ratios matter). A file not listed counts `PER_TEST_S` a test. A stale figure costs only
balance, never a result: every file still runs whole, on one worker, its tests in their order.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

PER_TEST_S = 2.0  # a file not listed below: about this long a test

# About how long each long file takes on an idle machine (its tests' setup + call + teardown),
# rounded: from `make test`'s slowest tests on an idle machine where known (the fuzzer, the
# Erlang C checks, the access matrix and bursts, fifty concurrent calls, the axe runs), else
# from a two-worker run at load ~20 (2026-11-30), halved. Only the order they give matters.
SECONDS: dict[str, float] = {
    "tests/test_simulation.py": 150,
    "tests/test_fuzz.py": 140,
    "tests/test_access.py": 140,
    "tests/notify/test_notify_processes.py": 120,
    "tests/test_api.py": 115,
    "tests/test_pages.py": 100,
    "tests/test_ops_backup.py": 55,
    "tests/pages/test_booking_page.py": 50,
    "tests/test_proxy_cluster.py": 45,
    "tests/test_floor2_pages.py": 45,
    "tests/test_ops_logs.py": 45,
    "tests/test_admin2_pages.py": 40,
    "tests/notify/test_reminders.py": 35,
    "tests/test_rooms_config.py": 33,
    "tests/test_security_nginx.py": 32,
    "tests/test_offline_release.py": 32,
    "tests/test_scaleout.py": 30,
    "tests/test_ops_multiprocess.py": 30,
    "tests/test_orgdb_cluster.py": 30,
    "tests/test_admin_pages.py": 27,
    "tests/test_orgdb_pages.py": 26,
    "tests/test_admin_audit.py": 25,
    "tests/test_reports_country.py": 20,
    "tests/test_overload.py": 20,
    "tests/test_offline_link.py": 20,
    "tests/test_security_pages.py": 20,
    "tests/test_offline_api.py": 10,
    "tests/pages/test_priority_pages.py": 8,
    # one test each, with a server or a browser: not measured alone, put among the middling
    "tests/test_offline_bookings.py": 15,
    "tests/test_offline_page.py": 15,
    "tests/test_offline_restore.py": 15,
    "tests/test_ops_keepalive.py": 15,
    "tests/test_reports_page.py": 15,
}


def file_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def longest_first(items: list[pytest.Item]) -> None:
    """Reorder `items` in place so that files run longest first; a file's tests stay together
    and in their order."""
    counts: dict[str, int] = {}
    for item in items:
        counts[file_of(item)] = counts.get(file_of(item), 0) + 1
    position = {name: index for index, name in enumerate(counts)}  # collection order

    def length(name: str) -> float:
        return SECONDS.get(name, PER_TEST_S * counts[name])

    ranked: Sequence[str] = sorted(counts, key=lambda name: (-length(name), position[name]))
    rank = {name: index for index, name in enumerate(ranked)}
    items.sort(key=lambda item: rank[file_of(item)])  # stable: a file's tests keep their order
