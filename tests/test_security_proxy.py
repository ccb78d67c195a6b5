"""The client address (issue 18): X-Forwarded-For is believed only from a trusted proxy, so
rotating it defeats no limit, and behind a trusted proxy each real client has its own bucket."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from queue_server.access.edge import client_address, parse_networks
from tests.security_server import ServerProcess, serve

B = "/api/v1/branches/testhall"
TICKET = {"service_id": "id_card"}
PER_ADDRESS = 3


def _take(server: ServerProcess, forwarded_for: str | None) -> httpx.Response:
    """A phone in the hall (it sends the lobby screen's pass) takes a ticket."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return httpx.post(
        f"{server.url}{B}/tickets", json=TICKET, headers=headers | server.in_the_hall(), timeout=30
    )


def test_rotating_x_forwarded_for_from_an_untrusted_peer_does_not_reset_the_limit(
    tmp_path: Path,
) -> None:
    with serve(tmp_path, issue_rate_address=f"{PER_ADDRESS}/hour") as server:
        answers = [_take(server, f"203.0.113.{n}").status_code for n in range(PER_ADDRESS + 3)]
    assert answers == [201] * PER_ADDRESS + [429] * 3


def test_behind_a_trusted_proxy_each_real_client_has_its_own_bucket(tmp_path: Path) -> None:
    with serve(
        tmp_path, issue_rate_address=f"{PER_ADDRESS}/hour", trusted_proxies="127.0.0.1, ::1"
    ) as server:
        for client in ("198.51.100.1", "198.51.100.2", "2001:db8::7"):
            answers = [_take(server, client).status_code for _ in range(PER_ADDRESS)]
            assert answers == [201] * PER_ADDRESS, client
        # The client's 4th: refused, whatever it writes left of what the proxy appended.
        assert _take(server, "198.51.100.1").status_code == 429
        assert _take(server, "10.9.9.9, 198.51.100.1").status_code == 429
        refused = _take(server, "1.2.3.4, 5.6.7.8, 198.51.100.1")
        assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")
        # The proxy's own requests (no header) are a bucket of their own.
        assert _take(server, None).status_code == 201


@pytest.mark.parametrize(
    ("peer", "chain", "client"),
    [
        ("203.0.113.9", "1.1.1.1", "203.0.113.9"),  # not a proxy: the header is ignored
        ("127.0.0.1", "1.1.1.1", "1.1.1.1"),
        ("127.0.0.1", "6.6.6.6, 1.1.1.1", "1.1.1.1"),  # the left part is the client's lie
        ("127.0.0.1", "1.1.1.1, 10.0.0.2", "1.1.1.1"),  # two proxies: 10.0.0.2 is trusted
        ("127.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),  # only proxies: the farthest one
        ("127.0.0.1", "not-an-ip, 1.1.1.1", "1.1.1.1"),
        ("127.0.0.1", "1.1.1.1, bogus", "127.0.0.1"),  # garbage from a proxy: the proxy
        ("127.0.0.1", "", "127.0.0.1"),
    ],
)
def test_the_client_is_the_right_most_address_that_is_no_trusted_proxy(
    peer: str, chain: str, client: str
) -> None:
    trusted = parse_networks("127.0.0.1, 10.0.0.0/8")
    assert client_address(peer, chain, trusted) == client


def test_a_bad_trusted_proxy_setting_stops_the_start_naming_it() -> None:
    from queue_server.settings import load_settings

    with pytest.raises(SystemExit) as stopped:
        load_settings(trusted_proxies="127.0.0.1, nginx.local")
    assert "RIGI_TRUSTED_PROXIES" in str(stopped.value) and "nginx.local" in str(stopped.value)
