"""The local SQLite journal that makes printing at-least-once with an idempotent effect.

A job is written here before any byte goes to the printer and marked after the last one, so a
restarted agent knows, for every ticket, whether it was never started (print it), finished (only
acknowledge it), or cut off mid-way (print it once more, marked REPRINT). The journal is also the
printer's queue: nothing waits only in memory.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

RECEIVED = "received"  # stored, no byte sent yet
PRINTING = "printing"  # bytes are going out; outcome unknown if we die here
PRINTED = "printed"  # last byte sent
FAILED = "failed"  # set aside after too many failures
KEEP_FINISHED = timedelta(days=7)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    printer_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    queued INTEGER NOT NULL,
    reprint INTEGER NOT NULL DEFAULT 0,
    starts INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    acked INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_pending ON jobs (printer_id, state, queued);
"""


@dataclass(frozen=True)
class JournalEntry:
    job_id: str
    printer_id: str
    payload: dict[str, Any]
    state: str
    reprint: bool
    starts: int
    attempts: int
    acked: bool
    error_code: str | None
    error_message: str | None

    @property
    def must_say_reprint(self) -> bool:
        """Any second printing of a ticket says REPRINT: asked for, or a first try was cut off."""
        return self.reprint or self.starts > 0


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Journal:
    """Thread-safe: the event loop's helper thread and every printer thread share it."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a job marked printed must stay printed even if the power goes.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _entry(self, row: sqlite3.Row | None) -> JournalEntry | None:
        if row is None:
            return None
        return JournalEntry(
            job_id=row["job_id"],
            printer_id=row["printer_id"],
            payload=json.loads(row["payload"]),
            state=row["state"],
            reprint=bool(row["reprint"]),
            starts=row["starts"],
            attempts=row["attempts"],
            acked=bool(row["acked"]),
            error_code=row["error_code"],
            error_message=row["error_message"],
        )

    def get(self, job_id: str) -> JournalEntry | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return self._entry(row)

    def accept(
        self, job_id: str, printer_id: str, payload: dict[str, Any], *, reprint: bool
    ) -> tuple[bool, JournalEntry]:
        """Store a job unless it is known; returns (queued now?, entry as it stands)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
                queued = self._db.execute(
                    "SELECT COALESCE(MAX(queued), 0) + 1 FROM jobs"
                ).fetchone()[0]
                fresh = False
                if row is None:
                    self._db.execute(
                        "INSERT INTO jobs (job_id, printer_id, payload, state, queued, reprint,"
                        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            job_id,
                            printer_id,
                            json.dumps(payload),
                            RECEIVED,
                            queued,
                            int(reprint),
                            _now(),
                        ),
                    )
                    fresh = True
                elif (
                    reprint
                    and row["state"] in (PRINTED, FAILED)
                    and (row["acked"] or not row["reprint"])
                ):
                    # An explicit reprint of a finished ticket: queue it again, marked. A
                    # finished *reprint* whose ack has not landed is the server sending that
                    # same request again, and only gets its ack. An original print counts as
                    # finished even while its ack is still on the way.
                    self._db.execute(
                        "UPDATE jobs SET state = ?, queued = ?, reprint = 1, attempts = 0,"
                        " acked = 0, payload = ?, printer_id = ?, error_code = NULL,"
                        " error_message = NULL, updated_at = ? WHERE job_id = ?",
                        (RECEIVED, queued, json.dumps(payload), printer_id, _now(), job_id),
                    )
                    fresh = True
                row = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        entry = self._entry(row)
        assert entry is not None
        return fresh, entry

    def next_pending(self, printer_id: str) -> JournalEntry | None:
        """The oldest job of this printer that still has to be printed."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE printer_id = ? AND state IN (?, ?)"
                " ORDER BY queued LIMIT 1",
                (printer_id, RECEIVED, PRINTING),
            ).fetchone()
        return self._entry(row)

    def _update(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute(sql, params)

    def mark_printing(self, job_id: str) -> None:
        """Called just before the first byte: from now on the outcome is unknown until printed."""
        self._update(
            "UPDATE jobs SET state = ?, starts = starts + 1, updated_at = ? WHERE job_id = ?",
            (PRINTING, _now(), job_id),
        )

    def mark_printed(self, job_id: str) -> None:
        self._update(
            "UPDATE jobs SET state = ?, acked = 0, error_code = NULL, error_message = NULL,"
            " updated_at = ? WHERE job_id = ?",
            (PRINTED, _now(), job_id),
        )

    def mark_acked(self, job_id: str) -> None:
        """Only a finished job can be acknowledged: an ack that lands after the job was queued
        again for a reprint must not mark the reprint as reported."""
        self._update(
            "UPDATE jobs SET acked = 1, updated_at = ? WHERE job_id = ? AND state IN (?, ?)",
            (_now(), job_id, PRINTED, FAILED),
        )

    def record_failure(self, job_id: str, code: str, message: str, max_attempts: int) -> bool:
        """Count a failed attempt; returns True when the job is now set aside as failed."""
        with self._lock:
            row = self._db.execute(
                "SELECT attempts FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            attempts = (row["attempts"] if row else 0) + 1
            state = FAILED if attempts >= max_attempts else RECEIVED
            self._db.execute(
                "UPDATE jobs SET attempts = ?, state = ?, acked = 0, error_code = ?,"
                " error_message = ?, updated_at = ? WHERE job_id = ?",
                (attempts, state, code, message, _now(), job_id),
            )
        return state == FAILED

    def unacknowledged(self) -> list[JournalEntry]:
        """Finished jobs whose result the server may not have heard yet."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE state IN (?, ?) AND acked = 0 ORDER BY queued",
                (PRINTED, FAILED),
            ).fetchall()
        return [entry for row in rows if (entry := self._entry(row)) is not None]

    def prune(self, older_than: timedelta = KEEP_FINISHED) -> int:
        """Forget acknowledged jobs after a week so the file stays small."""
        cutoff = (datetime.now(UTC) - older_than).isoformat()
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM jobs WHERE acked = 1 AND state IN (?, ?) AND updated_at < ?",
                (PRINTED, FAILED, cutoff),
            )
        return cursor.rowcount
