"""Three reads over the whole network from their indexes alone:

- the longest waits' candidate days of a slice by service or by priority class and channel
  (the daily and monthly rows' branch, date and longest wait, `queries._longest_on_top_days`):
  the country's mid-month 30 days of one class read ~14,000 table pages of `visit_days` for
  its 21 top rows (~130 ms, most of it read from disk);
- the counters' time by date (`queries._counter_time`): the country's ~4,300 counters over
  mid-month 30 days are ~47,000 rows of `counter_days` and `counter_weeks`, each day's rows
  scattered over the table's pages (6,200 pages for them);
- a report's days (`queries._from_rollups`, the sums per day): over every branch from
  `branch_days` (by service or class: `network_days`; by agency: `agency_days`), whose rows
  carry two histogram texts each; 340 days of the country read ~72,000 of them, the table's
  every page.

Revision ID: 0024
Revises: 0023
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

TOPS = ["branch_id", "waited", "wait_max_ms"]
SPENT = ["branch_id", "counter_id", "operator", "serving_ms", "idle_ms", "paused_ms", "closed_ms"]
SLICES = {"service": ["service_id"], "class": ["priority", "channel"]}
SUMMED = ["visits", "served", "not_served", "referred", "no_show", "cancelled", "transferred",
          "open", "waited", "wait_sum_ms", "wait_max_ms", "within_target", "serviced",
          "service_sum_ms", "service_max_ms", "recalls", "estimated", "estimate_error_sum_ms",
          "estimate_abs_error_sum_ms", "ranged", "within_range"]  # fmt: skip
GROUPS = ["service_id", "agency_id", "priority", "channel"]
DAYS = [  # (index, table, columns before; the sums follow after)
    ("ix_branch_days_date", "branch_days", ["local_date"], ["local_date", "branch_id"]),
    ("ix_network_days_date", "network_days", ["local_date"], ["local_date", *GROUPS]),
    ("ix_agency_days_agency_date", "agency_days", ["agency_id", "local_date"],
     ["agency_id", "local_date", "branch_id"]),
]  # fmt: skip


def _indexes() -> list[tuple[str, str, list[str], list[str]]]:
    """(name, table, columns before, columns after) of every index this migration changes."""
    changed = []
    for table in ("visit_days", "visit_months"):
        for slice_name, columns in SLICES.items():
            before = [*columns, "local_date"]
            changed.append((f"ix_{table}_{slice_name}_date", table, before, [*before, *TOPS]))
    for table in ("counter_days", "counter_weeks", "counter_months"):
        changed.append((f"ix_{table}_date", table, ["local_date"], ["local_date", *SPENT]))
    for name, table, before, keys in DAYS:
        changed.append((name, table, before, [*keys, *SUMMED]))
    return changed


def upgrade() -> None:
    for name, table, _, after in _indexes():
        op.drop_index(name, table)
        op.create_index(name, table, after)


def downgrade() -> None:
    for name, table, before, _ in _indexes():
        op.drop_index(name, table)
        op.create_index(name, table, before)
