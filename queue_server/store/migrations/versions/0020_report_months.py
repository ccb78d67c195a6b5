"""Reports over long periods read months: `visit_months`, `branch_months` and `network_months`
(the daily rollups added up per month, `local_date` the month's first day), counter time per day
(`counter_days`) and per month (`counter_months`), the network's arrivals per local hour
(`network_hours`, `network_hour_months`) and per branch (`branch_hours`, `branch_hour_months`),
each branch's days and months per agency
(`agency_days`, `agency_months`), two fact indexes for reports by counter or operator,
and two on the daily and monthly rows for reports over every branch by service or by class. A
country's year was millions of daily and hourly rows; by month it is thousands. Filled here from
the daily rows and the hourly counter time; the projector keeps them from then on
(store/reports/rollups.py).

Revision ID: 0020
Revises: 0019
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

NAME = sa.String(64)
CLASS = sa.String(16)
INTS = ["visits", "served", "not_served", "referred", "no_show", "cancelled", "transferred",
        "open", "waited", "within_target", "serviced", "recalls", "estimated", "ranged",
        "within_range"]  # fmt: skip
BIGS = ["wait_sum_ms", "wait_max_ms", "service_sum_ms", "service_max_ms",
        "estimate_error_sum_ms", "estimate_abs_error_sum_ms"]  # fmt: skip
HISTOGRAMS = ["wait_hist", "service_hist"]
SPENT = ["serving_ms", "idle_ms", "paused_ms", "closed_ms"]
GROUP = [("service_id", NAME), ("priority", CLASS), ("channel", CLASS)]
MONTHS = {  # the twin, its daily table, the key before the date, whether it names an agency
    "visit_months": ("visit_days", [("branch_id", NAME), *GROUP], True),
    "branch_months": ("branch_days", [("branch_id", NAME)], False),
    "network_months": ("network_days", GROUP, True),
}
COUNTER_KEY = [("branch_id", NAME), ("counter_id", NAME), ("operator", NAME)]
HOUR_KEY: list[tuple[str, Any]] = [
    *GROUP,
    ("local_date", sa.Date),
    ("weekday", sa.Integer),
    ("local_hour", sa.Integer),
]
BRANCH_HOUR_KEY: list[tuple[str, Any]] = [
    ("branch_id", NAME), ("local_date", sa.Date), ("weekday", sa.Integer),
    ("local_hour", sa.Integer),
]  # fmt: skip
HOURS_COVERED = ["local_date", "weekday", "local_hour", "visits", "service_id", "agency_id",
                 "priority", "channel"]  # fmt: skip


def upgrade() -> None:
    conn = op.get_bind()
    for name, (days, key, agency) in MONTHS.items():
        table = op.create_table(
            name,
            *(sa.Column(column, kind, primary_key=True) for column, kind in key),
            sa.Column("local_date", sa.Date, primary_key=True),
            *([sa.Column("agency_id", NAME, nullable=False)] if agency else []),
            *_sum_columns(),
        )
        op.create_index(f"ix_{name}_date", name, ["local_date"])
        _fill_months(conn, days, table, [column for column, _ in key], agency)
    by_agency = {}
    for name in ("agency_days", "agency_months"):
        by_agency[name] = op.create_table(
            name,
            sa.Column("branch_id", NAME, primary_key=True),
            sa.Column("agency_id", NAME, primary_key=True),
            sa.Column("local_date", sa.Date, primary_key=True),
            *_sum_columns(),
        )
        op.create_index(f"ix_{name}_agency_date", name, ["agency_id", "local_date"])
    _fill_agency_days(conn, by_agency["agency_days"])
    _fill_months(conn, "agency_days", by_agency["agency_months"], ["branch_id", "agency_id"], False)
    for name in ("counter_days", "counter_months"):
        op.create_table(
            name,
            *(sa.Column(column, kind, primary_key=True) for column, kind in COUNTER_KEY),
            sa.Column("local_date", sa.Date, primary_key=True),
            *(sa.Column(n, sa.BigInteger, nullable=False) for n in SPENT),
        )
        op.create_index(f"ix_{name}_date", name, ["local_date"])
    _fill_counters(conn)
    for name in ("network_hours", "network_hour_months"):
        op.create_table(
            name,
            *(sa.Column(column, kind, primary_key=True) for column, kind in HOUR_KEY),
            sa.Column("agency_id", NAME, nullable=False),
            sa.Column("visits", sa.Integer, nullable=False),
        )
        op.create_index(f"ix_{name}_date", name, HOURS_COVERED)
    _fill_hours(conn)
    for name in ("branch_hours", "branch_hour_months"):
        op.create_table(
            name,
            *(sa.Column(column, kind, primary_key=True) for column, kind in BRANCH_HOUR_KEY),
            sa.Column("visits", sa.Integer, nullable=False),
        )
    hour_key = [n for n, _ in BRANCH_HOUR_KEY]
    visits = [("visits", sa.func.sum)]
    _add_up(conn, hour_key, visits, "visit_rollups", "branch_hours", monthly=False)
    _add_up(conn, hour_key, visits, "branch_hours", "branch_hour_months", monthly=True)
    for rows in ("visit_days", "visit_months"):
        op.create_index(f"ix_{rows}_service_date", rows, ["service_id", "local_date"])
        op.create_index(f"ix_{rows}_class_date", rows, ["priority", "channel", "local_date"])
    op.create_index(
        "ix_visit_facts_branch_counter_date",
        "visit_facts",
        ["branch_id", "counter_id", "local_date"],
    )
    op.create_index(
        "ix_visit_facts_branch_operator_date",
        "visit_facts",
        ["branch_id", "operator", "local_date"],
    )


def _sum_columns() -> list[sa.Column[Any]]:
    return [
        *(sa.Column(n, sa.Integer, nullable=False) for n in INTS[:-2]),
        *(sa.Column(n, sa.Integer, nullable=False, server_default="0") for n in INTS[-2:]),
        *(sa.Column(n, sa.BigInteger, nullable=False) for n in BIGS),
        *(sa.Column(n, sa.Text, nullable=False) for n in HISTOGRAMS),
    ]


def _fill_agency_days(conn: sa.Connection, agency_days: sa.Table) -> None:
    """Each branch's days per agency from its daily rows, a branch at a time."""
    names = ["branch_id", "agency_id", "local_date", *INTS, *BIGS, *HISTOGRAMS]
    days = sa.table("visit_days", *(sa.column(n, agency_days.c[n].type) for n in names))
    branches = list(conn.execute(sa.select(days.c.branch_id).distinct()).scalars())
    for branch in branches:
        made: dict[tuple[Any, ...], dict[str, Any]] = {}
        for values in conn.execute(
            sa.select(*(days.c[n] for n in names)).where(days.c.branch_id == branch)
        ).mappings():
            at = (branch, values["agency_id"], values["local_date"])
            if at not in made:
                made[at] = dict(zip(("branch_id", "agency_id", "local_date"), at, strict=True))
                made[at] |= {n: 0 for n in INTS + BIGS} | {n: {} for n in HISTOGRAMS}
            _add(made[at], values)
        _flush(conn, agency_days, made, keep=None)


