"""Sign-in as an attacker tries it (issue 18): spraying usernames from one address, guessing one
person's password from many, login CSRF, look-alike usernames and trivial passwords."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from argon2 import profiles

from queue_server.access.passwords import verify_password
from queue_server.access.ratelimit import Limit, RedisLimiter
from queue_server.access.signin import check_sign_in, sign_in_failed
from queue_server.errors import RateLimited
from tests import hashing
from tests.security_server import serve, server_env
from tests.support import PASSWORD, LiveServer, free_port

SESSION = "/api/v1/session"
USER = "nino"


def _create_admin(
    data_dir: Path, name: str, password: str, *flags: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "queue_server", "create-admin", name, *flags],
        input=password + "\n", env=server_env(data_dir), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def _sign_in(url: str, username: str, password: str, client: str) -> httpx.Response:
    """A sign-in from `client`'s address, as the trusted proxy in front reports it."""
    return httpx.post(
        url + SESSION,
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": client},
        timeout=30,
    )


def test_spraying_usernames_from_one_address_stops_at_that_address(tmp_path: Path) -> None:
    assert _create_admin(tmp_path, USER, PASSWORD, "--password-stdin").returncode == 0
    with serve(
        tmp_path, login_rate_address="5/hour", login_rate="100/hour", trusted_proxies="127.0.0.1"
    ) as server:
        sprayed = [
            _sign_in(server.url, name, "Tr0ub4dor&3-guess", "203.0.113.66").status_code
            for name in ("admin", "root", "nino", "manager", "operator")
        ]
        assert sprayed == [401] * 5
        refused = _sign_in(server.url, "giorgi", "anything at all", "203.0.113.66")
        assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")
        assert int(refused.headers["Retry-After"]) >= 1
        # The person, from their own address, is not affected.
        assert _sign_in(server.url, USER, PASSWORD, "198.51.100.7").status_code == 200


def test_guessing_one_password_from_many_addresses_is_slowed_never_locked(tmp_path: Path) -> None:
    assert _create_admin(tmp_path, USER, PASSWORD, "--password-stdin").returncode == 0
    with serve(tmp_path, login_rate="3/hour", trusted_proxies="127.0.0.1") as server:
        guesses = [
            _sign_in(server.url, USER, f"guess number {n}!", f"203.0.113.{n}").status_code
            for n in range(3)
        ]
        assert guesses == [401] * 3
        held = _sign_in(server.url, USER, "another guess here", "203.0.113.50")
        assert (held.status_code, held.json()["code"]) == (429, "rate_limited")
        assert held.headers["Retry-After"] == "1"
        time.sleep(1.2)
        assert _sign_in(server.url, "NINO", "guess number 4!", "203.0.113.51").status_code == 401
        held_longer = _sign_in(server.url, USER, "and another", "203.0.113.52")
        assert (held_longer.status_code, held_longer.headers["Retry-After"]) == (429, "2")
        # The person waits seconds, not forever: after the delay the right password works,
        # and a success clears the count.
        time.sleep(2.2)
        assert _sign_in(server.url, USER, PASSWORD, "198.51.100.7").status_code == 200
        assert _sign_in(server.url, USER, "a typo in it", "198.51.100.7").status_code == 401
        assert _sign_in(server.url, USER, PASSWORD, "198.51.100.7").status_code == 200


async def test_correct_sign_ins_are_not_counted(tmp_path: Path) -> None:
    from tests.support import test_settings

    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}", tmp_path,
        login_rate="2/hour", login_rate_address="2/hour",
    )  # fmt: skip
    server = LiveServer(settings).start()
    try:
        username = server.user("operator")
        async with server.client(None) as browser:
            for _ in range(12):
                signed_in = await browser.post(
                    SESSION, json={"username": username, "password": PASSWORD}
                )
                assert signed_in.status_code == 200, signed_in.text
    finally:
        server.stop()


async def test_sign_in_takes_json_from_the_servers_own_pages_only(
    sqlite_server: LiveServer,
) -> None:
    username = sqlite_server.user("operator")
    body = f'{{"username": "{username}", "password": "{PASSWORD}"}}'
    async with sqlite_server.client(None) as browser:
        # What a foreign page's form or `fetch(no-cors)` can send without a preflight.
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"Origin": "https://evil.example"}
            if content_type:
                headers["Content-Type"] = content_type
            refused = await browser.post(SESSION, content=body, headers=headers)
            assert (refused.status_code, refused.json()["code"]) == (415, "json_required")
            assert "rigi_session" not in refused.cookies
        foreign = await browser.post(
            SESSION,
            content=body,
            headers={"Content-Type": "application/json", "Origin": "https://evil.example"},
        )
        assert (foreign.status_code, foreign.json()["code"]) == (403, "origin")
        own = await browser.post(
            SESSION,
            content=body,
            headers={"Content-Type": "application/json", "Origin": sqlite_server.url},
        )
        assert own.status_code == 200


