"""The two databases a server test runs on: a SQLite file, and the machine's PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import POSTGRES_ENV, need_service, reset_postgres

# A fixture's params: each test that uses it runs on both (PostgreSQL marked, see pyproject).
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def database_for(kind: str, folder: Path) -> str:
    """A new SQLite file in `folder`, or the machine's PostgreSQL emptied (which skips, or fails
    in CI, without it)."""
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{folder / 'rigi.sqlite3'}"
    url = need_service(POSTGRES_ENV, "PostgreSQL")
    reset_postgres(url)
    return url
