"""`/metrics` on a real server: the numbers follow what happened, and scrapes are guarded."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from queue_server.errors import NotFound
from queue_server.ops.exposition import _admit
from queue_server.settings import Settings
from tests.support import LiveServer, test_settings

B = "/api/v1/branches/testhall"
C1 = f"{B}/counters/c01"
ISSUE_ROUTE = "/api/v1/branches/{branch}/tickets"
CALL_ROUTE = "/api/v1/branches/{branch}/counters/{counter}/call-next"
METRICS_TOKEN = "scrape-me-please-0123456789"
Sample = tuple[str, frozenset[tuple[str, str]]]


async def scrape(client: httpx.AsyncClient, **options: object) -> dict[Sample, float]:
    response = await client.get("/metrics", **options)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    """A sample's value; 0 for a series that does not exist yet (a counter never touched)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(
    before: dict[Sample, float], after: dict[Sample, float], name: str, **labels: str
) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}", tmp_path, metrics_sample_s=0.05
    )
    live = LiveServer(settings).start()
    yield live
    live.stop()


async def test_a_scrape_counts_the_tickets_issued_and_called_and_times_them(
    server: LiveServer,
) -> None:
    async with server.client("manager") as client:
        before = await scrape(client)
        issued = [
            (await client.post(f"{B}/tickets", json={"service_id": "id_card"})).json()
            for _ in range(3)
        ]
        assert all(ticket["status"] == "waiting" for ticket in issued)
        assert (await client.post(C1 + "/open")).status_code == 200
        async with connect(f"{server.ws_url}/ws/branches/testhall/board") as board:
            await board.send(json.dumps({"type": "hello", "token": server.device_token("display")}))
            assert json.loads(await board.recv())["type"] == "snapshot"
            for _ in range(2):
                assert (await client.post(C1 + "/call-next")).status_code == 200
                assert (await client.post(C1 + "/start")).status_code == 200
                done = await client.post(C1 + "/finish", json={"outcome": "served"})
                assert done.status_code == 200, done.text
            assert (await client.post(C1 + "/call-next")).status_code == 200
            assert (await client.post(C1 + "/recall")).status_code == 200
            during = await scrape(client)
        for _ in range(100):  # the server notices the closed board a moment later
            after = await scrape(client)
            if value(after, "rigi_feed_connections", kind="board") == value(
                before, "rigi_feed_connections", kind="board"
            ):
                break
            await asyncio.sleep(0.02)

    assert grew(before, during, "rigi_tickets_issued_total", branch="testhall") == 3
    assert grew(before, during, "rigi_calls_total", branch="testhall", outcome="called") == 3
    assert grew(before, during, "rigi_calls_total", branch="testhall", outcome="recalled") == 1
    assert (
        grew(before, during, "rigi_visits_ended_total", branch="testhall", outcome="finished") == 2
    )
    assert grew(before, during, "rigi_wait_seconds_count", branch="testhall") == 3
    assert grew(before, during, "rigi_service_seconds_count", branch="testhall") == 2
    assert grew(before, during, "rigi_http_request_duration_seconds_count",
                method="POST", route=ISSUE_ROUTE, status="201") == 3  # fmt: skip
    assert grew(before, during, "rigi_http_request_duration_seconds_count",
                method="POST", route=CALL_ROUTE, status="200") == 3  # fmt: skip
    # issued 3, opened 1, called 3, started 2, finished 2, recalled 1: each event published
    assert grew(before, during, "rigi_event_publish_lag_seconds_count") >= 12
    assert grew(before, during, "rigi_feed_connections", kind="board") == 1
    assert grew(before, after, "rigi_feed_connections", kind="board") == 0
    assert value(after, "rigi_db_pool_connections", state="size") >= 1


async def test_every_response_carries_a_request_id_and_a_sane_one_is_kept(
    server: LiveServer,
) -> None:
    async with server.client() as client:
        kept = await client.get(f"{B}", headers={"X-Request-ID": "proxy-42.abc"})
        made = await client.get(f"{B}", headers={"X-Request-ID": "a space; <html> " + "x" * 80})
        none = [await client.get("/healthz") for _ in range(20)]
    assert kept.headers["x-request-id"] == "proxy-42.abc"
    assert made.headers["x-request-id"] not in ("", "a space; <html> " + "x" * 80)
    made_here = {answer.headers["x-request-id"] for answer in none}
    assert len(made_here) == len(none)  # each request its own
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in made_here)


@pytest.fixture
def guarded(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}", tmp_path, **request.param
    )
    live = LiveServer(settings).start()
    yield live
    live.stop()


@pytest.mark.parametrize("guarded", [{"metrics_token": METRICS_TOKEN}], indirect=True)
async def test_with_a_token_configured_only_its_holder_may_scrape(guarded: LiveServer) -> None:
    async with guarded.client() as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope-nope-nope"})
        await scrape(client, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        posted = await client.post("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert (posted.status_code, posted.json()["code"]) == (405, "method_not_allowed")
    for refused in (missing, wrong):
        assert refused.status_code == 401
        assert refused.json()["code"] == "metrics_unauthorized"
        assert "rigi_" not in refused.text


@pytest.mark.parametrize("guarded", [{"metrics_allow": ("10.0.0.0/8",)}], indirect=True)
async def test_an_address_outside_the_allowlist_is_refused(guarded: LiveServer) -> None:
    async with guarded.client() as client:
        refused = await client.get("/metrics")
    assert (refused.status_code, refused.json()["code"]) == (403, "metrics_forbidden")


@pytest.mark.parametrize("guarded", [{"metrics_allow": ("127.0.0.0/8", "::1")}], indirect=True)
async def test_an_address_on_the_allowlist_scrapes_without_a_token(guarded: LiveServer) -> None:
    async with guarded.client() as client:
        samples = await scrape(client)
    assert any(name == "rigi_bus_reconnects_total" for name, _ in samples)


@pytest.mark.parametrize(
    "guarded",
    [{"env": "production", "secret_key": "vT3kQ9zL-w8Rb2pXn5Hd7YcF0mJs4GaE6uKq1NiO"}],
    indirect=True,
)
async def test_in_production_metrics_do_not_exist_until_access_is_configured(
    guarded: LiveServer,
) -> None:
    async with guarded.client() as client:
        response = await client.get("/metrics")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_in_development_only_loopback_may_scrape_an_unguarded_server(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    _admit({"type": "http", "client": ("127.0.0.1", 5000), "headers": []}, settings)
    _admit({"type": "http", "client": ("::1", 5000), "headers": []}, settings)
    with pytest.raises(NotFound):
        _admit({"type": "http", "client": ("192.0.2.7", 5000), "headers": []}, settings)


def test_a_bad_allowlist_entry_stops_start_up_by_name() -> None:
    from queue_server.settings import load_settings

    with pytest.raises(SystemExit, match="RIGI_METRICS_ALLOW"):
        load_settings(metrics_allow=("not-a-network",))


def _base_name(name: str) -> str:
    for suffix in ("_bucket", "_count", "_sum", "_total"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


async def test_the_grafana_dashboard_queries_only_metrics_the_server_exports(
    server: LiveServer,
) -> None:
    dashboard = json.loads((Path(__file__).parent.parent / "deploy/grafana/rigi.json").read_text())
    queried = {
        _base_name(name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\brigi_[a-z_]+", target["expr"])
    }
    async with server.client() as client:
        exported = {
            family.name
            for family in text_string_to_metric_families((await client.get("/metrics")).text)
        }
    assert len(queried) >= 12
    assert queried <= exported, queried - exported
