"""A centre's node restored from an older backup (a new epoch) is reconciled at central: the
visits served after the backup stay counted, the restored node's new visits are added after
them, nothing is numbered twice (real servers, a real backup and restore of the node's file)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from queue_server.ops.backup import backup, restore
from queue_server.store.schema import events
from tests.support import PASSWORD, LiveServer, test_settings

BRANCH = "testhall"
SYNC_TIMEOUT_S = 20.0


def _issue(node: LiveServer, count: int) -> list[str]:
    token = node.device_token("kiosk")
    ids = []
    for _ in range(count):
        answer = httpx.post(
            f"{node.url}/api/v1/branches/{BRANCH}/tickets", json={"service_id": "id_card"},
            headers={"Authorization": f"Bearer {token}"}, timeout=10,
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


def _log(server: LiveServer) -> list[tuple[int, str, str, Any]]:
    async def read() -> list[tuple[int, str, str, Any]]:
        async with server.rigi.database.read() as conn:
            rows = await conn.execute(
                select(events.c.seq, events.c.epoch, events.c.kind, events.c.data)
                .where(events.c.branch_id == BRANCH).order_by(events.c.seq)
            )  # fmt: skip
            return [(r.seq, r.epoch, r.kind, json.loads(r.data)) for r in rows]

    return server.run(read())  # type: ignore[no-any-return]


def _synced(node: LiveServer) -> None:
    """Wait until central has applied every event the node holds."""
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    while node.rigi.node.status(node.rigi.store.clock())["waiting_events"] or not (
        node.rigi.node.state.connected
    ):
        assert time.monotonic() < deadline, node.rigi.node.status(node.rigi.store.clock())
        time.sleep(0.05)


def _issued(log: list[tuple[int, str, str, Any]]) -> list[str]:
    return [data["ticket"]["id"] for _, _, kind, data in log if kind == "ticket.issued"]


def test_a_node_restored_from_an_older_backup_loses_and_doubles_no_visit(tmp_path: Path) -> None:
    central = LiveServer(
        test_settings(f"sqlite+aiosqlite:///{tmp_path / 'central.sqlite3'}", tmp_path / "c")
    ).start()
    node_file = tmp_path / "node.sqlite3"
    try:
        admin = central.user("admin")
        with httpx.Client(base_url=central.url, timeout=10) as client:
            signed = client.post("/api/v1/session", json={"username": admin, "password": PASSWORD})
            client.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
            token = client.post(f"/api/v1/branches/{BRANCH}/node-token", json={}).json()["token"]
        settings = test_settings(
            f"sqlite+aiosqlite:///{node_file}", tmp_path / "n", node_central_url=central.url,
            node_token=token, node_branch=BRANCH, node_heartbeat_s=0.2,
        )  # fmt: skip
        node = LiveServer(settings).start()
        before_backup = _issue(node, 5)
        _synced(node)
        backup(settings.resolved_database_url, tmp_path / "node-backup.sqlite3")
        after_backup = _issue(node, 5)  # served, shipped, then lost on the node by the restore
        _synced(node)
        node.stop()

        restore(settings.resolved_database_url, tmp_path / "node-backup.sqlite3", force=True)
        node = LiveServer(settings).start()
        after_restore = _issue(node, 4)
        _synced(node)
        node.stop()

        held = _log(central)
        assert [seq for seq, *_ in held] == list(range(1, len(held) + 1))  # no gap, no double
        assert _issued(held) == before_backup + after_backup + after_restore
        epochs = list(dict.fromkeys(epoch for _, epoch, *_ in held))
        assert len(epochs) == 1  # central's own stream goes on: its feeds and reports see no reset
        node_log = _log_file(node_file)
        assert _issued(node_log) == before_backup + after_restore
        assert len({epoch for _, epoch, *_ in node_log}) == 2  # the restore began a new epoch
    finally:
        central.stop()


def _log_file(path: Path) -> list[tuple[int, str, str, Any]]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT seq, epoch, kind, data FROM events WHERE branch_id = ? ORDER BY seq", (BRANCH,)
        ).fetchall()
    conn.close()
    return [(seq, epoch, kind, json.loads(data)) for seq, epoch, kind, data in rows]
