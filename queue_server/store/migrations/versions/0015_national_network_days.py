"""Daily sums across the network: `network_days`, the branches' daily rollups added up, so that
a report over every branch reads a few hundred rows a day instead of one per branch and day.
Filled here from `visit_days`; the projector keeps it from then on.

Revision ID: 0015
Revises: 0014
"""

import json
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

NAME = sa.String(64)
INTS = ["visits", "served", "not_served", "referred", "no_show", "cancelled", "transferred",
        "open", "waited", "within_target", "serviced", "recalls", "estimated"]  # fmt: skip
BIGS = ["wait_sum_ms", "wait_max_ms", "service_sum_ms", "service_max_ms",
        "estimate_error_sum_ms", "estimate_abs_error_sum_ms"]  # fmt: skip
HISTOGRAMS = ["wait_hist", "service_hist"]
KEY = ["service_id", "priority", "channel", "local_date"]


def upgrade() -> None:
    network_days = op.create_table(
        "network_days",
        sa.Column("service_id", NAME, primary_key=True),
        sa.Column("priority", sa.String(16), primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("local_date", sa.Date, primary_key=True),
        sa.Column("agency_id", NAME, nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False) for name in INTS),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in BIGS),
        *(sa.Column(name, sa.Text, nullable=False) for name in HISTOGRAMS),
    )
    op.create_index("ix_network_days_date", "network_days", ["local_date"])
    _fill(op.get_bind(), network_days)


def _fill(conn: sa.Connection, network_days: sa.Table) -> None:
    """The network's rows from the branches' daily rows: numbers summed (maxima: the largest),
    histograms merged bucket by bucket."""
    names = [*KEY, "agency_id", *INTS, *BIGS, *HISTOGRAMS]
    days = sa.table("visit_days", *(sa.column(n, network_days.c[n].type) for n in names))
    key = [days.c[name] for name in KEY]
    numbers = [
        (sa.func.max if name.endswith("_max_ms") else sa.func.sum)(days.c[name]).label(name)
        for name in [*INTS, *BIGS]
    ]
    rows = {
        tuple(row[:4]): dict(row._mapping)
        for row in conn.execute(
            sa.select(*key, sa.func.max(days.c.agency_id).label("agency_id"), *numbers).group_by(
                *key
            )
        )
    }
    merged: dict[tuple, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    texts = sa.select(*key, *(days.c[name] for name in HISTOGRAMS))
    for row in conn.execute(texts):
        for name in HISTOGRAMS:
            histogram = merged[tuple(row[:4])][name]
            for bucket, count in json.loads(row._mapping[name]).items():
                histogram[bucket] = histogram.get(bucket, 0) + count
    batch = []
    for row_key, sums in rows.items():
        for name in HISTOGRAMS:
            buckets = {int(b): c for b, c in merged[row_key][name].items() if c}
            sums[name] = json.dumps(buckets, sort_keys=True)
        batch.append({name: int(value) if name in INTS or name in BIGS else value
                      for name, value in sums.items()})  # fmt: skip
        if len(batch) >= 1000:
            conn.execute(network_days.insert(), batch)
            batch = []
    if batch:
        conn.execute(network_days.insert(), batch)


def downgrade() -> None:
    op.drop_index("ix_network_days_date", "network_days")
    op.drop_table("network_days")
