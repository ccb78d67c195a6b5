"""What an organisation edit costs (issue #14): checking the whole shipped organisation (59
services, 86 branches) from its document, and one manager's edit end to end (new version, audit
row, events, swap) on a SQLite file and on PostgreSQL when RIGI_TEST_DATABASE_URL is set.

Edits are rare (a manager's click), so the figures say whether an edit stays well under the
100 ms a page feels as instant; the hot paths read the swapped catalog as before.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from queue_server.catalog.loader import load_catalog
from queue_server.catalog.organisation import catalog_from_document, to_document
from queue_server.organisation.live import Organisation, load_organisation
from queue_server.settings import SHIPPED_CONFIG
from queue_server.store.database import Database
from queue_server.store.migrate import migrate
from queue_server.store.queue import utc_now

CHECKS = 20
EDITS = 30
BRANCH = "tbilisi"


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def check_document() -> tuple[float, float]:
    document = to_document(load_catalog(SHIPPED_CONFIG))
    samples = []
    for _ in range(CHECKS):
        started = time.perf_counter()
        catalog_from_document(document)
        samples.append(time.perf_counter() - started)
    return _percentiles(samples)


async def _edits(url: str) -> tuple[float, float]:
    database = Database(url)
    try:
        await migrate(database)
        catalog = await load_organisation(database, SHIPPED_CONFIG, utc_now)
        organisation = Organisation(database, catalog, utc_now)
        samples = []
        for index in range(EDITS):
            weight = 1 + index % 2

            def change(document: dict[str, Any], weight: int = weight) -> dict[str, Any]:
                branch = next(b for b in document["branches"] if b["id"] == BRANCH)
                branch["counters"][1]["serves"] = {"passport": weight, "psda": 1}
                return document

            started = time.perf_counter()
            await organisation.edit(
                change, actor="manager:bench", summary="bench", audit_branch=BRANCH
            )
            samples.append(time.perf_counter() - started)
        return _percentiles(samples)
    finally:
        await database.dispose()


def main() -> dict[str, tuple[float, float]]:
    results = {"check": check_document()}
    with tempfile.TemporaryDirectory() as folder:
        results["edit_sqlite"] = asyncio.run(_edits(f"sqlite+aiosqlite:///{Path(folder)}/b.db"))
    postgres = os.environ.get("RIGI_TEST_DATABASE_URL")
    if postgres:
        from tests.support import reset_postgres

        reset_postgres(postgres)
        results["edit_postgresql"] = asyncio.run(_edits(postgres))
    for key, (median, p99) in results.items():
        print(f"organisation {key}: median {median:.1f} ms, p99 {p99:.1f} ms")
    return results


if __name__ == "__main__":
    main()
