"""The audit trail: every staff and device action lands in the `audit` table in its own
transaction, is read back filtered and paged (JSON) or as CSV by a manager (their branch) or an
admin (all), and outlives the replay history, which is pruned by count."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from queue_server.store.audit import prune_audit
from queue_server.store.events import prune_events
from tests.support import LiveServer

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
COUNTER = f"{B}/counters/c01"


async def test_staff_and_device_actions_are_in_the_trail_filtered_paged_and_as_csv(
    live_server: LiveServer,
) -> None:
    async with live_server.client("kiosk") as kiosk:
        ticket = (await kiosk.post(f"{B}/tickets", json={"service_id": "id_card"})).json()
    async with live_server.client(None) as phone:
        assert (await phone.post(f"{B}/tickets", json={"service_id": "stamp"})).status_code == 201
    async with live_server.client("operator") as operator:
        steps = (("open", None), ("call-next", None), ("start", None),
                 ("finish", {"outcome": "served"}), ("pause", {"reason": "lunch"}))  # fmt: skip
        for step, body in steps:
            response = await operator.post(f"{COUNTER}/{step}", json=body)
            assert response.status_code == 200, response.text
        refused = await operator.get("/api/v1/audit")
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role")
    async with live_server.client("manager") as manager:
        assert (await manager.post(f"{COUNTER}/take-over")).status_code == 200
        everything = (await manager.get("/api/v1/audit")).json()["entries"]
        mine = await manager.get("/api/v1/audit", params={"person": "operator-testhall"})
        counters = await manager.get("/api/v1/audit", params={"kind": "counter"})
        kiosks = await manager.get("/api/v1/audit", params={"device": "kiosk"})
        tomorrow = await manager.get("/api/v1/audit", params={"from": "2999-01-01"})
        first = (await manager.get("/api/v1/audit", params={"limit": 2})).json()
        second = await manager.get(
            "/api/v1/audit", params={"limit": 2, "before": first["next_before"]}
        )
        exported = await manager.get("/api/v1/audit.csv", params={"person": "operator-testhall"})
        elsewhere = await manager.get("/api/v1/audit", params={"branch": "otherhall"})
        bad = await manager.get("/api/v1/audit", params={"from": "yesterday"})
    async with live_server.client("admin") as admin:
        for_admin = await admin.get("/api/v1/audit", params={"branch": BRANCH})

    done = [(e["kind"], e["target"]) for e in reversed(mine.json()["entries"])]
    assert done == [
        ("counter.opened", "c01"),
        ("ticket.called", ticket["label"]),
        ("ticket.started", ticket["label"]),
        ("ticket.finished", ticket["label"]),
        ("counter.paused", "c01"),
    ]
    assert mine.json()["entries"][0]["detail"]["pause_reason"] == "lunch"
    assert {e["kind"] for e in counters.json()["entries"]} == {
        "counter.opened", "counter.paused", "counter.taken_over",
    }  # fmt: skip
    [issued] = kiosks.json()["entries"]
    assert (issued["kind"], issued["role"], issued["target"]) == (
        "ticket.issued", "kiosk", ticket["label"],
    )  # fmt: skip
    # Anonymous phones are citizens: not in the staff and device trail.
    assert all(e["role"] != "anonymous" and e["actor"] != "anonymous" for e in everything)
    assert everything[0]["kind"] == "counter.taken_over"
    assert everything[0]["detail"]["previous_operator"] == "operator-testhall"
    assert tomorrow.json() == {"entries": [], "next_before": None}
    ids = [e["id"] for e in first["entries"] + second.json()["entries"]]
    assert ids == [e["id"] for e in everything[:4]]

    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert table[0] == ["at", "branch", "actor", "role", "person", "device", "kind", "target",
                        "detail"]  # fmt: skip
    assert [row[6] for row in table[1:]] == [e["kind"] for e in mine.json()["entries"]]

    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden_branch")
    assert (bad.status_code, bad.json()["code"]) == (422, "validation_failed")
    assert bad.json()["details"]["fields"][0]["field"] == "from"
    assert [e["id"] for e in for_admin.json()["entries"]] == [e["id"] for e in everything]


async def test_the_trail_outlives_the_replay_history_and_is_pruned_by_age(
    sqlite_server: LiveServer,
) -> None:
    server = sqlite_server
    toggles = 30
    async with server.client("operator") as operator:
        assert (await operator.post(f"{COUNTER}/open")).status_code == 200
        for _ in range(toggles):
            await operator.post(f"{COUNTER}/pause", json={"reason": "phone"})
            await operator.post(f"{COUNTER}/open")
    database = server.rigi.database
    pruned = server.run(database.transaction(lambda c: prune_events(c, BRANCH, keep=10)))
    assert pruned > 0
    async with server.client("manager") as manager:
        trail = (await manager.get("/api/v1/audit", params={"limit": 500})).json()["entries"]
    assert len([e for e in trail if e["person"] == "operator-testhall"]) == 1 + 2 * toggles

    now = server.rigi.store.clock()
    kept = server.run(database.transaction(lambda c: prune_audit(c, now - timedelta(days=1))))
    assert kept == 0  # nothing is older than a day
    dropped = server.run(database.transaction(lambda c: prune_audit(c, now + timedelta(days=1))))
    assert dropped == len(trail)
