"""A year of the whole country made inside PostgreSQL, for the reports' benchmark: visits drawn
by `INSERT … SELECT` over `generate_series` (no row crosses to Python), then the event log those
visits would have written, the visit facts, and the rollups summed from the facts by SQL that
gives what the projector's deltas give (tests/test_reports_country.py checks it against the
projector run over the generated events).

Each branch offers its catalog services, weighted by their kiosk popularity; visits arrive on
the scenarios' hourly profiles (a hall's from `tbilisi-hall`, a Community Centre's from
`community-centre`), on weekdays (halls also on Saturdays, at half the volume); waits follow the
hour's load against the service's target, service times the service's mean. Outcomes, priority
classes and channels come in fixed shares (below). Counter time is a model (each counter-hour
of visits: their call-to-finish time serving, the rest of the hour idle), not the projector's
clocks, which would need visits that never overlap at a counter.

Report tables are written in date order (facts by issue time), as the projector writes them day
after day; in the order their sums came out a day's rows lay all over the table (a region's week
read 1,041 pages for 1,680 hourly rows). Events stay per branch in time order: the comparison's
event-table side reads a branch's period as one run, its fastest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Connection, text

from queue_server.catalog.loader import Catalog
from queue_server.domain import kpis
from queue_server.store.reports.country_sums import COUNTER_DAYS, MONTH, NETWORK_HOURS, WEEK

EPOCH = "countryyear"
HALL_SCENARIO = "tbilisi-hall.yaml"
CENTRE_SCENARIO = "community-centre.yaml"
HALL_WEEK = (1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0)  # Monday first; halls open six days
CENTRE_WEEK = (1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0)
HALL_SHARE = 7.0  # a hall has this many times a Community Centre's visits (the big one more)
BIG_HALL = "tbilisi"
BIG_HALL_SHARE = 60.0
SHARES = {  # of the visits: how they end (cumulative thresholds of one uniform draw)
    "cancelled": 0.02,  # left before being called
    "no_show": 0.06,
    "transferred": 0.08,
    "not_served": 0.10,
    "referred": 0.11,
}  # the rest are served
PRIORITY_SHARE, APPOINTMENT_SHARE, PHONE_SHARE, TRANSFER_IN_SHARE = 0.05, 0.07, 0.15, 0.02
ESTIMATED_SHARE = 0.85  # visits told a wait estimate at issue
RECALL_SHARE = 0.03
REPORT_TABLES = ("visit_facts", "visit_rollups", "visit_days", "visit_months", "branch_days",
    "branch_months", "agency_days", "agency_months", "service_days", "service_months", "class_days",
    "class_months", "network_days", "network_months", "network_hours", "network_hour_months",
    "branch_hours", "branch_hour_months", "counter_time", "counter_days", "counter_months",
    "counter_weeks", "network_weeks", "branch_weeks", "agency_weeks", "service_weeks",
    "class_weeks", "country_hours", "country_hour_months",
)  # fmt: skip


@dataclass(frozen=True)
class Loaded:
    """What a load made, and how long each step took (seconds)."""

    visits: int
    events: int
    rollup_rows: int
    seconds: dict[str, float]

    @property
    def total_s(self) -> float:
        return sum(self.seconds.values())


def plan_rows(
    catalog: Catalog, config: Path, visits_a_day: float, branches: list[str] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The generator's inputs: one row per branch × service (its expected visits on a full
    weekday), and the weekday × hour weights of each kind of branch (a full day sums to 1)."""
    chosen = (
        [catalog.branches[b] for b in branches] if branches else list(catalog.branches.values())
    )
    profiles, weeks = {}, {}
    for kind, name, week in (
        ("hall", HALL_SCENARIO, HALL_WEEK),
        ("community_centre", CENTRE_SCENARIO, CENTRE_WEEK),
    ):
        scenario = yaml.safe_load((config / "scenarios" / name).read_text(encoding="utf-8"))
        opens = int(scenario["open"].split(":")[0])
        weights = scenario["arrival_profile"]
        profiles[kind] = {opens + n: w / sum(weights) for n, w in enumerate(weights)}
        weeks[kind] = week
    share = {
        b.id: BIG_HALL_SHARE if b.id == BIG_HALL else HALL_SHARE if b.kind == "hall" else 1.0
        for b in chosen
    }
    # visits_a_day is the mean over the week: a full weekday of a branch of share 1 has `unit`.
    weekly = sum(share[b.id] * sum(weeks[b.kind]) for b in chosen)
    unit = visits_a_day * 7 / weekly
    cells = []
    for number, branch in enumerate(chosen):
        services = catalog.branch_services(branch.id)
        popularity = sum(s.popularity + 1 for s in services)
        for service_number, service in enumerate(services):
            cells.append(
                {
                    "branch_no": number,
                    "branch_id": branch.id,
                    "kind": branch.kind,
                    "zone": branch.timezone,
                    "service_no": service_number,
                    "service_id": service.id,
                    "agency_id": service.agency,
                    "letter": service.letter,
                    "target_s": service.target_wait_min * 60.0,
                    "service_ms": service.service_time_min * 60_000.0,
                    "per_day": unit * share[branch.id] * (service.popularity + 1) / popularity,
                    "counters": [c.id for c in branch.counters],
                }
            )
    hours = [
        {"kind": kind, "weekday": weekday, "local_hour": hour, "weight": day * weight}
        for kind, profile in profiles.items()
        for weekday, day in enumerate(weeks[kind])
        for hour, weight in profile.items()
        if day > 0
    ]
    return cells, hours


