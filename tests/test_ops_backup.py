"""`queue-server backup` while a real server issues tickets, and `restore` into a fresh folder:
every ticket acknowledged before the backup began is back, and a display that returns with the
epoch and seq it held gets a snapshot (the restored streams have a new epoch), never a replay."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support import POSTGRES_ENV, LiveServer, need_service, reset_postgres, test_settings

B = "/api/v1/branches/testhall"


def queue_server(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "queue_server", *args],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def board_hello(server: LiveServer, token: str, epoch: str | None, seq: int | None) -> dict:
    async with connect(f"{server.ws_url}/ws/branches/testhall/board") as board:
        await board.send(json.dumps({"type": "hello", "token": token, "epoch": epoch,
                                     "after_seq": seq}))  # fmt: skip
        return json.loads(await asyncio.wait_for(board.recv(), 10))


class Kiosk:
    """A kiosk issuing tickets back to back; `acknowledged` holds each id the server answered."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.acknowledged: list[str] = []
        self.stop = asyncio.Event()
        self._progress = asyncio.Event()

    async def run(self) -> None:
        async with self.server.client("kiosk") as kiosk:
            while not self.stop.is_set():
                response = await kiosk.post(f"{B}/tickets", json={"service_id": "id_card"})
                assert response.status_code == 201, response.text
                self.acknowledged.append(response.json()["id"])
                self._progress.set()

    async def until(self, count: int) -> None:
        while len(self.acknowledged) < count:
            self._progress.clear()
            await asyncio.wait_for(self._progress.wait(), 30)


async def test_a_backup_under_load_restores_every_acknowledged_ticket_on_a_new_epoch(
    tmp_path: Path,
) -> None:
    live_dir, fresh_dir = tmp_path / "live", tmp_path / "fresh"
    live_url = f"sqlite+aiosqlite:///{live_dir / 'rigi.sqlite3'}"
    server = LiveServer(test_settings(live_url, live_dir)).start()
    display = server.device_token("display")
    kiosk = Kiosk(server)
    acknowledged = kiosk.acknowledged
    try:
        issuing = asyncio.create_task(kiosk.run())
        await kiosk.until(20)
        seen = await board_hello(server, display, None, None)
        before_backup = list(acknowledged)
        backup_file = tmp_path / "copies" / "rigi-backup.sqlite3"
        env = {"RIGI_DATABASE_URL": live_url, "RIGI_DATA_DIR": str(live_dir)}
        made = await asyncio.to_thread(queue_server, "backup", str(backup_file), env=env)
        during_backup = len(acknowledged) - len(before_backup)
        await kiosk.until(len(before_backup) + during_backup + 10)  # the server goes on
        kiosk.stop.set()
        await issuing
    finally:
        kiosk.stop.set()
        server.stop()
    assert made.returncode == 0, made.stderr
    assert during_backup > 0, "the backup must run while tickets are being issued"
    assert stat.S_IMODE(backup_file.stat().st_mode) == 0o600

    fresh = {"RIGI_DATA_DIR": str(fresh_dir)}
    restored = queue_server("restore", str(backup_file), env=fresh)
    assert restored.returncode == 0, restored.stderr
    database = fresh_dir / "rigi.sqlite3"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    again = queue_server("restore", str(backup_file), env=fresh)
    assert again.returncode == 1 and "database_exists" in again.stderr

    with sqlite3.connect(database) as conn:
        kept = {row[0] for row in conn.execute("SELECT id FROM tickets")}
    conn.close()
    assert set(before_backup) <= kept
    assert len(kept) < len(acknowledged)  # what came after the backup is not in it

    server = LiveServer(test_settings(f"sqlite+aiosqlite:///{database}", fresh_dir)).start()
    try:
        async with server.client("manager") as client:
            for ticket_id in before_backup[:: max(1, len(before_backup) // 10)]:
                assert (await client.get(f"/api/v1/tickets/{ticket_id}")).status_code == 200
            issued = await client.post(f"{B}/tickets", json={"service_id": "id_card"})
            assert issued.status_code == 201, issued.text
        returning = await board_hello(server, display, seen["epoch"], seen["seq"])
    finally:
        server.stop()
    assert returning["type"] == "snapshot"
    assert returning["epoch"] != seen["epoch"]
    assert returning["seq"] >= len(before_backup) + 1


def test_restore_refuses_what_is_not_a_backup_and_a_missing_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    env = {"RIGI_DATA_DIR": str(tmp_path / "data")}
    not_backup = queue_server("restore", str(junk), env=env)
    missing = queue_server("restore", str(tmp_path / "nope"), env=env)
    assert not_backup.returncode == 1 and "not_a_backup" in not_backup.stderr
    assert missing.returncode == 1 and "backup_missing" in missing.stderr
    assert not (tmp_path / "data" / "rigi.sqlite3").exists()


@pytest.mark.postgres
def test_postgres_backup_and_restore_through_pg_dump_start_a_new_epoch(tmp_path: Path) -> None:
    url = need_service(POSTGRES_ENV, "PostgreSQL")
    reset_postgres(url)
    server = LiveServer(test_settings(url, tmp_path)).start()
    try:
        with httpx.Client(base_url=server.url) as kiosk:
            kiosk.headers["Authorization"] = f"Bearer {server.device_token('kiosk')}"
            ids = [
                kiosk.post(f"{B}/tickets", json={"service_id": "id_card"}).json()["id"]
                for _ in range(5)
            ]
        display = server.device_token("display")
        seen = asyncio.run(board_hello(server, display, None, None))
    finally:
        server.stop()
    env = {"RIGI_DATABASE_URL": url, "RIGI_DATA_DIR": str(tmp_path)}
    dump = tmp_path / "rigi.dump"
    made = queue_server("backup", str(dump), env=env)
    assert made.returncode == 0, made.stderr
    assert "PGPASSWORD" not in made.stdout and dump.stat().st_size > 0
    refused = queue_server("restore", str(dump), env=env)
    assert refused.returncode == 1 and "database_in_use" in refused.stderr
    restored = queue_server("restore", str(dump), "--force", env=env)
    assert restored.returncode == 0, restored.stderr

    server = LiveServer(test_settings(url, tmp_path)).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            for ticket_id in ids:
                assert client.get(f"/api/v1/tickets/{ticket_id}").status_code == 200
        returning = asyncio.run(board_hello(server, display, seen["epoch"], seen["seq"]))
    finally:
        server.stop()
    assert returning["type"] == "snapshot" and returning["epoch"] != seen["epoch"]
