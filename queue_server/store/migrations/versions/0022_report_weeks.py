"""The network-wide daily tables' twins by ISO week, dated by the week's Monday (like
`counter_weeks` of 0021): `network_weeks`, `branch_weeks`, `agency_weeks`, `service_weeks`,
`class_weeks`. A mid-month period over every branch read every day of its ragged ends (the
country's 30 days: ~40,000 histogram texts to merge); now its whole weeks are a row per key and
week. Filled here by SQL from the days, a few branches at a time: the sums by an `INSERT …
SELECT … GROUP BY`, each histogram by an `UPDATE … FROM` that adds the days' buckets up
(`json_each`) and writes the text as `rollups.rollup_row` does (`json.dumps(…,
sort_keys=True)`: buckets in numeric order, a bucket that sums to 0 left out). The projector
keeps them from then on (`rollups.move_in_periods`).

Revision ID: 0022
Revises: 0021
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
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
# table → its key before the date (a column, its type), another column the key decides, and its
# indexes by name part → columns (as in schema_reports).
TABLES: dict[str, tuple[list[tuple[str, Any]], list[str], dict[str, list[str]]]] = {
    "network": (
        [("service_id", NAME), ("priority", CLASS), ("channel", CLASS)],
        ["agency_id"],
        {"date": ["local_date"]},
    ),
    "branch": ([("branch_id", NAME)], [], {"date": ["local_date"]}),
    "agency": (
        [("branch_id", NAME), ("agency_id", NAME)],
        [],
        {"agency_date": ["agency_id", "local_date"]},
    ),
    "service": (
        [("branch_id", NAME), ("service_id", NAME)],
        ["agency_id"],
        {"branch_date": ["branch_id", "local_date"], "service_date": ["service_id", "local_date"]},
    ),
    "class": (
        [("branch_id", NAME), ("priority", CLASS), ("channel", CLASS)],
        [],
        {"class_date": ["priority", "channel", "local_date"]},
    ),
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for group, (key, decided, indexes) in TABLES.items():
        name = f"{group}_weeks"
        op.create_table(
            name,
            *(sa.Column(column, kind, primary_key=True) for column, kind in key),
            sa.Column("local_date", sa.Date, primary_key=True),
            *(sa.Column(column, NAME, nullable=False) for column in decided),
            *_sum_columns(),
        )
        for part, columns in indexes.items():
            op.create_index(f"ix_{name}_{part}", name, columns)
        _fill(dialect, f"{group}_days", name, [column for column, _ in key], decided)


def _fill(dialect: str, days: str, weeks: str, key: list[str], decided: list[str]) -> None:
    """A table's weeks from its days: sums (maxima: the largest), then each histogram. A few
    values of the key's first column at a time (its index leads with it), so that no statement
    runs long on a big database (the server's statements time out at 10 s)."""
    conn = op.get_bind()
    first = key[0]
    values = sorted(conn.execute(sa.text(f"SELECT DISTINCT {first} FROM {days}")).scalars())
    for start in range(0, len(values), VALUES_AT_ONCE):
        kept = {"kept": values[start : start + VALUES_AT_ONCE]}
        for statement in _statements(dialect, days, weeks, key, decided):
            conn.execute(sa.text(statement).bindparams(sa.bindparam("kept", expanding=True)), kept)


VALUES_AT_ONCE = 8  # branches (or the network's services) a statement fills


def _statements(
    dialect: str, days: str, weeks: str, key: list[str], decided: list[str]
) -> list[str]:
    monday = (
        "date(local_date, 'weekday 0', '-6 days')"
        if dialect == "sqlite"
        else "CAST(date_trunc('week', local_date) AS date)"
    )
    kept = f"{days}.{key[0]} IN :kept"
    grouped = ", ".join([*key, *decided])
    sums = [f"max({n})" if n.endswith("_max_ms") else f"sum({n})" for n in [*INTS, *BIGS]]
    statements = [
        f"INSERT INTO {weeks} ({grouped}, local_date, {', '.join([*INTS, *BIGS, *HISTOGRAMS])}) "
        f"SELECT {grouped}, {monday}, {', '.join(sums)}, '{{}}', '{{}}' "
        f"FROM {days} WHERE {kept} GROUP BY {grouped}, {monday}"
    ]
    matched = " AND ".join(f"{weeks}.{n} = merged.{n}" for n in key)
    keys = ", ".join(key)
    for histogram in HISTOGRAMS:
        if dialect == "sqlite":
            each = f"json_each({days}.{histogram}) AS pair"
            count = "pair.value"
            text = "'{' || group_concat('\"' || bucket || '\": ' || n, ', ') || '}'"
        else:
            each = f"jsonb_each_text(CAST({days}.{histogram} AS jsonb)) AS pair"
            count = "CAST(pair.value AS bigint)"
            text = "'{' || string_agg('\"' || bucket || '\": ' || n, ', ' ORDER BY bucket) || '}'"
        # Ordered by bucket within each key and week: SQLite's group_concat keeps that order.
        statements.append(
            f"UPDATE {weeks} SET {histogram} = merged.text FROM ("
            f"SELECT {keys}, week, {text} AS text FROM ("
            f"SELECT {keys}, {monday} AS week, CAST(pair.key AS integer) AS bucket, "
            f"sum({count}) AS n FROM {days}, {each} WHERE {kept} "
            f"GROUP BY {keys}, {monday}, pair.key "
            f"HAVING sum({count}) <> 0 ORDER BY {keys}, week, bucket) AS summed "
            f"GROUP BY {keys}, week) AS merged "
            f"WHERE {matched} AND {weeks}.local_date = merged.week"
        )
    return statements


def _sum_columns() -> list[sa.Column[Any]]:
    return [
        *(sa.Column(n, sa.Integer, nullable=False) for n in INTS[:-2]),
        *(sa.Column(n, sa.Integer, nullable=False, server_default="0") for n in INTS[-2:]),
        *(sa.Column(n, sa.BigInteger, nullable=False) for n in BIGS),
        *(sa.Column(n, sa.Text, nullable=False) for n in HISTOGRAMS),
    ]


def downgrade() -> None:
    for group, (_, _, indexes) in TABLES.items():
        name = f"{group}_weeks"
        for part in indexes:
            op.drop_index(f"ix_{name}_{part}", name)
        op.drop_table(name)
