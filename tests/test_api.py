"""The ticketing API against a real server, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support import LiveServer

B = "/api/v1/branches/testhall"


def counter(number: int) -> str:
    return f"{B}/counters/c{number:02d}"


async def issue(client: httpx.AsyncClient, service: str = "id_card", **body: object) -> dict:
    response = await client.post(f"{B}/tickets", json={"service_id": service, **body})
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_citizen_takes_a_ticket_and_two_counters_serve_the_queue(
    live_server: LiveServer,
) -> None:
    async with live_server.client("manager") as client:
        first = await issue(client, language="en")
        second = await issue(client)
        passport = await issue(client, "passport")
        assert (first["label"], second["label"], passport["label"]) == ("A001", "A002", "P001")
        assert first["service_name"] == "ID card"
        assert second["service_name"] == "პირადობის მოწმობა"
        assert first["status"] == "waiting" and second["people_ahead"] == 1

        for number in (1, 2):
            assert (await client.post(counter(number) + "/open")).status_code == 200
        called = (await client.post(counter(1) + "/call-next")).json()
        assert called["id"] == first["id"] and called["counter_number"] == 1
        assert "waited" in called["reason"]
        other = (await client.post(counter(2) + "/call-next")).json()
        assert other["id"] != first["id"]

        mine = (await client.get(f"/api/v1/tickets/{second['id']}")).json()
        assert mine["status"] == "called" or mine["people_ahead"] == 0

        assert (await client.post(counter(1) + "/recall")).json()["recalls"] == 1
        assert (await client.post(counter(1) + "/start")).json()["status"] == "serving"
        done = await client.post(counter(1) + "/finish", json={"outcome": "served"})
        assert done.json()["status"] == "done"
        final = (await client.get(f"/api/v1/tickets/{first['id']}")).json()
        assert final["status"] == "done"

        board = (await client.get(f"{B}/snapshot")).json()
        assert board["seq"] >= 9
        # A001 was recalled after A002 was called: a recall is the newest call on the board.
        assert [c["label"] for c in board["board"]["calls"]][:2] == ["A001", other["label"]]


async def test_a_retried_kiosk_request_gets_the_same_ticket(live_server: LiveServer) -> None:
    async with live_server.client("manager") as client:
        headers = {"Idempotency-Key": "kiosk-7-req-1"}
        body = {"service_id": "id_card"}
        first = await client.post(f"{B}/tickets", json=body, headers=headers)
        again = await client.post(f"{B}/tickets", json=body, headers=headers)
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"]
        changed = await client.post(
            f"{B}/tickets", json={"service_id": "passport"}, headers=headers
        )
        assert changed.status_code == 409
        assert changed.json()["code"] == "idempotency_key_reused"
        assert (await issue(client))["label"] == "A002"


async def test_a_crowd_at_the_kiosks_gets_one_number_each_in_order(
    live_server: LiveServer,
) -> None:
    """Tickets asked for at the same moment are written together (group commit), yet each
    gets its own number, its own place in the line and its own event; retries and reused
    keys inside one batch are answered as if they had come one by one."""
    async with live_server.client("manager", timeout=60) as client:

        async def post(service: str, key: str | None = None) -> httpx.Response:
            headers = {"Idempotency-Key": key} if key else {}
            return await client.post(f"{B}/tickets", json={"service_id": service}, headers=headers)

        before = (await client.get(f"{B}/snapshot")).json()["seq"]
        crowd = await asyncio.gather(*(post("stamp") for _ in range(40)))
        assert {r.status_code for r in crowd} == {201}
        stamps = sorted((r.json() for r in crowd), key=lambda t: t["number"])
        assert [t["number"] for t in stamps] == list(range(1, 41))
        # Everyone waits behind exactly those who were given earlier numbers.
        assert [t["people_ahead"] for t in stamps] == list(range(40))

        retried = [post("id_card", f"kiosk-{n}") for n in range(5) for _ in range(2)]
        reused = [post("id_card", "kiosk-x"), post("passport", "kiosk-x")]
        answers = await asyncio.gather(*retried, *reused)
        for first, again in zip(answers[0:10:2], answers[1:10:2], strict=True):
            assert sorted((first.status_code, again.status_code)) == [200, 201]
            assert first.json()["id"] == again.json()["id"]
        assert sorted(r.status_code for r in answers[10:]) == [201, 409]
        refused = next(r for r in answers[10:] if r.status_code == 409)
        assert refused.json()["code"] == "idempotency_key_reused"
        issued = {r.json()["id"]: r.json() for r in answers if r.status_code == 201}
        assert len(issued) == 6
        for letter in ("A", "P"):
            numbers = sorted(t["number"] for t in issued.values() if t["letter"] == letter)
            assert numbers == list(range(1, len(numbers) + 1))

        # One event per new ticket, none for the retries and the refusal.
        snapshot = (await client.get(f"{B}/snapshot")).json()
        assert snapshot["seq"] == before + 40 + 6
        waiting = snapshot["board"]["waiting"]
        assert waiting["stamp"] == 40
        assert waiting.get("id_card", 0) + waiting.get("passport", 0) == 6


async def test_a_counter_refuses_what_its_state_does_not_allow(live_server: LiveServer) -> None:
    async with live_server.client("manager") as client:
        closed = await client.post(counter(1) + "/call-next")
        assert (closed.status_code, closed.json()["code"]) == (409, "counter_not_open")
        await client.post(counter(1) + "/open")
        empty = await client.post(counter(1) + "/call-next")
        assert (empty.status_code, empty.json()["code"]) == (404, "queue_empty")
        nothing = await client.post(counter(1) + "/start")
        assert nothing.json()["code"] == "no_current_ticket"
        await issue(client)
        await issue(client)
        await client.post(counter(1) + "/call-next")
        busy = await client.post(counter(1) + "/call-next")
        assert (busy.status_code, busy.json()["code"]) == (409, "counter_busy")
        finish_early = await client.post(counter(1) + "/finish", json={})
        assert (finish_early.status_code, finish_early.json()["code"]) == (
            409,
            "illegal_transition",
        )
        closing = await client.post(counter(1) + "/close")
        assert closing.json()["code"] == "counter_busy"
        paused = await client.post(counter(2) + "/pause", json={"reason": "lunch"})
        assert paused.json()["code"] == "counter_closed"


async def test_no_show_recycle_and_cancel(live_server: LiveServer) -> None:
    async with live_server.client("manager") as client:
        first, second = await issue(client), await issue(client)
        await client.post(counter(1) + "/open")
        await client.post(counter(1) + "/call-next")
        back = (await client.post(counter(1) + "/recycle")).json()
        assert back["status"] == "waiting" and back["id"] == first["id"]
        again = (await client.post(counter(1) + "/call-next")).json()
        assert again["id"] == first["id"]
        assert (await client.post(counter(1) + "/no-show")).json()["status"] == "no_show"
        cancelled = await client.post(f"/api/v1/tickets/{second['id']}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        twice = await client.post(f"/api/v1/tickets/{second['id']}/cancel")
        assert (twice.status_code, twice.json()["code"]) == (409, "illegal_transition")
        empty = await client.post(counter(1) + "/call-next")
        assert empty.json()["code"] == "queue_empty"


async def test_a_transfer_keeps_the_number_and_the_time_waited(live_server: LiveServer) -> None:
    async with live_server.client("manager") as client:
        ticket = await issue(client)
        for number in (1, 2, 3):
            await client.post(counter(number) + "/open")
        await client.post(counter(1) + "/call-next")
        await client.post(counter(1) + "/start")
        moved = await client.post(counter(1) + "/transfer", json={"service_id": "passport"})
        assert moved.status_code == 200, moved.text
        new = moved.json()["transferred_to"]
        assert new["label"] == ticket["label"] and new["service_id"] == "passport"
        assert new["issued_at"] == ticket["issued_at"]
        old = (await client.get(f"/api/v1/tickets/{ticket['id']}")).json()
        assert old["status"] == "transferred" and old["transferred_to"] == new["id"]
        # c02 serves only ID cards; c03 serves passports and takes the transferred visit.
        assert (await client.post(counter(2) + "/call-next")).json()["code"] == "queue_empty"
        assert (await client.post(counter(3) + "/call-next")).json()["id"] == new["id"]
        await client.post(counter(3) + "/start")
        to_counter = await client.post(counter(3) + "/transfer", json={"counter_id": "c02"})
        bound = to_counter.json()["transferred_to"]
        assert (await client.post(counter(2) + "/call-next")).json()["id"] == bound["id"]


async def test_numbers_continue_after_a_restart(settings, database_url) -> None:
    server = LiveServer(settings).start()
    try:
        async with server.client("manager") as client:
            await issue(client)
            await issue(client)
    finally:
        server.stop()
    server = LiveServer(settings).start()
    try:
        async with server.client("manager") as client:
            assert (await issue(client))["label"] == "A003"
    finally:
        server.stop()


async def test_numbering_starts_again_at_one_on_a_new_tbilisi_day(settings) -> None:
    now = [datetime(2026, 11, 23, 19, 58, tzinfo=UTC)]  # 23:58 in Tbilisi
    server = LiveServer(settings, clock=lambda: now[0]).start()
    try:
        async with server.client("manager") as client:
            assert (await issue(client))["label"] == "A001"
            assert (await issue(client))["label"] == "A002"
            now[0] += timedelta(minutes=3)  # 00:01 the next day
            assert (await issue(client))["label"] == "A001"
            assert (await issue(client, "passport"))["label"] == "P001"
    finally:
        server.stop()


async def test_fifty_concurrent_calls_from_ten_counters_call_each_ticket_once(
    live_server: LiveServer,
) -> None:
    async with live_server.client("manager", timeout=60) as client:
        for _ in range(200):
            await issue(client, "stamp")
        for number in range(1, 11):
            assert (await client.post(counter(number) + "/open")).status_code == 200

        called: list[str] = []

        async def operator(number: int) -> None:
            while True:
                response = await client.post(counter(number) + "/call-next")
                body = response.json()
                if response.status_code == 200:
                    called.append(body["id"])
                    await client.post(counter(number) + "/no-show")
                elif body["code"] == "queue_empty":
                    return
                else:
                    assert body["code"] in ("counter_busy", "no_current_ticket"), body
                    await client.post(counter(number) + "/no-show")

        # Five request streams per counter: 50 call-next requests in flight at once.
        await asyncio.gather(*(operator(n) for n in range(1, 11) for _ in range(5)))
        assert len(called) == 200
        assert len(set(called)) == 200
        queues = (await client.get(f"{B}/queues")).json()
        assert all(q["waiting"] == 0 for q in queues)


async def test_a_browser_display_can_fetch_the_spoken_call_as_wav(live_server: LiveServer) -> None:
    import shutil
    import wave
    from io import BytesIO

    if shutil.which("espeak-ng") is None:
        pytest.skip("install espeak-ng (Debian package espeak-ng) for speech")
    path = f"{B}/announcement.wav?letter=A&number=12&counter=5&languages=ka,en"
    async with live_server.client("display") as display:
        response = await display.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/wav"
        with wave.open(BytesIO(response.content)) as audio:
            seconds = audio.getnframes() / audio.getframerate()
        assert 2.0 < seconds < 20.0
        again = await display.get(path)
        assert again.content == response.content
        bad = await display.get(f"{B}/announcement.wav?letter=AA&number=0&counter=5")
        assert (bad.status_code, bad.json()["code"]) == (422, "bad_announcement")
    async with live_server.client(None) as anonymous:
        assert (await anonymous.get(path)).status_code == 401


async def test_a_crash_in_the_speech_engine_costs_one_announcement_not_the_server(
    live_server: LiveServer,
) -> None:
    """espeak-ng runs in a worker process: when it dies (here: SIGKILL, as a segfault would),
    that announcement gets 503 and the next one a fresh worker; the queue server goes on."""
    import os
    import shutil
    import signal

    if shutil.which("espeak-ng") is None:
        pytest.skip("install espeak-ng (Debian package espeak-ng) for speech")
    path = f"{B}/announcement.wav?letter=B&number=7&counter=2&languages=ka"
    async with live_server.client("display") as display:
        assert (await display.get(path)).status_code == 200
        (worker,) = live_server.rigi.speech.worker_pids()
        os.kill(worker, signal.SIGKILL)
        lost = await display.get(path.replace("number=7", "number=8"))
        assert (lost.status_code, lost.json()["code"]) == (503, "speech_unavailable")
        assert (await display.get("/healthz")).status_code == 200
        again = await display.get(path.replace("number=7", "number=9"))
        assert again.status_code == 200 and again.headers["content-type"] == "audio/wav"
        assert live_server.rigi.speech.worker_pids() != [worker]


async def test_health_and_readiness_answer_for_load_balancers(live_server: LiveServer) -> None:
    async with live_server.client(None) as anonymous:
        health = await anonymous.get("/healthz")
        ready = await anonymous.get("/readyz")
        for _ in range(600):  # not ready while the wait forecast loads (tests/test_readiness.py)
            if ready.status_code != 503 or ready.json()["code"] != "not_ready":
                break
            await asyncio.sleep(0.05)
            ready = await anonymous.get("/readyz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        spec = (await anonymous.get("/openapi.json")).json()
        assert "/api/v1/branches/{branch}/tickets" in spec["paths"]
        assert (await anonymous.get("/docs")).status_code == 200


async def test_the_wait_estimate_learns_service_times_from_the_day(settings) -> None:
    now = [datetime(2026, 11, 23, 6, 0, tzinfo=UTC)]  # 10:00 in Tbilisi
    server = LiveServer(settings, clock=lambda: now[0]).start()
    try:
        async with server.client("manager") as client:

            async def take() -> dict:
                now[0] += timedelta(seconds=1)  # citizens arrive one after another
                return await issue(client)

            await client.post(counter(2) + "/open")  # c02 serves ID cards and extracts
            await take()
            before = await take()  # one ahead, configured 5 min a visit
            await client.post(counter(2) + "/call-next")
            await client.post(counter(2) + "/no-show")
            await client.post(counter(2) + "/call-next")
            await client.post(counter(2) + "/no-show")
            for _ in range(3):  # three ID cards that take 20 minutes each, not 5
                await take()
                await client.post(counter(2) + "/call-next")
                await client.post(counter(2) + "/start")
                now[0] += timedelta(minutes=20)
                await client.post(counter(2) + "/finish", json={})
            now[0] += timedelta(minutes=2)  # past the reuse window of learned times
            await take()
            after = await take()
        assert (before["people_ahead"], after["people_ahead"]) == (1, 1)
        assert before["wait_minutes"] <= 5
        assert after["wait_minutes"] >= 3 * before["wait_minutes"]
        assert after["wait_minutes"] >= 15
    finally:
        server.stop()