def load_year(
    conn: Connection,
    cells: list[dict[str, Any]],
    hours: list[dict[str, Any]],
    first: date,
    last: date,
    *,
    seed: float = 0.15,
    cursors: bool = True,
) -> Loaded:
    """Fill the (empty, migrated) database with the visits of [first, last]: events, facts and
    rollups; the secondary indexes are dropped first and made again at the end (a bulk load).
    With `cursors`, each branch's report cursor stands at its last event (as if the projector
    had applied them); without, the projector can make the facts from the events itself."""
    seconds: dict[str, float] = {}

    def step(name: str, *statements: str, **params: Any) -> None:
        started = time.perf_counter()
        for statement in statements:
            conn.execute(text(statement), params)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started

    conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
    conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
    conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
    conn.execute(text("SELECT setseed(:seed)"), {"seed": seed})
    step("inputs", _CELLS, _HOURS)
    conn.execute(text(_INSERT_CELL), cells)
    conn.execute(text(_INSERT_HOUR), hours)
    step("indexes dropped", *_drop_indexes(conn))
    step("visits drawn", _DRAW, first=first, last=last, **_SHARE_PARAMS)
    step("visit facts", _FACTS)
    step("events", _EVENTS, _STREAMS, epoch=EPOCH)
    if cursors:
        step("cursors", _CURSORS, epoch=EPOCH)
    step("hourly rollups", _rollups("visit_rollups", "hour"))
    step("daily rollups", _rollups("visit_days", "local_date"))
    step("network days", _NETWORK_DAYS)
    step("branch days", _BRANCH_DAYS, _AGENCY_DAYS)
    step("service and class days", *_GROUP_DAYS)
    step("counter time", _COUNTER_TIME, *COUNTER_DAYS)
    step("network hours", *NETWORK_HOURS)
    step("months", *_MONTHS)
    step("indexes made", *_recreate)
    step("analyze", *(f"ANALYZE {t}" for t in (*REPORT_TABLES, "events")))
    counted = {
        name: conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
        for name in ("visit_facts", "events", "visit_rollups")
    }
    conn.exec_driver_sql("DROP TABLE gen_visits, gen_cells, gen_hours")
    return Loaded(counted["visit_facts"], counted["events"], counted["visit_rollups"], seconds)


