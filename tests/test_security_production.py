"""Production mode (issue 18): a secret with real entropy, HSTS, no API docs unless asked for,
private files, and no device token in the access log."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import httpx
import pytest

from queue_server.settings import load_settings
from tests.security_server import serve

KIOSK_TOKEN = "rigi_" + "K" * 43  # the shape of a device token


@pytest.mark.parametrize(
    "secret", [" " * 32, "s" * 40, "ab" * 20, "0123456789" * 3 + "01", "short-but-random-7Qx"]
)
def test_production_refuses_a_secret_without_real_entropy(tmp_path: Path, secret: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        load_settings(env="production", secret_key=secret, data_dir=tmp_path)
    assert "RIGI_SECRET_KEY" in str(stopped.value)
    assert secret not in str(stopped.value)


@pytest.mark.parametrize(
    "secret",
    [secrets.token_urlsafe(48), secrets.token_hex(32)],
    ids=["urlsafe", "hex"],  # stable ids: each xdist worker collects the same tests
)
def test_production_takes_a_random_secret(tmp_path: Path, secret: str) -> None:
    assert load_settings(env="production", secret_key=secret, data_dir=tmp_path).env == "production"


def test_a_production_server_sends_hsts_hides_its_docs_and_keeps_its_files_private(
    tmp_path: Path,
) -> None:
    with serve(tmp_path, env="production", secret_key=secrets.token_urlsafe(48)) as server:
        health = httpx.get(f"{server.url}/healthz", timeout=30)
        assert health.headers["strict-transport-security"].startswith("max-age=31536000")
        branches = httpx.get(f"{server.url}/api/v1/branches", timeout=30)
        assert "strict-transport-security" in branches.headers
        for path in ("/docs", "/openapi.json"):
            hidden = httpx.get(server.url + path, timeout=30)
            assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found"), path
        # A kiosk's first visit carries its token in the setup link; the log keeps no copy.
        page = httpx.get(f"{server.url}/kiosk/testhall?setup={KIOSK_TOKEN}&lang=en", timeout=30)
        assert page.status_code == 200
    database = tmp_path / "rigi.sqlite3"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    log = server.log_text()
    # The request is logged by its route's template, so its query (the token) never is.
    assert "GET /kiosk/{branch} 200" in log
    assert KIOSK_TOKEN not in log


def test_the_docs_can_be_served_in_production_when_asked_for(tmp_path: Path) -> None:
    with serve(
        tmp_path, env="production", secret_key=secrets.token_urlsafe(48), api_docs="true"
    ) as server:
        assert httpx.get(f"{server.url}/openapi.json", timeout=30).status_code == 200
        assert httpx.get(f"{server.url}/docs", timeout=30).status_code == 200


def test_development_serves_its_docs_without_hsts(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        docs = httpx.get(f"{server.url}/openapi.json", timeout=30)
        assert docs.status_code == 200 and "strict-transport-security" not in docs.headers
    for name in ("rigi.sqlite3", "secret_key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
