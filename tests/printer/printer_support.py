"""Helpers for the printer agent's stories: a real `websockets` server standing in for
queue_server's `/ws/printers` and the agent's TOML written into tmp_path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection

from printer_agent.config import parse_config
from printer_agent.ticket import sample_ticket_json

TOKEN = "printer-token-for-tests"
WAIT_S = 20.0


class StandInServer:
    """Plays queue_server's side of `/ws/printers`: checks the hello, sends jobs, keeps acks.

    Harsher than the real server on purpose: on every connection it re-sends every job it ever
    sent, acknowledged or not, so the agent's idempotence is what keeps tickets single.
    """

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.acks: list[dict[str, Any]] = []
        self.health: list[dict[str, Any]] = []
        self.hellos: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.connection: ServerConnection | None = None
        self.resend_on_connect = True
        self._changed = asyncio.Condition()
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/printers"

    async def handler(self, ws: ServerConnection) -> None:
        self.paths.append(ws.request.path if ws.request else "")
        hello = json.loads(await ws.recv())
        if hello.get("type") != "hello" or hello.get("token") != TOKEN:
            await ws.close(4401, "bad token")
            return
        self.hellos.append(hello)
        self.connection = ws
        await self._notify()
        if self.resend_on_connect:
            for message in list(self.jobs.values()):
                await ws.send(json.dumps(message))
        try:
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "ack":
                    self.acks.append(message)
                elif message["type"] == "health":
                    self.health.append(message)
                await self._notify()
        finally:
            if self.connection is ws:
                self.connection = None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait (bounded, so a broken agent fails the test instead of hanging it)."""
        async with asyncio.timeout(WAIT_S), self._changed:
            await self._changed.wait_for(predicate)

    async def print_job(self, job_id: str, language: str = "ka", **extra: Any) -> None:
        """Send a job for the sample ticket, as queue_server would after issuing it."""
        await self.wait_for(lambda: self.connection is not None)
        job = {
            "id": job_id,
            "reprint": False,
            "ticket": sample_ticket_json(language, ticket_id=job_id),
        }
        job.update(extra)
        message = {"type": "print", "job": job}
        self.jobs[job_id] = message
        assert self.connection is not None
        await self.connection.send(json.dumps(message, ensure_ascii=False))

    def acks_for(self, job_id: str) -> list[dict[str, Any]]:
        return [ack for ack in self.acks if ack["job_id"] == job_id]


def agent_toml(
    tmp_path: Path,
    printer_port: int,
    server_url: str,
    *,
    width: int = 576,
    max_attempts: int = 3,
    footer: str = "მადლობა — Thank you",
) -> Path:
    """Write the agent's TOML for one network printer on the fake printer's port."""
    path = tmp_path / "printer-agent.toml"
    path.write_text(
        f"""
[agent]
server_url = "{server_url}"
journal = "{tmp_path / "journal.sqlite3"}"
footer = "{footer}"
max_attempts = {max_attempts}
health_interval = 0.2
retry_delay = 0.05

[[printers]]
id = "kiosk-1-printer"
kiosks = ["kiosk-1"]
transport = "network"
host = "127.0.0.1"
port = {printer_port}
timeout = 2
profile = "TM-T20II"
width = {width}
""",
        encoding="utf-8",
    )
    return path


def agent_config(tmp_path: Path, printer_port: int, server_url: str, **options: Any):
    import tomllib

    path = agent_toml(tmp_path, printer_port, server_url, **options)
    return parse_config(tomllib.loads(path.read_text()), {"RIGI_PRINTER_TOKEN": TOKEN})
