"""Notifications survive what production does to processes: two `queue-server serve` processes
on PostgreSQL and Redis send every message exactly once between them, and a server killed with
SIGKILL between a ticket's "near" and its "called" (in the middle of sending it) loses and
doubles nothing once it restarts on the same database. The local SMS gateway counts every
request it gets, repeats included."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.notify.helpers import Gateway, until
from tests.support import (
    PASSWORD,
    POSTGRES_ENV,
    TEST_CATALOG,
    free_port,
    in_the_hall,
    manager_and_display,
    need_service,
    own_redis,
    reset_postgres,
)
from tests.test_scaleout import _wait_ready

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
MANAGER = "manager-notify"
TICKETS = 60
SUBSCRIBED_EVERY = 2  # every second ticket leaves a number: 30 citizens
COUNTERS = ("c01", "c02", "c03", "c04")
SECRET = "notify-process-test-secret-" + "x" * 32
LEASE_S = 2  # a claim of a killed process is taken over this soon (the default is 60)
KINDS_EVERY_TICKET = ("called", "finished")
SENT_WITHIN_S = 120  # a bound so a broken build fails instead of hanging, not a measurement


def _environment(
    database_url: str, data_dir: Path, gateway: Gateway, **extra: str
) -> dict[str, str]:
    return (
        os.environ
        | {
            "RIGI_DATABASE_URL": database_url,
            "RIGI_CONFIG": str(TEST_CATALOG),
            "RIGI_DATA_DIR": str(data_dir),
            "RIGI_SECRET_KEY": SECRET,
            "RIGI_ISSUE_RATE_DEVICE": "100000/minute",
            "RIGI_ISSUE_RATE_ADDRESS": "100000/minute",
            "RIGI_NOTIFY_SMS_URL": gateway.sms_url,
            "RIGI_NOTIFY_RECIPIENT_RATE": "1000/minute",
            "RIGI_NOTIFY_LEASE_S": str(LEASE_S),
            "RIGI_LOG_LEVEL": "warning",
        }
        | extra
    )


class Processes:
    """`queue-server serve` processes started, killed and stopped by the test."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.running: list[subprocess.Popen[bytes]] = []
        command = [sys.executable, "-m", "queue_server", "migrate"]
        subprocess.run(command, env=env, check=True, timeout=60, capture_output=True)

    def start(self) -> str:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "queue_server", "serve", "--port", str(port)], env=self.env
        )
        self.running.append(process)
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, process)
        return url

    def stop(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.terminate()
        for process in self.running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    local = Gateway()
    yield local
    local.stop()


async def _manager(url: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=30)
    response = await client.post(
        "/api/v1/session", json={"username": MANAGER, "password": PASSWORD}
    )
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def _phone(n: int) -> str:
    return f"+99559900{n:04d}"


async def _issue_and_subscribe(urls: list[str], count: int) -> dict[str, str]:
    """Issue `count` tickets on the processes in turn; every second one subscribes a number on
    the other process. Returns ticket id → number."""
    subscribed = {}
    async with httpx.AsyncClient(timeout=30, headers=in_the_hall(SECRET)) as phone:
        for n in range(count):
            url = urls[n % len(urls)]
            issued = await phone.post(f"{url}{B}/tickets", json={"service_id": "stamp"})
            assert issued.status_code == 201, issued.text
            if n % SUBSCRIBED_EVERY == 0:
                ticket_id = issued.json()["id"]
                other = urls[(n + 1) % len(urls)]
                answer = await phone.post(
                    f"{other}/api/v1/tickets/{ticket_id}/subscribe", json={"phone": _phone(n)}
                )
                assert answer.status_code == 200, answer.text
                subscribed[ticket_id] = _phone(n)
    return subscribed


async def _serve(client: httpx.AsyncClient, counter: str) -> dict[str, Any] | None:
    called = await client.post(f"{B}/counters/{counter}/call-next")
    if called.status_code != 200:
        assert called.json()["code"] == "queue_empty", called.text
        return None
    assert (await client.post(f"{B}/counters/{counter}/start")).status_code == 200
    finished = await client.post(f"{B}/counters/{counter}/finish", json={"outcome": "served"})
    assert finished.status_code == 200, finished.text
    return called.json()  # type: ignore[no-any-return]


async def _outbox(url: str) -> list[dict[str, Any]]:
    client = await _manager(url)
    try:
        response = await client.get(f"{B}/notify/messages")
    finally:
        await client.aclose()
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _delivered(gateway: Gateway) -> dict[str, list[str]]:
    """What each number received, by the outbox message's reference."""
    by_number: dict[str, list[str]] = {}
    for message in gateway.sent:
        by_number.setdefault(message["to"], []).append(message["reference"])
    return by_number


@pytest.fixture
def postgres_url() -> str:
    """A database of this test's own beside the configured one: a server thread of an earlier
    test that is slow to stop (a loaded machine) must not claim these processes' messages."""
    url = need_service(POSTGRES_ENV, "PostgreSQL")
    base, _, name = url.rpartition("/")
    own = f"{name}_processes"

    async def create() -> None:
        import asyncpg

        conn = await asyncpg.connect(f"{base}/{name}".replace("+asyncpg", ""), timeout=5)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", own):
                await conn.execute(f'CREATE DATABASE "{own}"')
        finally:
            await conn.close()

    asyncio.run(create())
    reset_postgres(f"{base}/{own}")
    return f"{base}/{own}"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.timeout(300)  # two servers started and 60 visits served on a machine of 2 cores
async def test_two_processes_send_every_message_exactly_once(
    postgres_url: str, tmp_path: Path, gateway: Gateway
) -> None:
    database_url = postgres_url
    with own_redis(tmp_path / "redis") as redis:
        env = _environment(database_url, tmp_path, gateway, RIGI_BUS_URL=redis.url)
        processes = Processes(env)
        await manager_and_display(database_url, MANAGER, BRANCH)
        try:
            urls = [processes.start(), processes.start()]
            subscribed = await _issue_and_subscribe(urls, TICKETS)
            operators = [await _manager(urls[i % 2]) for i in range(len(COUNTERS))]

            async def work(client: httpx.AsyncClient, counter: str) -> int:
                assert (await client.post(f"{B}/counters/{counter}/open")).status_code == 200
                served = 0
                while await _serve(client, counter) is not None:
                    served += 1
                return served

            served = await asyncio.gather(
                *(work(c, counter) for c, counter in zip(operators, COUNTERS, strict=True))
            )
            for client in operators:
                await client.aclose()
            assert sum(served) == TICKETS
            expected_at_least = len(subscribed) * len(KINDS_EVERY_TICKET)
            await until(lambda: len(gateway.sent) >= expected_at_least, SENT_WITHIN_S)
            outbox = await _outbox(urls[0])
            await until(lambda: len(gateway.sent) >= len(outbox), SENT_WITHIN_S)
            await asyncio.sleep(LEASE_S + 1.5)  # a doubled send would have arrived by now
            outbox = await _outbox(urls[1])
        finally:
            processes.stop()
    by_ticket: dict[str, list[str]] = {}
    for message in outbox:
        assert message["state"] == "sent", message
        by_ticket.setdefault(message["ticket_id"], []).append(message["kind"])
    assert set(by_ticket) == set(subscribed)
    for kinds in by_ticket.values():
        assert sorted(kinds) in (["called", "finished"], ["called", "finished", "near"])
    # Every message of the outbox reached its number exactly once, and no request repeated.
    references = {f"rigi-{m['id']}": subscribed[m["ticket_id"]] for m in outbox}
    assert len(gateway.sent) == len(outbox)
    assert {m["reference"]: m["to"] for m in gateway.sent} == references
    assert gateway.repeated == 0


async def test_a_server_killed_between_near_and_called_loses_and_doubles_nothing(
    tmp_path: Path, gateway: Gateway
) -> None:
    # The embedded default: a hall's single process on its SQLite file (PostgreSQL's claims
    # and leases are the two-process test's).
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}"
    env = _environment(database_url, tmp_path, gateway)
    processes = Processes(env)
    await manager_and_display(database_url, MANAGER, BRANCH)
    try:
        url = processes.start()
        subscribed = await _issue_and_subscribe([url], 12)
        target, number = list(subscribed.items())[3]  # the 7th ticket in line
        operator = await _manager(url)
        assert (await operator.post(f"{B}/counters/c01/open")).status_code == 200

        def target_got(kinds: int) -> bool:
            return len(_delivered(gateway).get(number, ())) >= kinds

        while not target_got(1):  # serve the ones ahead until the target hears "near"
            assert (await _serve(operator, "c01")) is not None
            await asyncio.sleep(0.1)
        # The operator's gateway hangs: the server is in the middle of sending "called" when
        # it is killed (the worst moment: the gateway may or may not have sent it).
        gateway.hold()
        while True:
            called = await operator.post(f"{B}/counters/c01/call-next")
            assert called.status_code == 200, called.text
            if called.json()["id"] == target:
                break
            assert (await operator.post(f"{B}/counters/c01/start")).status_code == 200
            finish = await operator.post(f"{B}/counters/c01/finish", json={"outcome": "served"})
            assert finish.status_code == 200
        await until(lambda: gateway.held >= 1, 10, "the server to send 'called'")
        await operator.aclose()
        killed = processes.running[-1]
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        gateway.release()  # the held send goes through: the server never heard it did

        url = processes.start()  # the same database
        operator = await _manager(url)
        try:
            assert (await operator.post(f"{B}/counters/c01/start")).status_code == 200
            finish = await operator.post(f"{B}/counters/c01/finish", json={"outcome": "served"})
            assert finish.status_code == 200
            while await _serve(operator, "c01") is not None:
                pass
        finally:
            await operator.aclose()
        await until(lambda: target_got(3), SENT_WITHIN_S, "'called' and 'finished' after restart")
        outbox = await _outbox(url)
        await until(lambda: len(gateway.sent) >= len(outbox), SENT_WITHIN_S)
        await asyncio.sleep(LEASE_S + 1.5)  # a doubled send would have arrived by now
        outbox = await _outbox(url)
    finally:
        processes.stop()
    kinds = {m["id"]: m["kind"] for m in outbox if m["ticket_id"] == target}
    assert sorted(kinds.values()) == ["called", "finished", "near"]
    # The citizen got each once; nothing in the outbox is left unsent or sent twice.
    assert sorted(_delivered(gateway)[number]) == sorted(f"rigi-{i}" for i in kinds)
    assert all(m["state"] == "sent" for m in outbox)
    assert len(gateway.sent) == len(outbox)
    assert len({m["reference"] for m in gateway.sent}) == len(gateway.sent)
    for ticket_id in subscribed:
        told = sorted(m["kind"] for m in outbox if m["ticket_id"] == ticket_id)
        assert told in (["called", "finished"], ["called", "finished", "near"])
    # The send cut short by the kill was repeated once, and the gateway dropped the repeat.
    assert gateway.repeated == gateway.held >= 1
