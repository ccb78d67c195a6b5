"""Report tables: one fact row per visit, rollups per branch × service × hour, counter time,
and the projector's cursor. All are made from the event log (store/reports/) and can be made
again from it (`queue-server facts rebuild`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from queue_server.store.schema import ID, NAME, UTCDateTime, metadata


def _sum_columns() -> list[Column[Any]]:
    """The sums a rollup row holds (`domain.kpis.Sums`, durations in milliseconds)."""
    return [
        Column("visits", Integer, nullable=False),
        Column("served", Integer, nullable=False),
        Column("not_served", Integer, nullable=False),
        Column("referred", Integer, nullable=False),
        Column("no_show", Integer, nullable=False),
        Column("cancelled", Integer, nullable=False),
        Column("transferred", Integer, nullable=False),
        Column("open", Integer, nullable=False),
        Column("waited", Integer, nullable=False),
        Column("wait_sum_ms", BigInteger, nullable=False),
        Column("wait_max_ms", BigInteger, nullable=False),
        Column("within_target", Integer, nullable=False),
        Column("serviced", Integer, nullable=False),
        Column("service_sum_ms", BigInteger, nullable=False),
        Column("service_max_ms", BigInteger, nullable=False),
        Column("recalls", Integer, nullable=False),
        Column("estimated", Integer, nullable=False),
        Column("estimate_error_sum_ms", BigInteger, nullable=False),
        Column("estimate_abs_error_sum_ms", BigInteger, nullable=False),
        Column("ranged", Integer, nullable=False, server_default="0"),  # migration 0016
        Column("within_range", Integer, nullable=False, server_default="0"),
        Column("wait_hist", Text, nullable=False),  # JSON {bucket: count}, see domain/kpis.py
        Column("service_hist", Text, nullable=False),
    ]


_SUMMED = [c.name for c in _sum_columns() if c.name not in ("wait_hist", "service_hist")]
_DAY_SUMS_COVERED = ["service_id", "agency_id", "priority", "channel", *_SUMMED]
_ROLLUP_WEEK = ["local_date", "weekday", "local_hour", "visits"]
_ROLLUP_SLICE = ["service_id", "agency_id", "priority", "channel"]  # what a slice filters by
_HOURS_COVERED = [  # a heatmap's period read from the index alone
    "local_date",
    "weekday",
    "local_hour",
    "visits",
    "service_id",
    "agency_id",
    "priority",
    "channel",
]
# A report over every branch for some services, agencies or classes reads the network's hours
# of those only (migration 0025): led by the date, the index read every group's hours of the
# period and kept the slice's (a class's 340 days: all ~290,000 entries for ~1 in 8).
HOUR_SLICES = {"service": ["service_id"], "agency": ["agency_id"], "class": ["priority", "channel"]}


def _hours_by_slice(table: str) -> list[Index]:
    return [
        Index(f"ix_{table}_{name}", *kept, *(c for c in _HOURS_COVERED if c not in kept))
        for name, kept in HOUR_SLICES.items()
    ]


_COUNTER_TIME_COVERED = [
    "counter_id",
    "operator",
    "serving_ms",
    "idle_ms",
    "paused_ms",
    "closed_ms",
]

# The longest waits' candidate rows of a slice by service or by class (migration 0024).
_TOPS_COVERED = ["local_date", "branch_id", "waited", "wait_max_ms"]
# A period's counter time over every branch, from the date index alone (migration 0024).
_SPENT_COVERED = ["local_date", "branch_id", *_COUNTER_TIME_COVERED]

_SLICE_COVERED = [  # a report by counter or operator: its visits' sums from the index alone
    "local_date",
    "service_id",
    "hour",
    "outcome",
    "wait_s",
    "service_s",
    "recalls",
    "target_wait_s",
    "wait_estimate_s",
    "wait_p90_s",
]

LABEL = String(8)
ACTOR = NAME  # who acted, as the audit log names them: `operator:nino`

visit_facts = Table(
    "visit_facts",
    metadata,
    Column("ticket_id", ID, primary_key=True),
    Column("branch_id", NAME, nullable=False),
    Column("service_id", NAME, nullable=False),
    Column("agency_id", NAME, nullable=False),
    Column("priority", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("label", LABEL, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),  # when this visit joined the queue
    Column("hour", UTCDateTime, nullable=False),  # the UTC hour it joined: its rollup row
    Column("local_date", Date, nullable=False),  # the branch's calendar day it joined
    Column("called_at", UTCDateTime),  # the call that the visit ended after
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),  # ended: finished, no-show, transferred or cancelled
    Column("counter_id", NAME),
    Column("operator", ACTOR),  # who called it, then who finished it
    Column("outcome", String(16)),  # None while open
    Column("wait_s", Float),
    Column("service_s", Float),
    Column("recalls", Integer, nullable=False),
    Column("target_wait_s", Float, nullable=False),
    Column("wait_estimate_s", Float),
    Column("wait_p90_s", Float),  # the range's upper end promised at issue (migration 0016)
    Index("ix_visit_facts_branch_date", "branch_id", "local_date", "wait_s"),  # longest.py
    Index("ix_visit_facts_branch_hour", "branch_id", "hour"),
    Index("ix_visit_facts_branch_wait", "branch_id", "wait_s"),  # the longest waits
    # The longest waits of one service (migration 0011).
    Index("ix_visit_facts_branch_service_wait", "branch_id", "service_id", "wait_s"),
    # A report by counter or operator reads the facts (migration 0020): its own visits only,
    # from the index alone (migration 0023: what it counts of them is in the index).
    Index("ix_visit_facts_branch_counter_date", "branch_id", "counter_id", *_SLICE_COVERED),
    Index("ix_visit_facts_branch_operator_date", "branch_id", "operator", *_SLICE_COVERED),
)

# Sums of the facts of one branch, service, priority class, channel and UTC hour; a row is made
# again from its facts whenever one of them changes (so it always equals them).
visit_rollups = Table(
    "visit_rollups",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("service_id", NAME, primary_key=True),
    Column("priority", String(16), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("hour", UTCDateTime, primary_key=True),
    Column("agency_id", NAME, nullable=False),
    Column("local_date", Date, nullable=False),
    Column("local_hour", Integer, nullable=False),
    Column("weekday", Integer, nullable=False),  # 0 = Monday, in the branch's time zone
    *_sum_columns(),
    # Covering the arrivals heatmap (migration 0011): a year of it reads the index only.
    Index("ix_visit_rollups_branch_week", "branch_id", *_ROLLUP_WEEK, *_ROLLUP_SLICE),
    Index("ix_visit_rollups_week", *_ROLLUP_WEEK, "branch_id", *_ROLLUP_SLICE),
)

# The same sums per branch-local day (no hour): what reports over long periods read.
visit_days = Table(
    "visit_days",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("service_id", NAME, primary_key=True),
    Column("priority", String(16), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("local_date", Date, primary_key=True),
    Column("agency_id", NAME, nullable=False),
    *_sum_columns(),
    Index("ix_visit_days_date", "local_date"),
    # Every column a branch's report sums: its year reads the index, not the histogram texts.
    Index("ix_visit_days_branch_sums", "branch_id", "local_date", *_DAY_SUMS_COVERED),
    # A report over every branch by service, or by priority class and channel, reads the days
    # of those only (migration 0020): a month of a service is 3% of the country's rows; its
    # longest waits' candidate days from the index alone (migration 0024).
    Index("ix_visit_days_service_date", "service_id", *_TOPS_COVERED),
    Index("ix_visit_days_class_date", "priority", "channel", *_TOPS_COVERED),
)

# The same daily sums across the network (no branch, migration 0015): a report over every branch
# reads these, a few hundred rows a day for the whole country, not one per branch and day.
network_days = Table(
    "network_days",
    metadata,
    Column("service_id", NAME, primary_key=True),
    Column("priority", String(16), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("local_date", Date, primary_key=True),
    Column("agency_id", NAME, nullable=False),
    *_sum_columns(),
    # A report's days over every branch, by service or class: their sums from the index alone
    # (migration 0024; 340 days are ~100,000 rows, each with two histogram texts).
    Index("ix_network_days_date", "local_date", *_DAY_SUMS_COVERED),
)

# The same daily sums per branch over all its services, priority classes and channels (migration
# 0019): a report over many branches reads these for each branch's figures, one row per branch
# and day (the country's year: ~77,000), where `visit_days` holds one per service and group too.
branch_days = Table(
    "branch_days",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("local_date", Date, primary_key=True),
    *_sum_columns(),
    # A report's days over many branches (migration 0024: their sums from the index alone).
    Index("ix_branch_days_date", "local_date", "branch_id", *_SUMMED),
)


def months_of(days: Table, name: str, *indexes: Index) -> Table:
    """A daily table's twin by month (migration 0020; or by week): the same columns,
    `local_date` the month's first day (or the week's Monday), each row the sum of its daily
    rows. A long period reads its whole months here and only its ragged ends from the days: a
    year is 12 rows per key, not 365 (queries.periods)."""
    return Table(name, metadata, *(column._copy() for column in days.columns), *indexes)


visit_months = months_of(
    visit_days,
    "visit_months",
    Index("ix_visit_months_date", "local_date"),
    Index("ix_visit_months_service_date", "service_id", *_TOPS_COVERED),
    Index("ix_visit_months_class_date", "priority", "channel", *_TOPS_COVERED),
)
branch_months = months_of(
    branch_days, "branch_months", Index("ix_branch_months_date", "local_date")
)
network_months = months_of(
    network_days, "network_months", Index("ix_network_months_date", "local_date")
)

# Arrivals across the network per service, priority class, channel and branch-local hour of
# a day (migration 0020): the heatmap of a report over every branch reads these (and whole
# months from `network_hour_months`, by weekday), not every branch's hourly rows. The weekday
# is the date's, in the key so that the twin by month keeps it.
network_hours = Table(
    "network_hours",
    metadata,
    Column("service_id", NAME, primary_key=True),
    Column("priority", String(16), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("local_date", Date, primary_key=True),
    Column("weekday", Integer, primary_key=True),
    Column("local_hour", Integer, primary_key=True),
    Column("agency_id", NAME, nullable=False),
    Column("visits", Integer, nullable=False),
    Index("ix_network_hours_date", *_HOURS_COVERED),
    *_hours_by_slice("network_hours"),
)
network_hour_months = months_of(
    network_hours,
    "network_hour_months",
    Index("ix_network_hour_months_date", *_HOURS_COVERED),
    *_hours_by_slice("network_hour_months"),
)

# Arrivals across every branch and every group per branch-local hour of a day (migration 0025):
# the heatmap of a report that keeps them all (the country's) reads ~11 rows a day and 84 a
# month here, where `network_hours` holds ~2,700 a day and ~19,000 a month (340 days: ~290,000
# index entries read for 168 cells). Moved with the network's hours, by the same deltas.
country_hours = Table(
    "country_hours",
    metadata,
    Column("local_date", Date, primary_key=True),
    Column("weekday", Integer, primary_key=True),
    Column("local_hour", Integer, primary_key=True),
    Column("visits", Integer, nullable=False),
)
country_hour_months = months_of(country_hours, "country_hour_months")

# The same daily sums per branch and agency (migration 0020): a report over every branch for one
# agency reads each branch's figures here, one row per branch, agency and day (an agency's
# rows in `visit_days` are one per service, class and channel too).
agency_days = Table(
    "agency_days",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("agency_id", NAME, primary_key=True),
    Column("local_date", Date, primary_key=True),
    *_sum_columns(),
    Index("ix_agency_days_agency_date", "agency_id", "local_date", "branch_id", *_SUMMED),
)
agency_months = months_of(
    agency_days, "agency_months", Index("ix_agency_months_agency_date", "agency_id", "local_date")
)

# Arrivals per branch and branch-local hour over all its groups (migration 0020): the heatmap
# of a report over some branches that keeps every group (a region's year: a row per branch,
# month, weekday and hour in `branch_hour_months`, not its hourly rows per service).
branch_hours = Table(
    "branch_hours",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("local_date", Date, primary_key=True),
    Column("weekday", Integer, primary_key=True),
    Column("local_hour", Integer, primary_key=True),
    Column("visits", Integer, nullable=False),
)
branch_hour_months = months_of(branch_hours, "branch_hour_months")

# The daily sums per branch and service over its priority classes and channels, and per branch,
# priority class and channel over its services (migration 0021): a region's report by service,
# and a report over every branch of one service or of one class by branch, read a row per
# branch, group and day (a year: per month), not one per service × class × channel too.
service_days = Table(
    "service_days",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("service_id", NAME, primary_key=True),
    Column("local_date", Date, primary_key=True),
    Column("agency_id", NAME, nullable=False),
    *_sum_columns(),
    Index("ix_service_days_branch_date", "branch_id", "local_date"),
    Index("ix_service_days_service_date", "service_id", "local_date"),
)
service_months = months_of(
    service_days,
    "service_months",
    Index("ix_service_months_branch_date", "branch_id", "local_date"),
    Index("ix_service_months_service_date", "service_id", "local_date"),
)
class_days = Table(
    "class_days",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("priority", String(16), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("local_date", Date, primary_key=True),
    *_sum_columns(),
    Index("ix_class_days_class_date", "priority", "channel", "local_date"),
)
class_months = months_of(
    class_days,
    "class_months",
    Index("ix_class_months_class_date", "priority", "channel", "local_date"),
)

# Milliseconds (integers: the same sums whatever the batches) per counter, operator and hour.
counter_time = Table(
    "counter_time",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("counter_id", NAME, primary_key=True),
    Column("operator", ACTOR, primary_key=True),  # "" while closed
    Column("hour", UTCDateTime, primary_key=True),
    Column("local_date", Date, nullable=False),
    Column("local_hour", Integer, nullable=False),
    Column("weekday", Integer, nullable=False),
    Column("serving_ms", BigInteger, nullable=False),
    Column("idle_ms", BigInteger, nullable=False),
    Column("paused_ms", BigInteger, nullable=False),
    Column("closed_ms", BigInteger, nullable=False),
    # Covering what reports sum (migration 0011).
    Index("ix_counter_time_branch_date", "branch_id", "local_date", *_COUNTER_TIME_COVERED),
)

# The same per counter, operator and branch-local day (migration 0020): a long report's
# utilisation reads a row per counter and day (and per month in `counter_months`), not per hour.
counter_days = Table(
    "counter_days",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("counter_id", NAME, primary_key=True),
    Column("operator", ACTOR, primary_key=True),
    Column("local_date", Date, primary_key=True),
    Column("serving_ms", BigInteger, nullable=False),
    Column("idle_ms", BigInteger, nullable=False),
    Column("paused_ms", BigInteger, nullable=False),
    Column("closed_ms", BigInteger, nullable=False),
    Index("ix_counter_days_date", *_SPENT_COVERED),  # migration 0024
)
counter_months = months_of(
    counter_days, "counter_months", Index("ix_counter_months_date", *_SPENT_COVERED)
)
# Its twin by ISO week (migration 0021), `local_date` the week's Monday: a period's ragged ends
# read their whole weeks here (queries.periods), not a row per counter and day (the country's
# mid-month 30 days: four weeks and a few days of its ~4,300 counters, not thirty days).
counter_weeks = months_of(
    counter_days, "counter_weeks", Index("ix_counter_weeks_date", *_SPENT_COVERED)
)

# The network-wide daily tables' twins by ISO week (migration 0022), `local_date` the week's
# Monday: a mid-month period over every branch reads its whole weeks here and only its few
# ragged days from the daily tables (the country's 30 days: four weeks and two days, not thirty
# days of histogram texts).
network_weeks = months_of(
    network_days, "network_weeks", Index("ix_network_weeks_date", "local_date")
)
branch_weeks = months_of(branch_days, "branch_weeks", Index("ix_branch_weeks_date", "local_date"))
agency_weeks = months_of(
    agency_days, "agency_weeks", Index("ix_agency_weeks_agency_date", "agency_id", "local_date")
)
service_weeks = months_of(
    service_days,
    "service_weeks",
    Index("ix_service_weeks_branch_date", "branch_id", "local_date"),
    Index("ix_service_weeks_service_date", "service_id", "local_date"),
)
class_weeks = months_of(
    class_days,
    "class_weeks",
    Index("ix_class_weeks_class_date", "priority", "channel", "local_date"),
)

# Where each counter stands in the projection: its state since when, and who holds it.
counter_clocks = Table(
    "counter_clocks",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("counter_id", NAME, primary_key=True),
    Column("state", String(16), nullable=False),  # open | paused | closed
    Column("busy", Boolean, nullable=False),  # a visit in hand
    Column("operator", ACTOR, nullable=False),
    Column("since", UTCDateTime, nullable=False),
)

# How far the projector has applied each branch's events; written in the same transaction as
# the facts those events made, so nothing is lost or counted twice.
report_cursors = Table(
    "report_cursors",
    metadata,
    Column("branch_id", NAME, primary_key=True),
    Column("epoch", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

REPORT_TABLES = (
    visit_facts,
    visit_rollups,
    visit_days,
    visit_months,
    branch_days,
    branch_months,
    agency_days,
    agency_months,
    service_days,
    service_months,
    service_weeks,
    class_days,
    class_months,
    class_weeks,
    branch_hours,
    branch_hour_months,
    counter_time,
    counter_days,
    counter_months,
    counter_weeks,
    counter_clocks,
    report_cursors,
)

# A branch's own rows, forgotten before a rebuild makes them again (projector.reset_branch).
BRANCH_ROWS = (
    visit_facts,
    visit_rollups,
    visit_days,
    visit_months,
    counter_time,
    counter_days,
    counter_months,
    counter_weeks,
    counter_clocks,
    branch_hours,
    branch_hour_months,
    service_days,
    service_months,
    service_weeks,
    class_days,
    class_months,
    class_weeks,
)