async def test_usernames_are_unique_ignoring_case_and_plain(sqlite_server: LiveServer) -> None:
    async with sqlite_server.client("admin") as admin:
        new = {"password": PASSWORD, "role": "operator", "branch": "testhall"}
        made = await admin.post("/api/v1/users", json=new | {"username": "Tamar.K"})
        assert (made.status_code, made.json()["username"]) == (201, "tamar.k")
        twin = await admin.post("/api/v1/users", json=new | {"username": "TAMAR.K"})
        assert (twin.status_code, twin.json()["code"]) == (409, "username_taken")
        for bad in ("-x", ".hidden", "ab\n"):
            refused = await admin.post("/api/v1/users", json=new | {"username": bad})
            assert refused.status_code == 422, bad
    async with sqlite_server.client(None) as browser:
        signed_in = await browser.post(SESSION, json={"username": "Tamar.K", "password": PASSWORD})
        assert (signed_in.status_code, signed_in.json()["user"]["username"]) == (200, "tamar.k")


def test_the_product_stores_passwords_with_argon2id_at_rfc_9106s_cost() -> None:
    """The server's own hasher: tests sign in with a cheaper one (tests/hashing.py), so this
    holds what production uses, and a check of a product hash still passes the cheap one's."""
    hasher = hashing.PRODUCT_HASHER
    assert hasher is not None
    wanted = profiles.RFC_9106_LOW_MEMORY
    assert (hasher.type, hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (
        wanted.type, wanted.time_cost, wanted.memory_cost, wanted.parallelism,
    )  # fmt: skip
    assert (hasher.hash_len, hasher.salt_len) == (wanted.hash_len, wanted.salt_len)
    stored = hasher.hash(PASSWORD)
    assert verify_password(stored, PASSWORD) and not verify_password(stored, PASSWORD + "!")


@pytest.mark.parametrize("password", ["aaaaaaaaaa", "password1234", "qwertyuiop123", "1234567890"])
async def test_a_common_or_trivial_password_is_refused(
    sqlite_server: LiveServer, password: str
) -> None:
    async with sqlite_server.client("admin") as admin:
        refused = await admin.post(
            "/api/v1/users",
            json={"username": "levan", "password": password, "role": "operator",
                  "branch": "testhall"},
        )  # fmt: skip
        assert (refused.status_code, refused.json()["code"]) == (422, "weak_password")
        assert password not in refused.text


def test_create_admin_refuses_empty_and_markup_names_and_reads_a_pipe(tmp_path: Path) -> None:
    for name in ("", "<b>boss</b>", "a b", "ადმინი"):
        refused = _create_admin(tmp_path, name, PASSWORD, "--password-stdin")
        assert refused.returncode == 1, name
        assert "username is 2 to 64" in refused.stderr and "Traceback" not in refused.stderr
    weak = _create_admin(tmp_path, "nino", "aaaaaaaaaa", "--password-stdin")
    assert weak.returncode == 1 and "too easy to guess" in weak.stderr
    # `echo "$PW" | queue-server create-admin nino`: no terminal, no flag, no traceback.
    piped = _create_admin(tmp_path, "Nino", PASSWORD)
    assert piped.returncode == 0, piped.stderr
    assert "Traceback" not in piped.stderr
    empty = _create_admin(tmp_path, "giorgi", "")
    assert empty.returncode == 1 and "No password" in empty.stderr
    with serve(tmp_path) as server:
        signed_in = httpx.post(
            server.url + SESSION, json={"username": "nino", "password": PASSWORD}, timeout=30
        )
        assert signed_in.status_code == 200, signed_in.text


async def test_sign_in_limits_hold_in_memory_while_redis_is_away() -> None:
    limiter = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    per_user, per_address = Limit.parse("2/hour"), Limit.parse("100/hour")
    try:
        for _ in range(2):
            await check_sign_in(limiter, "nino", "203.0.113.1", per_address)
            await sign_in_failed(limiter, "nino", "203.0.113.1", per_user, per_address)
        with pytest.raises(RateLimited):
            await check_sign_in(limiter, "nino", "203.0.113.2", per_address)
    finally:
        await limiter.close()
