"""nginx keeps its connections to the servers open between requests (deploy/nginx: `keepalive`)
and must be the side that closes an idle one. With uvicorn's default of 5 s the server closed
them first, and a request nginx sent on one at that moment failed: the national day saw a
`call-next` answered 502. `queue-server serve` now keeps an idle connection longer than the
shipped nginx does."""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

from queue_server.cli import KEEP_ALIVE_S
from tests.proxy_cluster import DEPLOY, servers
from tests.support import TEST_CATALOG

UVICORN_DEFAULT_KEEP_ALIVE_S = 5
IDLE_S = UVICORN_DEFAULT_KEEP_ALIVE_S + 1.5
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _answer(sock: socket.socket) -> bytes:
    """One response's head and body (a short JSON one), or b'' if the server closed."""
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    return data


def test_the_servers_keep_an_idle_connection_longer_than_nginx(tmp_path: Path) -> None:
    shipped = (DEPLOY / "rigi.conf").read_text()
    nginx_s = int(re.search(r"keepalive_timeout (\d+)s;", shipped).group(1))  # type: ignore[union-attr]
    assert nginx_s < KEEP_ALIVE_S

    env = os.environ | {
        "RIGI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}",
        "RIGI_DATA_DIR": str(tmp_path),
        "RIGI_CONFIG": str(TEST_CATALOG),
        "RIGI_LOG_LEVEL": "warning",
    }
    with servers(env, 1) as processes, socket.create_connection(
        ("127.0.0.1", processes.ports[0]), timeout=10
    ) as sock:  # fmt: skip
        sock.sendall(REQUEST)
        assert _answer(sock).startswith(b"HTTP/1.1 200")
        sock.settimeout(IDLE_S + 10)
        # Idle past uvicorn's default: the server must not have closed the connection.
        time.sleep(IDLE_S)
        sock.sendall(REQUEST)
        assert _answer(sock).startswith(b"HTTP/1.1 200"), "the server closed an idle connection"
