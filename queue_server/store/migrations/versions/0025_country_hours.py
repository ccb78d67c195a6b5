"""The arrivals heatmap over every branch without reading every group's hours:

- `country_hours`, `country_hour_months`: visits per branch-local date (month), weekday and hour
  over every branch and every group, for a report that keeps them all (the country's). From
  `network_hours` its 340 days were ~290,000 index entries (~2,700 a day, ~19,000 a month)
  added up into 168 cells; here ~11 rows a day and 84 a month. Filled here from the network's
  hours, added up.
- `network_hours` and `network_hour_months` indexed by service, by agency and by priority class
  and channel first (each holding what the heatmap reads): a report over every branch for some
  of those read the period's every index entry, led by the date, to keep its own.

Revision ID: 0025
Revises: 0024
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

KEY = ["local_date", "weekday", "local_hour"]
COVERED = ["local_date", "weekday", "local_hour", "visits", "service_id", "agency_id", "priority",
           "channel"]  # fmt: skip
SLICES = {"service": ["service_id"], "agency": ["agency_id"], "class": ["priority", "channel"]}
TABLES = (("country_hours", "network_hours", False), ("country_hour_months", "country_hours", True))


def _month(conn: sa.Connection, column: Any) -> Any:
    """The first day of a date's month, in SQL."""
    if conn.dialect.name == "sqlite":
        return sa.func.date(column, "start of month")
    return sa.cast(sa.func.date_trunc("month", column), sa.Date)


def upgrade() -> None:
    conn = op.get_bind()
    for hours in ("network_hours", "network_hour_months"):
        for name, kept in SLICES.items():
            covered = [*kept, *(column for column in COVERED if column not in kept)]
            op.create_index(f"ix_{hours}_{name}", hours, covered)
    for name, source_name, monthly in TABLES:
        op.create_table(
            name,
            sa.Column("local_date", sa.Date, primary_key=True),
            sa.Column("weekday", sa.Integer, primary_key=True),
            sa.Column("local_hour", sa.Integer, primary_key=True),
            sa.Column("visits", sa.Integer, nullable=False),
        )
        source = sa.table(source_name, *(sa.column(n) for n in (*KEY, "visits")))
        target = sa.table(name, *(sa.column(n) for n in (*KEY, "visits")))
        day = _month(conn, source.c.local_date) if monthly else source.c.local_date
        keys = [day, source.c.weekday, source.c.local_hour]
        summed = sa.select(*keys, sa.func.sum(source.c.visits)).group_by(*keys)
        conn.execute(sa.insert(target).from_select([*KEY, "visits"], summed))


def downgrade() -> None:
    for name, _, _ in reversed(TABLES):
        op.drop_table(name)
    for hours in ("network_hours", "network_hour_months"):
        for name in SLICES:
            op.drop_index(f"ix_{hours}_{name}", hours)
