"""The country generator's sums that need no histogram (store/reports/country.py): counter time
per day, month and week, and arrivals per branch-local hour across the network and per branch, each
added up in SQL from the rows the generator has already made, as the projector adds them; each
written in date order, as days pass (country.py)."""

from __future__ import annotations

MONTH = "date_trunc('month', local_date)::date"  # a day's row in a `months_of` table
WEEK = "date_trunc('week', local_date)::date"  # in a table by ISO week: its Monday


def _counter_days(table: str, source: str, when: str) -> str:
    spent = "serving_ms, idle_ms, paused_ms, closed_ms"
    sums = ", ".join(f"sum({name})" for name in spent.split(", "))
    return f"""INSERT INTO {table} (branch_id, counter_id, operator, local_date, {spent})
SELECT branch_id, counter_id, operator, {when}, {sums} FROM {source} GROUP BY 1, 2, 3, 4
ORDER BY 4"""


COUNTER_DAYS = [
    _counter_days("counter_days", "counter_time", "local_date"),
    _counter_days("counter_months", "counter_days", MONTH),
    _counter_days("counter_weeks", "counter_days", WEEK),
]


def _network_hours(table: str, source: str, when: str) -> str:
    keys = "service_id, priority, channel"
    return f"""INSERT INTO {table} ({keys}, local_date, weekday, local_hour, agency_id, visits)
SELECT {keys}, {when}, weekday, local_hour, min(agency_id), sum(visits) FROM {source}
GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 4"""


def _country_hours(table: str, source: str, when: str) -> str:
    return f"""INSERT INTO {table} (local_date, weekday, local_hour, visits)
SELECT {when}, weekday, local_hour, sum(visits) FROM {source} GROUP BY 1, 2, 3 ORDER BY 1"""


# The country's hours over every group (migration 0025 fills them the same way).
COUNTRY_HOURS = [
    ("country_hours", "network_hours", "local_date"),
    ("country_hour_months", "country_hours", MONTH),
]
NETWORK_HOURS = [
    _network_hours("network_hours", "visit_rollups", "local_date"),
    _network_hours("network_hour_months", "network_hours", MONTH),
    """INSERT INTO branch_hours (branch_id, local_date, weekday, local_hour, visits)
SELECT branch_id, local_date, weekday, local_hour, sum(visits) FROM visit_rollups
GROUP BY 1, 2, 3, 4 ORDER BY 2""",
    f"""INSERT INTO branch_hour_months (branch_id, local_date, weekday, local_hour, visits)
SELECT branch_id, {MONTH}, weekday, local_hour, sum(visits) FROM branch_hours
GROUP BY 1, 2, 3, 4 ORDER BY 2""",
    *(_country_hours(table, source, when) for table, source, when in COUNTRY_HOURS),
]