def _month(conn: sa.Connection, column: Any) -> Any:
    """The first day of a date's month, in SQL."""
    if conn.dialect.name == "sqlite":
        return sa.func.date(column, "start of month")
    return sa.cast(sa.func.date_trunc("month", column), sa.Date)


def _fill_months(
    conn: sa.Connection, days_name: str, months: sa.Table, key: list[str], agency: bool
) -> None:
    """A month's row from its daily rows: numbers summed (maxima: the largest), histograms
    merged bucket by bucket; the daily rows are read once, in primary key order (key, then
    date), a page at a time (no cursor stays open on the table)."""
    names = [*key, "local_date", *(["agency_id"] if agency else []), *INTS, *BIGS, *HISTOGRAMS]
    days = sa.table(days_name, *(sa.column(n, months.c[n].type) for n in names))
    order = [days.c[n] for n in [*key, "local_date"]]
    months_of: dict[tuple[Any, ...], dict[str, Any]] = {}
    after: tuple[Any, ...] | None = None
    while True:
        query = sa.select(*(days.c[n] for n in names)).order_by(*order).limit(PAGE)
        if after is not None:
            query = query.where(sa.tuple_(*order) > sa.tuple_(*after))
        rows = [row._mapping for row in conn.execute(query)]
        if not rows:
            break
        for values in rows:
            month = values["local_date"].replace(day=1)
            at = (*(values[n] for n in key), month)
            current = months_of.get(at)
            if current is None:
                _flush(conn, months, months_of, keep=at[:-1])
                current = months_of[at] = {n: values[n] for n in key} | {"local_date": month}
                if agency:
                    current["agency_id"] = values["agency_id"]
                current |= {n: 0 for n in INTS + BIGS} | {n: {} for n in HISTOGRAMS}
            _add(current, values)
        after = tuple(rows[-1][n] for n in [*key, "local_date"])
    _flush(conn, months, months_of, keep=None)


