"""The server's own logs, from a real `queue-server serve` process: JSON lines with the request
id, and none of the secrets or personal data that passed through it on the way."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from queue_server.ops.logs import scrub
from tests.support import TEST_CATALOG, free_port

PASSWORD = "a long and secret passphrase 93"
B = "/api/v1/branches/testhall"


def wait_until_up(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server stopped"
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not start")


def test_json_logs_carry_request_ids_and_no_secret_token_or_ticket_id(tmp_path: Path) -> None:
    env = os.environ | {
        "RIGI_DATA_DIR": str(tmp_path),
        "RIGI_CONFIG": str(TEST_CATALOG),
        "RIGI_LOG_FORMAT": "json",
    }
    created = subprocess.run(
        [sys.executable, "-m", "queue_server", "create-admin", "chief", "--password-stdin"],
        input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "queue_server", "serve", "--port", str(port)],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    secrets: list[str] = [PASSWORD]
    try:
        wait_until_up(url, process)
        with httpx.Client(base_url=url, timeout=30) as staff:
            wrong = staff.post("/api/v1/session", json={"username": "chief", "password": "nope"})
            assert wrong.status_code == 401
            signed_in = staff.post("/api/v1/session", json={"username": "chief",
                                                            "password": PASSWORD})  # fmt: skip
            assert signed_in.status_code == 200, signed_in.text
            csrf = signed_in.json()["csrf_token"]
            secrets += [csrf, *staff.cookies.values()]
            made = staff.post(f"{B}/devices", json={"role": "kiosk", "name": "door"},
                              headers={"X-CSRF-Token": csrf})  # fmt: skip
            assert made.status_code == 201, made.text
            token = made.json()["token"]
            secrets.append(token)
        with httpx.Client(base_url=url, timeout=30) as kiosk:
            assert kiosk.get(f"/kiosk/testhall?setup={token}").status_code == 200
            issued = kiosk.post(
                f"{B}/tickets", json={"service_id": "id_card"},
                headers={"Authorization": f"Bearer {token}", "X-Request-ID": "trace-me-1"},
            )  # fmt: skip
            assert issued.status_code == 201, issued.text
            assert issued.headers["x-request-id"] == "trace-me-1"
            ticket_id = issued.json()["id"]
            secrets.append(ticket_id)
            assert kiosk.get(f"/api/v1/tickets/{ticket_id}").status_code == 200
            assert kiosk.get(f"/t/{ticket_id}").status_code == 200
            bogus = kiosk.get(f"{B}", headers={"Authorization": "Bearer rigi_notarealtoken0042"})
            assert bogus.status_code == 401  # an unknown token is refused, never anonymous
            secrets.append("rigi_notarealtoken0042")

        async def follow() -> None:
            async with connect(f"ws://127.0.0.1:{port}/ws/tickets/{ticket_id}") as phone:
                assert json.loads(await phone.recv())["type"] == "ticket"

        asyncio.run(follow())
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)

    lines = [line for line in stderr.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    traced = [e for e in entries if e.get("request_id") == "trace-me-1"]
    assert any(e["logger"] == "queue_server.access" for e in traced), lines
    assert any("/api/v1/branches/{branch}/tickets 201" in e["message"] for e in traced)
    for secret in secrets:
        leaked = [line for line in lines if secret in line]
        assert not leaked, f"{secret[:6]}… leaked into the log: {leaked}"


def test_scrub_takes_out_what_a_log_line_must_never_hold() -> None:
    line = scrub(
        'GET /kiosk/h?setup=rigi_abcDEF123456789 from 203.0.113.9:5123 token="xyz" '
        "Authorization: Bearer abc.def mail ana@example.ge phone +995 555 12 34 56 "
        '"WebSocket /ws/tickets/4f1c2a9b8e7d6c5b" [accepted] password=hunter22'
    )
    for gone in ("rigi_abc", "203.0.113.9", "xyz", "abc.def", "ana@example.ge", "555 12 34",
                 "4f1c2a9b8e7d6c5b", "hunter22"):  # fmt: skip
        assert gone not in line, line
    assert "/ws/tickets/{ticket_id}" in line
