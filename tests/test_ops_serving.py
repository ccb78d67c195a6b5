"""What `queue-server serve` asks of uvicorn: no protocol pings of its own beside the feeds'
heartbeat (which pings every client and drops one that stays silent), and the bounds and
keep-alive the deployment relies on."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from queue_server.cli import KEEP_ALIVE_S, serving_options
from tests.support import test_settings


def test_serve_leaves_pinging_to_the_feeds_heartbeat(tmp_path: Path) -> None:
    settings = test_settings(f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}", tmp_path)
    config = uvicorn.Config("queue_server.app:create_app", **serving_options(settings))
    assert config.ws_ping_interval is None  # uvicorn's default pings every 20 s
    assert settings.heartbeat_s > 0  # the feeds' own heartbeat is what remains
    assert config.ws_max_size == settings.max_body_bytes
    assert config.timeout_keep_alive == KEEP_ALIVE_S
    assert not config.ws_per_message_deflate and not config.proxy_headers