PAGE = 20_000  # daily rows read at a time


def _add(month: dict[str, Any], day: Any) -> None:
    for n in INTS + BIGS:
        month[n] = max(month[n], day[n]) if n.endswith("_max_ms") else month[n] + day[n]
    for n in HISTOGRAMS:
        for bucket, count in json.loads(day[n]).items():
            if merged := month[n].get(int(bucket), 0) + count:
                month[n][int(bucket)] = merged
            else:
                month[n].pop(int(bucket), None)


def _flush(
    conn: sa.Connection,
    months: sa.Table,
    pending: dict[tuple[Any, ...], dict[str, Any]],
    keep: tuple[Any, ...] | None,
) -> None:
    """Insert the months made so far, but those of the key being read (`keep`) once many wait."""
    done = [at for at in pending if keep is None or at[:-1] != keep]
    if keep is not None and len(done) < 1000:
        return
    rows = [_finished(pending.pop(at)) for at in done]
    for start in range(0, len(rows), 1000):
        conn.execute(months.insert(), rows[start : start + 1000])


def _finished(row: dict[str, Any]) -> dict[str, Any]:
    for n in HISTOGRAMS:
        row[n] = json.dumps(row[n], sort_keys=True)
    return row


def _fill_counters(conn: sa.Connection) -> None:
    """Counter time per day from the hourly time, per month from the days."""
    key = [*(n for n, _ in COUNTER_KEY), "local_date"]
    sums = [(n, sa.func.sum) for n in SPENT]
    _add_up(conn, key, sums, "counter_time", "counter_days", monthly=False)
    _add_up(conn, key, sums, "counter_days", "counter_months", monthly=True)


def _fill_hours(conn: sa.Connection) -> None:
    """The network's arrivals per branch-local hour from the branches' hourly rows, per month
    from the days."""
    key = [n for n, _ in HOUR_KEY]
    sums = [("agency_id", sa.func.min), ("visits", sa.func.sum)]
    _add_up(conn, key, sums, "visit_rollups", "network_hours", monthly=False)
    _add_up(conn, key, sums, "network_hours", "network_hour_months", monthly=True)


def _add_up(
    conn: sa.Connection,
    key: list[str],
    sums: list[tuple[str, Any]],
    source_name: str,
    target_name: str,
    *,
    monthly: bool,
) -> None:
    """`INSERT … SELECT` of the source's rows added up by `key` (its date, or the date's month)."""
    names = [*key, *(n for n, _ in sums)]
    source = sa.table(source_name, *(sa.column(n) for n in names))
    target = sa.table(target_name, *(sa.column(n) for n in names))
    month = _month(conn, source.c.local_date) if monthly else source.c.local_date
    keys = [month if n == "local_date" else source.c[n] for n in key]
    summed = sa.select(*keys, *(function(source.c[n]) for n, function in sums))
    conn.execute(sa.insert(target).from_select(names, summed.group_by(*keys)))


def downgrade() -> None:
    for rows in ("visit_days", "visit_months"):
        op.drop_index(f"ix_{rows}_class_date", rows)
        op.drop_index(f"ix_{rows}_service_date", rows)
    op.drop_index("ix_visit_facts_branch_operator_date", "visit_facts")
    op.drop_index("ix_visit_facts_branch_counter_date", "visit_facts")
    for name in ("branch_hour_months", "branch_hours"):
        op.drop_table(name)
    for name in ("agency_months", "agency_days"):
        op.drop_index(f"ix_{name}_agency_date", name)
        op.drop_table(name)
    for name in ("network_hour_months", "network_hours", "counter_months", "counter_days", *MONTHS):
        op.drop_index(f"ix_{name}_date", name)
        op.drop_table(name)
