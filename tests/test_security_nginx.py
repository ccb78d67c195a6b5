"""A real nginx (Debian's package) in front of a real server, with the configuration shipped in
deploy/nginx/: client addresses come through it honestly, WebSocket feeds pass, and the
access log keeps no device token."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import websockets

from tests.security_server import serve
from tests.support import free_port

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "nginx"
NGINX_ADDRESS = "127.0.0.2"  # nginx reaches the server from here: the one trusted proxy
B = "/api/v1/branches/testhall"
PER_ADDRESS = 3
KIOSK_TOKEN = "rigi_" + "N" * 43


def _nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if found:
        return found
    message = "nginx not installed (scripts/system-deps.sh installs Debian's nginx)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def nginx_in_front(folder: Path, upstream_port: int) -> Iterator[str]:
    """nginx on a free loopback port with deploy/nginx's files; yields its URL."""
    binary = _nginx()
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    conf = folder / "nginx.conf"
    conf.write_text(f"""
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {DEPLOY / "rigi-http.conf"};
    upstream rigi {{ server 127.0.0.1:{upstream_port}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        access_log {folder}/access.log rigi;
        proxy_bind {NGINX_ADDRESS};
        include {DEPLOY / "rigi-locations.conf"};
    }}
}}
""")
    checked = subprocess.run(
        [binary, "-t", "-p", str(folder), "-c", str(conf)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen([binary, "-p", str(folder), "-c", str(conf)], stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError("nginx did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def _upstream_connections(port: int) -> set[int]:
    """The source ports of every TCP socket nginx (bound to NGINX_ADDRESS) opened to `port`,
    open or closing, read from the kernel's table."""
    nginx_hex = "".join(f"{int(part):02X}" for part in reversed(NGINX_ADDRESS.split(".")))
    seen: set[int] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote = line.split()[1:3]
        for ours, theirs in ((local, remote), (remote, local)):
            address, source_port = ours.split(":")
            if address == nginx_hex and int(theirs.split(":")[1], 16) == port:
                seen.add(int(source_port, 16))
    return seen


def _client(source: str) -> httpx.Client:
    """A citizen's phone: its own source address on the loopback network."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30)


def test_through_nginx_each_citizen_has_a_bucket_and_a_forged_header_changes_nothing(
    tmp_path: Path,
) -> None:
    with (
        serve(
            tmp_path / "server",
            issue_rate_address=f"{PER_ADDRESS}/hour",
            trusted_proxies=NGINX_ADDRESS,
        ) as server,
        nginx_in_front(tmp_path / "nginx", server.port) as url,
    ):
        ticket = {"service_id": "id_card"}
        hall = server.in_the_hall()  # the citizens' phones scanned the lobby screen
        with _client("127.0.0.3") as phone:
            forged = [
                phone.post(f"{url}{B}/tickets", json=ticket,
                           headers={"X-Forwarded-For": f"203.0.113.{n}", **hall}).status_code
                for n in range(PER_ADDRESS + 2)
            ]  # fmt: skip
            assert forged == [201] * PER_ADDRESS + [429] * 2
        with _client("127.0.0.4") as other_phone:
            theirs = [
                other_phone.post(f"{url}{B}/tickets", json=ticket, headers=hall).status_code
                for _ in range(PER_ADDRESS)
            ]
            assert theirs == [201] * PER_ADDRESS
        # Direct to the server, a forged header from an untrusted peer counts as that peer.
        with _client("127.0.0.5") as direct:
            spoofed = direct.post(
                f"{server.url}{B}/tickets",
                json=ticket,
                headers={"X-Forwarded-For": "127.0.0.4", **hall},
            )
            assert spoofed.status_code == 201

        with _client("127.0.0.6") as phone:
            mine = phone.post(f"{url}{B}/tickets", json=ticket, headers=hall).json()
            page = phone.get(f"{url}/kiosk/testhall?setup={KIOSK_TOKEN}")
            assert page.status_code == 200
    log = (tmp_path / "nginx" / "access.log").read_text()
    assert "127.0.0.6" in log and "/kiosk/testhall " in log
    assert KIOSK_TOKEN not in log and KIOSK_TOKEN not in server.log_text()
    assert mine["id"]


async def test_a_ticket_feed_passes_through_nginx(tmp_path: Path) -> None:
    with (
        serve(tmp_path / "server", trusted_proxies=NGINX_ADDRESS) as server,
        nginx_in_front(tmp_path / "nginx", server.port) as url,
    ):
        async with httpx.AsyncClient(
            base_url=url, timeout=30, headers=server.in_the_hall()
        ) as phone:
            ticket = (await phone.post(f"{B}/tickets", json={"service_id": "id_card"})).json()
        ws_url = url.replace("http://", "ws://") + f"/ws/tickets/{ticket['id']}"
        async with websockets.connect(ws_url, open_timeout=10) as feed:
            first = json.loads(await asyncio.wait_for(feed.recv(), timeout=10))
        assert first["type"] == "ticket" and first["ticket"]["id"] == ticket["id"]


def test_nginx_reuses_its_upstream_connections(tmp_path: Path) -> None:
    # deploy/nginx's `keepalive` pool only works when plain requests go upstream without
    # `Connection: close`: 40 requests one after another must share a connection or two.
    with (
        serve(tmp_path / "server", trusted_proxies=NGINX_ADDRESS) as server,
        nginx_in_front(tmp_path / "nginx", server.port) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        for _ in range(40):
            assert client.get(f"{B}/queues").status_code == 401  # staff only: a quick answer
        used = _upstream_connections(server.port)  # this nginx's every connection, start-up too
    assert 1 <= len(used) <= 3, used


def test_one_request_id_finds_a_request_in_nginx_s_log_and_the_server_s(tmp_path: Path) -> None:
    """nginx gives each request its id (or passes on the client's) and Rigi answers and logs
    with it: the server no longer makes one per request (`os.urandom` let go of the
    interpreter lock on the serving loop's path)."""
    with (
        serve(tmp_path / "server", trusted_proxies=NGINX_ADDRESS) as server,
        nginx_in_front(tmp_path / "nginx", server.port) as url,
        _client("127.0.0.7") as phone,
    ):
        given = phone.get(f"{url}{B}")
        traced = phone.get(f"{url}{B}", headers={"X-Request-Id": "trace-n18day-1"})
    assert given.status_code == traced.status_code == 200
    made = given.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)  # nginx's $request_id
    assert traced.headers["x-request-id"] == "trace-n18day-1"
    access = (tmp_path / "nginx" / "access.log").read_text().splitlines()
    assert [line.rsplit(" ", 1)[1] for line in access if f"GET {B} " in line] == [
        made,
        "trace-n18day-1",
    ]
    assert made in server.log_text() and "trace-n18day-1" in server.log_text()
