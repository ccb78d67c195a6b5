"""The order in which `make test`'s two workers take the test files: the longest first.

`make test` runs `pytest -n 2 --dist loadfile --no-loadscope-reorder`: xdist hands out whole
files in the order collected, and a worker takes the next file when it runs low. xdist's own
order (the files with most tests first) put the long files of one or two tests last: the fuzzer,
the two-process notifications, the clusters of processes, the country-year, overload. One
worker then ran them alone at the end while the other had nothing left to take. Handed out
longest first, the last files are short ones and the two workers end within seconds of each
other (the longest-processing-time rule).

The lengths are measured (`SECONDS`, from a run's `--durations=0`, summed by file; only the
ratios matter). Replayed on those lengths (two workers, each taking the next file when idle),
the order decides little: 850 s for the busier worker against 851 s in xdist's own order (ideal
850), and on the 2026-12-01 figures below 606 s, the ideal. In that run the two workers' tests
summed 1,191 s in a suite of 615.6 s. The suite's time is its total work, not its balance. A
file not listed counts `PER_TEST_S` a test. A stale figure costs only balance, never a result:
every file still runs whole, on one worker, its tests in their order.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

PER_TEST_S = 2.0  # a file not listed below: about this long a test

# How long each file takes (its tests' setup + call + teardown), in seconds: summed from the
# `--durations=0` of `.ci/run` on a fresh clone of n16suite at 97596b9 on the idle machine
# (2026-12-01 00:56-01:08 UTC, load 4.7 on average, the suite's own; 615.6 s). Files whose every
# test took under 5 ms are listed at 1. Only the order they give matters.
SECONDS: dict[str, float] = {
    "tests/test_fuzz.py": 67,
    "tests/test_pages.py": 67,
    "tests/notify/test_notifications.py": 55,
    "tests/test_api.py": 50,
    "tests/test_report_months.py": 49,
    "tests/test_security_signin.py": 42,
    "tests/notify/test_notify_processes.py": 37,
    "tests/pages/test_demo_hall.py": 35,
    "tests/test_access.py": 34,
    "tests/test_orgdb_admin_pages.py": 34,
    "tests/test_realtime.py": 27,
    "tests/test_printing_server.py": 26,
    "tests/test_national_signout.py": 24,
    "tests/test_simulation.py": 22,
    "tests/test_national.py": 20,
    "tests/test_offline_link.py": 20,
    "tests/test_floor2_pages.py": 20,
    "tests/test_forecast_server.py": 19,
    "tests/pages/test_booking_page.py": 18,
    "tests/test_admin2_screens.py": 17,
    "tests/test_security_nginx.py": 16,
    "tests/test_projector_process.py": 16,
    "tests/test_floor2_feedback.py": 15,
    "tests/test_reports.py": 15,
    "tests/test_orgdb.py": 13,
    "tests/test_proxy_cluster.py": 13,
    "tests/test_security_input.py": 13,
    "tests/test_hall_pass.py": 13,
    "tests/test_security_claims.py": 13,
    "tests/test_priority_grant.py": 12,
    "tests/test_scaleout.py": 11,
    "tests/printer/test_printer_crash.py": 11,
    "tests/notify/test_near_minutes.py": 11,
    "tests/notify/test_webpush.py": 11,
    "tests/test_ops_keepalive.py": 10,
    "tests/notify/test_reminders.py": 10,
    "tests/test_security_production.py": 10,
    "tests/display/test_display_live.py": 9,
    "tests/display/test_display_announcements.py": 9,
    "tests/test_security_proxy.py": 9,
    "tests/test_ops_backup.py": 8,
    "tests/notify/test_subscribe_pages.py": 8,
    "tests/test_workers.py": 8,
    "tests/pages/test_nearby.py": 8,
    "tests/test_bookings_hostile.py": 8,
    "tests/test_offline_apply.py": 8,
    "tests/test_bad_input.py": 7,
    "tests/test_feed_frames.py": 7,
    "tests/test_admin2_pages.py": 7,
    "tests/test_admin2_devices.py": 7,
    "tests/notify/test_broadcast.py": 7,
    "tests/pages/test_take_page.py": 7,
    "tests/test_fairness_guard.py": 7,
    "tests/test_ops_metrics.py": 7,
    "tests/test_orgdb_pages.py": 7,
    "tests/test_admin2_people.py": 7,
    "tests/test_bookings_remote.py": 7,
    "tests/test_call_next_heads.py": 6,
    "tests/test_network_days.py": 6,
    "tests/display/test_display_speech_reliable.py": 6,
    "tests/test_orgdb_cluster.py": 6,
    "tests/test_architecture.py": 5,
    "tests/test_ops_timeline.py": 5,
    "tests/test_admin_counters.py": 5,
    "tests/pages/test_rooms_admin_page.py": 5,
    "tests/notify/test_near_heads.py": 5,
    "tests/test_rooms.py": 5,
    "tests/test_ops_multiprocess.py": 5,
    "tests/test_rooms_config.py": 5,
    "tests/pages/test_priority_pages.py": 4,
    "tests/test_bookings.py": 4,
    "tests/printer/test_printer_transports.py": 4,
    "tests/test_offline_release.py": 4,
    "tests/test_feed_heartbeat.py": 4,
    "tests/test_security_pages.py": 4,
    "tests/test_reports_page.py": 4,
    "tests/test_admin_pages.py": 4,
    "tests/test_ops_logs.py": 4,
    "tests/test_admin_audit.py": 3,
    "tests/test_offline_page.py": 3,
    "tests/test_branch_days.py": 3,
    "tests/test_offline_restore.py": 3,
    "tests/test_database.py": 3,
    "tests/test_reports_country.py": 3,
    "tests/test_overload.py": 3,
    "tests/test_companions_standalone.py": 2,
    "tests/test_database_budget.py": 2,
    "tests/printer/test_printer_kiosks.py": 2,
    "tests/test_offline_api.py": 2,
    "tests/test_admin_people.py": 2,
    "tests/test_offline_bookings.py": 1,
    "tests/test_ops_heap.py": 1,
    "tests/test_forecast_inputs.py": 1,
    "tests/test_published_events.py": 1,
    "tests/test_readiness.py": 1,
    "tests/printer/test_printer_delivery.py": 1,
    "tests/test_simulation_bookings.py": 1,
    "tests/printer/test_printer_ticket.py": 1,
    "tests/printer/test_printer_priority.py": 1,
    "tests/display/test_display_speech.py": 1,
    "tests/test_projector_supervision.py": 1,
    "tests/bus/test_bus_redis.py": 1,
    "tests/test_queueing.py": 1,
    "tests/test_estimate.py": 1,
    "tests/bus/test_bus_contract.py": 1,
    "tests/test_forecast.py": 1,
    "tests/test_report_histograms.py": 1,
    "tests/test_catalog.py": 1,
    "tests/test_forecast_speed.py": 1,
    "tests/test_reaper.py": 1,
    "tests/test_pooling.py": 1,
    "tests/test_fact_sums.py": 1,
    "tests/pages/test_names.py": 1,
    "tests/test_listener.py": 1,
    "tests/test_shared_reads.py": 1,
    "tests/test_projector_stop.py": 1,
    "tests/test_ops_serving.py": 1,
    "tests/test_ratelimit.py": 1,
    "tests/test_group_commit.py": 1,
    "tests/test_forecast_newcomers.py": 1,
    "tests/test_domain.py": 1,
    "tests/printer/test_printer_config.py": 1,
    "tests/test_fairness.py": 1,
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
