"""Feedback after service and the unspoken-call alert, against a real server on SQLite and
PostgreSQL: a citizen rates a finished visit once, the comment never reaches a board, the
manager reads the mean per service; a display that could not speak a call tells staff."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.support import LiveServer

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
RECV_TIMEOUT_S = 10.0
COMMENT = "The clerk explained the form twice, very patient."


def counter(number: int) -> str:
    return f"{B}/counters/c{number:02d}"


async def _finished_visit(live_server: LiveServer, service_id: str = "id_card") -> str:
    """A kiosk ticket that counter 2 (id cards, stamps) calls, serves and finishes; returns its
    id. Opening an open counter again is refused, harmlessly."""
    async with live_server.client("kiosk") as kiosk, live_server.client("operator") as operator:
        issued = await kiosk.post(f"{B}/tickets", json={"service_id": service_id})
        assert issued.status_code == 201, issued.text
        ticket_id: str = issued.json()["id"]
        await operator.post(counter(2) + "/open")
        called = await operator.post(counter(2) + "/call-next")
        assert called.json()["id"] == ticket_id
        await operator.post(counter(2) + "/start")
        done = await operator.post(counter(2) + "/finish", json={"outcome": "served"})
        assert done.json()["status"] == "done", done.text
    return ticket_id


async def _frames_until(ws: ClientConnection, kind: str) -> list[str]:
    """Raw frames up to and including the first event of `kind`."""
    frames: list[str] = []
    while True:
        frame = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
        assert isinstance(frame, str)
        frames.append(frame)
        message = json.loads(frame)
        if message.get("type") == "event" and message.get("kind") == kind:
            return frames


async def test_a_citizen_rates_a_finished_visit_once_and_the_manager_sees_the_mean(
    live_server: LiveServer,
) -> None:
    async with live_server.client("kiosk") as kiosk, live_server.client() as phone:
        waiting = (await kiosk.post(f"{B}/tickets", json={"service_id": "passport"})).json()
        early = await phone.post(f"/api/v1/tickets/{waiting['id']}/feedback", json={"rating": 5})
        assert early.status_code == 409
        assert early.json()["code"] == "visit_not_finished"

    ticket_id = await _finished_visit(live_server)
    async with live_server.client("display") as display_client:
        snapshot = (await display_client.get(f"{B}/snapshot")).json()
    url = f"{live_server.ws_url}/ws/branches/{BRANCH}/board"
    async with connect(url) as board, live_server.client() as phone:
        hello = {"type": "hello", "token": live_server.device_token("display"),
                 "epoch": snapshot["epoch"], "after_seq": snapshot["seq"]}  # fmt: skip
        await board.send(json.dumps(hello))
        path = f"/api/v1/tickets/{ticket_id}/feedback"
        too_long = await phone.post(path, json={"rating": 4, "comment": "x" * 501})
        assert too_long.status_code == 422
        out_of_range = await phone.post(path, json={"rating": 6})
        assert out_of_range.status_code == 422
        given = await phone.post(path, json={"rating": 4, "comment": f"  {COMMENT} "})
        assert given.status_code == 200, given.text
        assert given.json() == {"ticket_id": ticket_id, "rating": 4, "comment_kept": True}
        again = await phone.post(path, json={"rating": 1})
        assert again.status_code == 409
        assert again.json()["code"] == "feedback_already_given"
        frames = await _frames_until(board, "ticket.rated")
    assert not any("patient" in frame for frame in frames), "a board must never get a comment"

    kept = live_server.run(_feedback_rows(live_server))  # on the server's loop: its engine
    assert kept == [(4, COMMENT)], "the comment is kept trimmed, and only once"

    second = await _finished_visit(live_server)
    async with live_server.client() as phone:
        await phone.post(f"/api/v1/tickets/{second}/feedback", json={"rating": 5})
    async with live_server.client("manager") as manager:
        summary = (await manager.get(f"{B}/feedback")).json()
        assert summary["ratings"] == 2
        assert summary["mean"] == 4.5
        assert [(s["service_id"], s["ratings"], s["mean"]) for s in summary["services"]] == [
            ("id_card", 2, 4.5)
        ]
        assert "patient" not in json.dumps(summary)
        bad = await manager.get(f"{B}/feedback", params={"from": "2026-13-01"})
        assert bad.status_code == 422 and bad.json()["code"] == "bad_feedback_query"
    async with live_server.client("operator") as operator:
        assert (await operator.get(f"{B}/feedback")).status_code == 403


async def _feedback_rows(live_server: LiveServer) -> list[tuple[Any, ...]]:
    def body(conn: Any) -> list[tuple[Any, ...]]:
        rows = conn.exec_driver_sql("SELECT rating, comment FROM feedback").all()
        return [tuple(r) for r in rows]

    return await live_server.rigi.database.reading(body)  # type: ignore[no-any-return]


async def test_ratings_from_one_address_are_limited(live_server: LiveServer) -> None:
    async with live_server.client() as phone:
        answers = [
            (await phone.post("/api/v1/tickets/nosuchticket/feedback", json={"rating": 3}))
            for _ in range(31)
        ]
    assert {a.json()["code"] for a in answers[:30]} == {"unknown_ticket"}
    assert answers[30].status_code == 429
    assert answers[30].json()["code"] == "rate_limited"


def _report(letter: str, number: int, counter_number: int) -> dict[str, Any]:
    """What display_client sends when espeak-ng wrote no audio (client.py `_not_spoken`)."""
    return {
        "type": "report",
        "code": "speech_failed",
        "message": f"Call {letter}{number} to counter {counter_number} was not spoken: no audio",
        "call": {"letter": letter, "number": number, "counter_number": counter_number, "seq": 7},
    }


async def test_a_display_that_could_not_speak_a_call_tells_the_managers_live_view(
    live_server: LiveServer,
) -> None:
    token = live_server.device_token("display", name="Lobby TV 2")
    url = f"{live_server.ws_url}/ws/branches/{BRANCH}/board"
    async with connect(url) as board:
        await board.send(json.dumps({"type": "hello", "token": token}))
        snapshot = json.loads(await asyncio.wait_for(board.recv(), RECV_TIMEOUT_S))
        assert snapshot["type"] == "snapshot"
        await board.send(json.dumps({"type": "report", "code": "x", "call": {"letter": "??"}}))
        await board.send(json.dumps(_report("A", 12, 3)))
        event = json.loads((await _frames_until(board, "display.unspoken"))[-1])
    assert event["data"] == {}, "a public board gets the event without its data"

    async with live_server.client("manager") as manager:
        alerts = (await manager.get(f"{B}/unspoken-calls")).json()
    assert [(a["display"], a["label"], a["counter_number"], a["code"]) for a in alerts] == [
        ("Lobby TV 2", "A012", 3, "speech_failed")
    ], "one alert: the malformed report was ignored"
    async with live_server.client("operator") as operator:
        assert (await operator.get(f"{B}/unspoken-calls")).status_code == 403


async def test_the_branch_says_which_services_no_open_counter_serves(
    live_server: LiveServer,
) -> None:
    async with live_server.client() as anyone:
        closed = (await anyone.get(B)).json()
    assert {s["id"]: s["served_now"] for s in closed["services"]} == {
        "id_card": False, "passport": False, "stamp": False,
    }  # fmt: skip
    async with live_server.client("operator") as operator:
        await operator.post(counter(2) + "/open")  # serves id_card and stamp
        issued = await operator.post(f"{B}/tickets", json={"service_id": "passport"})
        assert issued.json()["served_now"] is False, "no open counter serves passports"
    async with live_server.client() as anyone:
        opened = (await anyone.get(B)).json()
    assert {s["id"]: s["served_now"] for s in opened["services"]} == {
        "id_card": True, "passport": False, "stamp": True,
    }  # fmt: skip


async def test_operators_read_queues_but_not_the_counters_of_their_colleagues(
    live_server: LiveServer,
) -> None:
    async with live_server.client("operator") as operator:
        assert (await operator.get(f"{B}/queues")).status_code == 200
        refused = await operator.get(f"{B}/counters")
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden_role"
    async with live_server.client("manager") as manager:
        assert (await manager.get(f"{B}/counters")).status_code == 200


async def test_a_rating_needs_a_known_ticket(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as phone:
        answer = await phone.post("/api/v1/tickets/nosuchticket/feedback", json={"rating": 3})
    assert answer.status_code == 404
    assert answer.json()["code"] == "unknown_ticket"