_recreate: list[str] = []


def _drop_indexes(conn: Connection) -> list[str]:
    """The statements dropping the secondary indexes and unique constraints of the tables a load
    fills; what makes them again is kept in `_recreate`."""
    tables = (*REPORT_TABLES, "events")
    _recreate.clear()
    drops = []
    for name, table, definition in conn.execute(
        text(
            "SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM "
            "pg_constraint WHERE contype = 'u' AND conrelid::regclass::text = ANY(:tables)"
        ),
        {"tables": list(tables)},
    ):
        drops.append(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        _recreate.append(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    for name, definition in conn.execute(
        text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = ANY(:tables) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
        ),
        {"tables": list(tables)},
    ):
        drops.append(f"DROP INDEX {name}")
        _recreate.append(definition)
    return drops


_SHARE_PARAMS = {
    "cancelled": SHARES["cancelled"],
    "no_show": SHARES["no_show"],
    "transferred": SHARES["transferred"],
    "not_served": SHARES["not_served"],
    "referred": SHARES["referred"],
    "priority_share": PRIORITY_SHARE,
    "appointment_share": PRIORITY_SHARE + APPOINTMENT_SHARE,
    "phone_share": PHONE_SHARE,
    "transfer_in": TRANSFER_IN_SHARE,
    "estimated_share": ESTIMATED_SHARE,
    "recall_share": RECALL_SHARE,
}

_CELLS = """CREATE TEMP TABLE gen_cells (branch_no int, branch_id text, kind text, zone text,
    service_no int, service_id text, agency_id text, letter text, target_s float8,
    service_ms float8, per_day float8, counters text[])"""
_HOURS = "CREATE TEMP TABLE gen_hours (kind text, weekday int, local_hour int, weight float8)"
_INSERT_CELL = """INSERT INTO gen_cells VALUES (:branch_no, :branch_id, :kind, :zone,
    :service_no, :service_id, :agency_id, :letter, :target_s, :service_ms, :per_day, :counters)"""
_INSERT_HOUR = "INSERT INTO gen_hours VALUES (:kind, :weekday, :local_hour, :weight)"

# One row per visit. Times are whole milliseconds (so a duration in ms is exact on both sides);
# the wait's mean follows the hour's share of the day against the flat day (busy hours wait
# longer), around half the service's target.
_DRAW = """CREATE UNLOGGED TABLE gen_visits AS
SELECT v.*,
    CASE WHEN v.outcome = 'cancelled' THEN NULL ELSE v.issued_at + v.wait_ms * interval '1 ms'
    END AS called_at
FROM (
  SELECT
    format('y%s.%s.%s.%s.%s', c.branch_no, d.day_no, c.service_no, h.local_hour, k) AS ticket_id,
    c.branch_id, c.service_id, c.agency_id, c.zone, c.target_s, c.counters,
    c.letter || lpad(((h.local_hour * 97 + k) % 1000)::text, 3, '0') AS label,
    ((d.day + make_interval(hours => h.local_hour)) AT TIME ZONE c.zone)
      + floor(random() * 3600000) * interval '1 ms' AS issued_at,
    greatest(1000, floor(-ln(1 - random()) * c.target_s * 500
      * (h.weight * 11 / day_weight.total)))::bigint AS wait_ms,
    floor(c.service_ms * (0.4 + 1.2 * random()))::bigint AS service_ms,
    floor(10000 + random() * 30000)::bigint AS walk_ms,
    o.outcome,
    CASE WHEN p.draw < :priority_share THEN 'priority'
      WHEN p.draw < :appointment_share THEN 'appointment' ELSE 'normal' END AS priority,
    random() < :phone_share AS by_phone,
    random() < :transfer_in AS transfer_in,
    CASE WHEN random() < :estimated_share
      THEN round(c.target_s * (0.3 + 0.7 * random())) END AS wait_estimate_s,
    CASE WHEN o.outcome = 'no_show' THEN 1 + (random() < 0.5)::int
      WHEN random() < :recall_share THEN 1 ELSE 0 END AS recalls,
    c.counters[1 + floor(random() * array_length(c.counters, 1))::int] AS counter_id
  FROM (SELECT day::date AS day, row_number() OVER (ORDER BY day) AS day_no
        FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') day) d
  JOIN gen_cells c ON true
  JOIN gen_hours h ON h.kind = c.kind AND h.weekday = extract(isodow FROM d.day)::int - 1
  JOIN (SELECT kind, weekday, sum(weight) AS total FROM gen_hours GROUP BY kind, weekday)
    day_weight ON day_weight.kind = c.kind AND day_weight.weekday = h.weekday
  CROSS JOIN LATERAL generate_series(1, floor(c.per_day * h.weight + random())::int) k
  CROSS JOIN LATERAL (SELECT random() + 0 * k AS draw) p  -- per visit (k)
  CROSS JOIN LATERAL (SELECT random() + 0 * k AS draw) u
  CROSS JOIN LATERAL (SELECT CASE WHEN u.draw < :cancelled THEN 'cancelled'
      WHEN u.draw < :no_show THEN 'no_show' WHEN u.draw < :transferred THEN 'transferred'
      WHEN u.draw < :not_served THEN 'not_served' WHEN u.draw < :referred THEN 'referred'
      ELSE 'served' END AS outcome) o
) v"""

# The visit's facts as the projector writes them (projector._issued, _ticket and _derive).
_FACTS = """INSERT INTO visit_facts (ticket_id, branch_id, service_id, agency_id, priority,
    channel, label, issued_at, hour, local_date, called_at, started_at, finished_at, counter_id,
    operator, outcome, wait_s, service_s, recalls, target_wait_s, wait_estimate_s, wait_p90_s)
SELECT ticket_id, branch_id, service_id, agency_id, priority,
    CASE WHEN transfer_in THEN 'transfer' WHEN priority = 'appointment' THEN 'appointment'
      WHEN by_phone THEN 'phone' ELSE 'kiosk' END,
    label, issued_at, date_trunc('hour', issued_at, 'UTC'), (issued_at AT TIME ZONE zone)::date,
    called_at, started_at, finished_at, CASE WHEN called_at IS NOT NULL THEN counter_id END,
    CASE WHEN called_at IS NOT NULL THEN 'user-' || counter_id END, outcome,
    extract(epoch FROM called_at - issued_at)::float8,
    CASE WHEN started_at IS NOT NULL THEN extract(epoch FROM finished_at - started_at)::float8
    END,
    recalls, target_s, wait_estimate_s, NULL
FROM (SELECT *,
    CASE WHEN outcome NOT IN ('cancelled', 'no_show')
      THEN called_at + walk_ms * interval '1 ms' END AS started_at,
    CASE WHEN outcome = 'cancelled' THEN issued_at + wait_ms * interval '1 ms'
      WHEN outcome = 'no_show' THEN called_at + walk_ms * interval '1 ms'
      ELSE called_at + (walk_ms + service_ms) * interval '1 ms' END AS finished_at
  FROM gen_visits) v ORDER BY issued_at"""

# The events those visits wrote, in time order per branch: issued, called, recalled, started,
# and the end. The ticket's JSON holds what the projector reads of it.
_EVENTS = """INSERT INTO events (branch_id, epoch, seq, kind, at, data, actor)
SELECT e.branch_id, :epoch,
    row_number() OVER (PARTITION BY e.branch_id ORDER BY e.at, e.ticket_id, e.step)::int,
    e.kind, e.at, e.data, e.actor
FROM (
  SELECT f.branch_id, f.ticket_id, s.step, s.kind, s.at, s.actor,
    json_build_object('ticket', json_strip_nulls(json_build_object('id', f.ticket_id,
      'service_id', f.service_id, 'priority', f.priority, 'label', f.label,
      'wait_estimate_s', f.wait_estimate_s,
      'transferred_from', CASE WHEN f.channel = 'transfer' THEN f.ticket_id || 't' END,
      'outcome', CASE WHEN s.kind = 'ticket.finished' THEN f.outcome END)),
      'counter_id', CASE WHEN s.kind = 'ticket.called' THEN f.counter_id END)::text AS data
  FROM visit_facts f
  CROSS JOIN LATERAL (VALUES
    (0, 'ticket.issued', f.issued_at,
      CASE WHEN f.channel = 'phone' THEN 'anonymous' ELSE 'kiosk-' || f.branch_id END),
    (1, 'ticket.called', f.called_at, f.operator),
    (2, 'ticket.recalled', CASE WHEN f.recalls > 0 THEN f.called_at END, f.operator),
    (3, 'ticket.recalled', CASE WHEN f.recalls > 1 THEN f.called_at END, f.operator),
    (4, 'ticket.started', f.started_at, f.operator),
    (5, CASE f.outcome WHEN 'cancelled' THEN 'ticket.cancelled'
       WHEN 'no_show' THEN 'ticket.no_show' WHEN 'transferred' THEN 'ticket.transferred'
       ELSE 'ticket.finished' END, f.finished_at,
     CASE WHEN f.outcome = 'cancelled' THEN NULL ELSE f.operator END)
  ) s (step, kind, at, actor)
  WHERE s.at IS NOT NULL
) e"""

_STREAMS = """INSERT INTO branch_streams (branch_id, epoch, last_seq, node_owned)
SELECT branch_id, :epoch, max(seq), false FROM events GROUP BY branch_id"""
_CURSORS = """INSERT INTO report_cursors (branch_id, epoch, seq, updated_at)
SELECT branch_id, :epoch, last_seq, now() FROM branch_streams"""


def _sums_sql() -> str:
    """The columns of `kpis.Sums` summed over a group of facts, as `Sums.add_visit` counts."""
    wait_ms, service_ms = "round(wait_s * 1000)::bigint", "round(service_s * 1000)::bigint"
    error = f"(round(wait_estimate_s * 1000)::bigint - {wait_ms})"
    columns = {
        "visits": "count(*)",
        "open": "count(*) FILTER (WHERE outcome IS NULL)",
        "waited": "count(wait_s)",
        "wait_sum_ms": f"coalesce(sum({wait_ms}), 0)",
        "wait_max_ms": f"coalesce(max({wait_ms}), 0)",
        "within_target": "count(*) FILTER (WHERE wait_s <= target_wait_s)",
        "serviced": "count(service_s)",
        "service_sum_ms": f"coalesce(sum({service_ms}), 0)",
        "service_max_ms": f"coalesce(max({service_ms}), 0)",
        "recalls": "sum(recalls)",
        "estimated": "count(wait_estimate_s) FILTER (WHERE wait_s IS NOT NULL)",
        "estimate_error_sum_ms": f"coalesce(sum({error}), 0)",
        "estimate_abs_error_sum_ms": f"coalesce(sum(abs({error})), 0)",
        "ranged": "count(wait_p90_s) FILTER (WHERE wait_s IS NOT NULL)",
        "within_range": "count(*) FILTER (WHERE wait_s <= wait_p90_s)",
    }
    for outcome in (kpis.SERVED, kpis.NOT_SERVED, kpis.REFERRED, kpis.NO_SHOW):
        columns[outcome] = f"count(*) FILTER (WHERE outcome = '{outcome}')"
    for outcome in (kpis.CANCELLED, kpis.TRANSFERRED):
        columns[outcome] = f"count(*) FILTER (WHERE outcome = '{outcome}')"
    return ", ".join(f"{sql} AS {name}" for name, sql in columns.items())


def _histogram(duration: str, keys: str) -> str:
    """Per group: the JSON of {bucket: count} as `rollups.rollup_row` writes it."""
    bucket = f"least(greatest(floor({duration} / {kpis.BUCKET_S}), 0), {kpis.BUCKETS})::int"
    return f"""SELECT {keys}, '{{' || string_agg(format('"%s": %s', bucket, n), ', '
        ORDER BY bucket) || '}}' AS hist
    FROM (SELECT {keys}, {bucket} AS bucket, count(*) AS n FROM visit_facts
          WHERE {duration} IS NOT NULL GROUP BY {keys}, {len(keys.split(",")) + 1}) b
    GROUP BY {keys}"""


def _rollups(table: str, when: str) -> str:
    keys = f"branch_id, service_id, priority, channel, {when}"
    hour_fields = ""
    if when == "hour":
        local = "(s.hour AT TIME ZONE z.zone)"
        hour_fields = (
            f", {local}::date AS local_date, extract(hour FROM {local})::int AS local_hour,"
            f" extract(isodow FROM {local})::int - 1 AS weekday"
        )
    sums = _sums_sql()
    zones = (
        "JOIN (SELECT DISTINCT branch_id, zone FROM gen_cells) z USING (branch_id)"
        if when == "hour"
        else ""
    )
    return f"""INSERT INTO {table} ({_insert_columns(when)})
SELECT s.*{hour_fields}, coalesce(w.hist, '{{}}'), coalesce(v.hist, '{{}}')
FROM (SELECT {keys}, min(agency_id) AS agency_id, {sums} FROM visit_facts GROUP BY {keys}) s
{zones}
LEFT JOIN ({_histogram("wait_s", keys)}) w USING ({keys})
LEFT JOIN ({_histogram("service_s", keys)}) v USING ({keys})
ORDER BY s.{when}"""


def _sum_names() -> list[str]:
    return [part.rsplit(" AS ", 1)[1] for part in _split_sums()]


def _split_sums() -> list[str]:
    """The `name` of each `sql AS name` of the sums (split where a column ends)."""
    sums = _sums_sql()
    out, depth, start = [], 0, 0
    for index, char in enumerate(sums):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            out.append(sums[start:index].strip())
            start = index + 1
    out.append(sums[start:].strip())
    return out


def _insert_columns(when: str) -> str:
    hour_fields = ["local_date", "local_hour", "weekday"] if when == "hour" else []
    keys = ["branch_id", "service_id", "priority", "channel", when, "agency_id"]
    return ", ".join([*keys, *_sum_names(), *hour_fields, "wait_hist", "service_hist"])


def _merged_histogram(name: str, keys: str, source: str, when: str) -> str:
    keyed = _keyed(keys, when)
    return f"""SELECT {keys},
        '{{' || string_agg(format('"%s": %s', bucket, n), ', ' ORDER BY bucket) || '}}' AS hist
    FROM (SELECT {keyed}, key::int AS bucket, sum(value::bigint) AS n
          FROM {source}, json_each_text({source}.{name}::json)
          GROUP BY {", ".join(str(n) for n in range(1, len(keys.split(",")) + 2))}) b
    GROUP BY {keys}"""


def _keyed(keys: str, when: str) -> str:
    """The key columns, the date as `when` makes it (a month: `MONTH`)."""
    return ", ".join(
        f"{when} AS local_date" if key == "local_date" else key
        for key in (part.strip() for part in keys.split(","))
    )


def _days_summed(
    table: str, keys: str, agency: bool, source: str = "visit_days", when: str = "local_date"
) -> str:
    """The rows of `source` added up by `keys` (the date made by `when`): numbers summed
    (maxima: the largest), histograms merged bucket by bucket (as the projector's deltas add
    them)."""
    names = _sum_names()
    sums = ", ".join(f"{'max' if n.endswith('_max_ms') else 'sum'}({n}) AS {n}" for n in names)
    agency_column = ", agency_id" if agency else ""
    agency_sum = ", min(agency_id)" if agency else ""
    positions = ", ".join(str(n) for n in range(1, len(keys.split(",")) + 1))
    return f"""INSERT INTO {table} ({keys}{agency_column}, {", ".join(names)},
    wait_hist, service_hist)
SELECT s.*, coalesce(w.hist, '{{}}'), coalesce(v.hist, '{{}}')
FROM (SELECT {_keyed(keys, when)}{agency_sum}, {sums} FROM {source} GROUP BY {positions}) s
LEFT JOIN ({_merged_histogram("wait_hist", keys, source, when)}) w USING ({keys})
LEFT JOIN ({_merged_histogram("service_hist", keys, source, when)}) v USING ({keys})
ORDER BY s.local_date"""


_GROUP_KEYS = "branch_id, service_id, priority, channel, local_date"
_NETWORK_KEYS = "service_id, priority, channel, local_date"
_NETWORK_DAYS = _days_summed("network_days", _NETWORK_KEYS, True)
_BRANCH_DAYS = _days_summed("branch_days", "branch_id, local_date", False)
_AGENCY_DAYS = _days_summed("agency_days", "branch_id, agency_id, local_date", False)
_SERVICE_KEYS, _CLASS_KEYS = (
    "branch_id, service_id, local_date",
    "branch_id, priority, channel, local_date",
)
_GROUP_DAYS = [  # migration 0021's tables
    _days_summed("service_days", _SERVICE_KEYS, True),
    _days_summed("class_days", _CLASS_KEYS, False),
    _days_summed("service_months", _SERVICE_KEYS, True, "service_days", MONTH),
    _days_summed("class_months", _CLASS_KEYS, False, "class_days", MONTH),
    _days_summed("service_weeks", _SERVICE_KEYS, True, "service_days", WEEK),  # migration 0022
    _days_summed("class_weeks", _CLASS_KEYS, False, "class_days", WEEK),
]
_MONTHS = [
    _days_summed("visit_months", _GROUP_KEYS, True, "visit_days", MONTH),
    _days_summed("network_months", _NETWORK_KEYS, True, "network_days", MONTH),
    _days_summed("branch_months", "branch_id, local_date", False, "branch_days", MONTH),
    _days_summed("agency_months", "branch_id, agency_id, local_date", False, "agency_days", MONTH),
    _days_summed("network_weeks", _NETWORK_KEYS, True, "network_days", WEEK),  # migration 0022
    _days_summed("branch_weeks", "branch_id, local_date", False, "branch_days", WEEK),
    _days_summed("agency_weeks", "branch_id, agency_id, local_date", False, "agency_days", WEEK),
]

# A model of counter time: per counter, operator and hour of the call, the call-to-finish time
# of its visits serving (at most the hour), the rest of the hour idle.
_COUNTER_TIME = """INSERT INTO counter_time (branch_id, counter_id, operator, hour, local_date,
    local_hour, weekday, serving_ms, idle_ms, paused_ms, closed_ms)
SELECT t.branch_id, t.counter_id, t.operator, t.hour, (t.hour AT TIME ZONE z.zone)::date,
    extract(hour FROM t.hour AT TIME ZONE z.zone)::int,
    extract(isodow FROM t.hour AT TIME ZONE z.zone)::int - 1,
    least(t.serving, 3600000), 3600000 - least(t.serving, 3600000), 0, 0
FROM (SELECT branch_id, counter_id, operator, date_trunc('hour', called_at, 'UTC') AS hour,
        sum(extract(epoch FROM finished_at - called_at) * 1000)::bigint AS serving
      FROM visit_facts WHERE called_at IS NOT NULL GROUP BY 1, 2, 3, 4) t
JOIN (SELECT DISTINCT branch_id, zone FROM gen_cells) z USING (branch_id) ORDER BY t.hour"""
