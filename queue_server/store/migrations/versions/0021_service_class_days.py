"""Each branch's sums per service over its priority classes and channels (`service_days`,
`service_months`) and per priority class and channel over its services (`class_days`,
`class_months`): a region's report by service and a report of one service or one class over
every branch by branch read a row per branch, group and month, not one per service × class ×
channel × month. Filled here from the daily rows, a branch at a time (all four tables from one
read of its days); the projector keeps them from then on (store/reports/group_rollups.py).
And counter time per ISO week (`counter_weeks`, dated by the week's Monday): a period's
ragged ends read their whole weeks there, not a row per counter and day.

Revision ID: 0021
Revises: 0020
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
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
GROUPS: dict[str, tuple[list[tuple[str, Any]], list[list[str]]]] = {
    # table → its key before the date, and its indexes (besides the key)
    "service": (
        [("service_id", NAME)],
        [["branch_id", "local_date"], ["service_id", "local_date"]],
    ),
    "class": ([("priority", CLASS), ("channel", CLASS)], [["priority", "channel", "local_date"]]),
}
PERIODS = ("days", "months")
INSERTED_AT_ONCE = 1000


def upgrade() -> None:
    conn = op.get_bind()
    tables = {}
    for group, (key, indexes) in GROUPS.items():
        for period in PERIODS:
            name = f"{group}_{period}"
            tables[name] = op.create_table(
                name,
                sa.Column("branch_id", NAME, primary_key=True),
                *(sa.Column(column, kind, primary_key=True) for column, kind in key),
                sa.Column("local_date", sa.Date, primary_key=True),
                *([sa.Column("agency_id", NAME, nullable=False)] if group == "service" else []),
                *_sum_columns(),
            )
            for columns in indexes:
                op.create_index(f"ix_{name}_{_short(columns)}", name, columns)
    _fill(conn, tables)
    op.create_table(
        "counter_weeks",
        *(sa.Column(n, NAME, primary_key=True) for n in ("branch_id", "counter_id", "operator")),
        sa.Column("local_date", sa.Date, primary_key=True),
        *(sa.Column(n, sa.BigInteger, nullable=False) for n in SPENT),
    )
    op.create_index("ix_counter_weeks_date", "counter_weeks", ["local_date"])
    _fill_counter_weeks(conn)


def _fill_counter_weeks(conn: sa.Connection) -> None:
    """Counter time per ISO week (dated by its Monday) from the days, in SQL."""
    key = ["branch_id", "counter_id", "operator"]
    days = sa.table("counter_days", *(sa.column(n) for n in [*key, "local_date", *SPENT]))
    monday: Any = (
        sa.func.date(days.c.local_date, "weekday 0", "-6 days")
        if conn.dialect.name == "sqlite"
        else sa.cast(sa.func.date_trunc("week", days.c.local_date), sa.Date)
    )
    summed = sa.select(*(days.c[n] for n in key), monday, *(sa.func.sum(days.c[n]) for n in SPENT))
    weeks = sa.table("counter_weeks", *(sa.column(n) for n in [*key, "local_date", *SPENT]))
    conn.execute(
        sa.insert(weeks).from_select(
            [*key, "local_date", *SPENT], summed.group_by(*(days.c[n] for n in key), monday)
        )
    )


def _short(columns: list[str]) -> str:
    """An index's name part: `branch_date`, `service_date`, `class_date`."""
    first = columns[0].removesuffix("_id")
    return f"{'class' if first == 'priority' else first}_date"


def _sum_columns() -> list[sa.Column[Any]]:
    return [
        *(sa.Column(n, sa.Integer, nullable=False) for n in INTS[:-2]),
        *(sa.Column(n, sa.Integer, nullable=False, server_default="0") for n in INTS[-2:]),
        *(sa.Column(n, sa.BigInteger, nullable=False) for n in BIGS),
        *(sa.Column(n, sa.Text, nullable=False) for n in HISTOGRAMS),
    ]


def _fill(conn: sa.Connection, tables: dict[str, sa.Table]) -> None:
    """A branch's daily rows read once, added up into its days per service and per class, and
    those into their months: numbers summed (maxima: the largest), histograms merged bucket by
    bucket."""
    names = ["branch_id", "service_id", "agency_id", "priority", "channel", "local_date"]
    names += [*INTS, *BIGS, *HISTOGRAMS]
    kinds = {c.name: c.type for name in ("service_days", "class_days") for c in tables[name].c}
    days = sa.table("visit_days", *(sa.column(n, kinds[n]) for n in names))
    branches = list(conn.execute(sa.select(days.c.branch_id).distinct()).scalars())
    for branch in branches:
        made: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {name: {} for name in tables}
        for values in conn.execute(
            sa.select(*(days.c[n] for n in names)).where(days.c.branch_id == branch)
        ).mappings():
            parsed = {n: json.loads(values[n]) for n in HISTOGRAMS}
            for group in GROUPS:
                _add_into(made[f"{group}_days"], group, values, values["local_date"], parsed)
        for group in GROUPS:
            for day in made[f"{group}_days"].values():
                month = day["local_date"].replace(day=1)
                _add_into(made[f"{group}_months"], group, day, month, day)
        for name, rows in made.items():
            finished = [_finished(row) for row in rows.values()]
            for start in range(0, len(finished), INSERTED_AT_ONCE):
                conn.execute(tables[name].insert(), finished[start : start + INSERTED_AT_ONCE])


def _add_into(
    made: dict[tuple[Any, ...], dict[str, Any]],
    group: str,
    values: Any,
    when: Any,
    histograms: Any,
) -> None:
    """Add a row's sums (its `histograms` as {bucket: count}) to the group's row of `when`."""
    columns = ["branch_id", *(column for column, _ in GROUPS[group][0])]
    at = (*(values[n] for n in columns), when)
    row = made.get(at)
    if row is None:
        row = made[at] = dict(zip([*columns, "local_date"], at, strict=True))
        if group == "service":
            row["agency_id"] = values["agency_id"]
        row |= {n: 0 for n in INTS + BIGS} | {n: {} for n in HISTOGRAMS}
    for n in INTS + BIGS:
        row[n] = max(row[n], values[n]) if n.endswith("_max_ms") else row[n] + values[n]
    for n in HISTOGRAMS:
        for bucket, count in histograms[n].items():
            if merged := row[n].get(int(bucket), 0) + count:
                row[n][int(bucket)] = merged
            else:
                row[n].pop(int(bucket), None)


def _finished(row: dict[str, Any]) -> dict[str, Any]:
    for n in HISTOGRAMS:
        row[n] = json.dumps(row[n], sort_keys=True)
    return row


def downgrade() -> None:
    op.drop_index("ix_counter_weeks_date", "counter_weeks")
    op.drop_table("counter_weeks")
    for group, (_, indexes) in GROUPS.items():
        for period in PERIODS:
            name = f"{group}_{period}"
            for columns in indexes:
                op.drop_index(f"ix_{name}_{_short(columns)}", name)
            op.drop_table(name)
