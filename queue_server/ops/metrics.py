"""The server's Prometheus metrics, one object each, in the process's default registry.

They are module-level, unlike everything else the server builds, because a Prometheus metric is
process-wide by design: with `PROMETHEUS_MULTIPROC_DIR` set, each process writes its values to
its own files there and any process's `/metrics` adds them all up (see `ops.exposition`).
Gauges state how processes combine (`multiprocess_mode`). Labels stay few and bounded: a branch,
a route template, a kind, an outcome; never a ticket, a person or an address.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Waits run from seconds to hours; services from a minute to an hour.
WAIT_BUCKETS = (30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800)
SERVICE_BUCKETS = (30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 3600)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

TICKETS_ISSUED = Counter(
    "rigi_tickets_issued", "Tickets issued (committed ticket.issued events)", ["branch"]
)
CALLS = Counter(
    "rigi_calls",
    "Tickets called to a counter, by outcome: called (first call) or recalled",
    ["branch", "outcome"],
)
VISITS_ENDED = Counter(
    "rigi_visits_ended",
    "Visits that left the queue, by outcome: finished, no_show, cancelled, transferred, recycled",
    ["branch", "outcome"],
)
WAIT_SECONDS = Histogram(
    "rigi_wait_seconds",
    "From issue to first call, per called ticket",
    ["branch"],
    buckets=WAIT_BUCKETS,
)
SERVICE_SECONDS = Histogram(
    "rigi_service_seconds",
    "From the call to the finish of a visit",
    ["branch"],
    buckets=SERVICE_BUCKETS,
)
HTTP_SECONDS = Histogram(
    "rigi_http_request_duration_seconds",
    "HTTP handling time by route template (call-next and issue among them)",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
PUBLISH_LAG_SECONDS = Histogram(
    "rigi_event_publish_lag_seconds",
    "From an event's time to the end of its publication on the bus, in the committing process",
    buckets=LATENCY_BUCKETS,
)
FEED_CONNECTIONS = Gauge(
    "rigi_feed_connections",
    "Open WebSocket feed connections by kind (board, counter, ticket, printer)",
    ["kind"],
    multiprocess_mode="livesum",
)
SEND_QUEUE_DROPS = Counter(
    "rigi_send_queue_drops",
    "Feed connections dropped because their send queue overflowed (the client resyncs)",
)
BUS_RECONNECTS = Counter("rigi_bus_reconnects", "Reconnections of the bus subscriber to Redis")
GAP_FILLS = Counter(
    "rigi_gap_fills",
    "Gaps in a branch stream, by outcome: filled from the event table, or too_old (resync)",
    ["outcome"],
)
DB_POOL_CONNECTIONS = Gauge(
    "rigi_db_pool_connections",
    "Database pool connections by state (checked_out, idle, size), sampled",
    ["state"],
    multiprocess_mode="livesum",
)
PRINTER_UP = Gauge(
    "rigi_printer_up",
    "1 when the printer's agent is connected and the printer online with paper, sampled",
    ["branch", "printer"],
    multiprocess_mode="livemax",
)
PRINTERS = Gauge(
    "rigi_printers",
    "Printers by health: ok, agent_offline, printer_offline, paper_out, sampled",
    ["health"],
    multiprocess_mode="livemax",
)
