"""Central follows a centre's tickets and takes the branch back when its node dies: the phone
link and the board of a node's ticket answer at central, "release" is refused while the node
is connected, and afterwards central serves the branch on from the node's last event and
number (real servers: a central and a node on SQLite files, joined over loopback)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from queue_server.store.schema import audit, events
from tests.support import PASSWORD, LiveServer, test_settings

BRANCH = "testhall"
B = f"/api/v1/branches/{BRANCH}"
SYNC_TIMEOUT_S = 20.0


def _signed_in(server: LiveServer, role: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=10)
    name = server.user(role)
    answer = client.post("/api/v1/session", json={"username": name, "password": PASSWORD})
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


def _synced(node: LiveServer) -> None:
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    shipper = node.rigi.node
    while shipper.status(node.rigi.store.clock())["waiting_events"] or not shipper.state.connected:
        assert time.monotonic() < deadline, shipper.status(node.rigi.store.clock())
        time.sleep(0.05)


def _audited(server: LiveServer, kind: str) -> list[Any]:
    async def read() -> list[Any]:
        async with server.rigi.database.read() as conn:
            return list((await conn.execute(select(audit).where(audit.c.kind == kind))).all())

    return server.run(read())  # type: ignore[no-any-return]


def _log(server: LiveServer) -> list[tuple[int, str, str]]:
    async def read() -> list[tuple[int, str, str]]:
        async with server.rigi.database.read() as conn:
            rows = await conn.execute(
                select(events.c.seq, events.c.epoch, events.c.kind)
                .where(events.c.branch_id == BRANCH).order_by(events.c.seq)
            )  # fmt: skip
            return [tuple(row) for row in rows]  # type: ignore[misc]

    return server.run(read())  # type: ignore[no-any-return]


def test_central_follows_a_centre_s_tickets_and_takes_the_branch_back(tmp_path: Path) -> None:
    central = LiveServer(
        test_settings(f"sqlite+aiosqlite:///{tmp_path / 'central.sqlite3'}", tmp_path / "c",
                      node_stale_s=1.0)
    ).start()  # fmt: skip
    node: LiveServer | None = None
    admin = _signed_in(central, "admin")
    try:
        token = admin.post(f"{B}/node-token", json={}).json()["token"]
        node = LiveServer(test_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'node.sqlite3'}", tmp_path / "n",
            node_central_url=central.url, node_token=token, node_branch=BRANCH,
            node_heartbeat_s=0.2,
        )).start()  # fmt: skip
        staff = _signed_in(node, "manager")
        kiosk = {"Authorization": f"Bearer {node.device_token('kiosk')}"}
        issued = [
            httpx.post(f"{node.url}{B}/tickets", json={"service_id": "id_card"}, headers=kiosk,
                       timeout=10).json()
            for _ in range(3)
        ]  # fmt: skip
        assert staff.post(f"{B}/counters/c01/open").status_code == 200
        called = staff.post(f"{B}/counters/c01/call-next")
        assert called.status_code == 200, called.text
        _synced(node)

        # A citizen's phone link and the lobby board answer at central as at the node.
        last = issued[-1]["id"]
        at_node = httpx.get(f"{node.url}/api/v1/tickets/{last}").json()
        at_central = httpx.get(f"{central.url}/api/v1/tickets/{last}").json()
        assert at_central["status"] == at_node["status"] == "waiting"
        assert at_central["people_ahead"] == at_node["people_ahead"] == 1
        board_node = staff.get(f"{B}/snapshot").json()
        board_central = admin.get(f"{B}/snapshot").json()
        assert board_central["seq"] == board_node["seq"]
        assert board_central["board"] == board_node["board"]
        assert [c["label"] for c in board_central["board"]["calls"]] == ["A001"]

        # Not while the node is connected, unless forced.
        refused = admin.post(f"{B}/release-node", json={})
        assert (refused.status_code, refused.json()["code"]) == (409, "node_connected")
        head = board_node["seq"]
        node.stop()
        node = None
        time.sleep(1.2)  # central's `node_stale_s`: the node is silent now
        released = admin.post(f"{B}/release-node", json={})
        assert released.status_code == 200, released.text
        assert released.json() | {"epoch": None} == {
            "branch": BRANCH, "epoch": None, "seq": head, "unshipped_events": 0,
            "node_was_connected": False, "forced": False, "revoked_tokens": 1,
        }  # fmt: skip
        again = admin.post(f"{B}/release-node", json={})
        assert (again.status_code, again.json()["code"]) == (409, "branch_not_node_owned")
        assert len(_audited(central, "node.released")) == 1

        # Central serves the branch on: numbers after the node's, its waiting tickets first,
        # its stream from the node's last event.
        central_kiosk = {"Authorization": f"Bearer {central.device_token('kiosk')}"}
        fourth = httpx.post(f"{central.url}{B}/tickets", json={"service_id": "id_card"},
                            headers=central_kiosk, timeout=10)  # fmt: skip
        assert fourth.status_code == 201, fourth.text
        assert fourth.json()["label"] == "A004"
        operator = _signed_in(central, "manager")
        assert operator.post(f"{B}/counters/c01/start").status_code == 200
        finished = operator.post(f"{B}/counters/c01/finish", json={"outcome": "served"})
        assert finished.status_code == 200, finished.text
        nxt = operator.post(f"{B}/counters/c01/call-next")
        assert nxt.status_code == 200, nxt.text
        assert nxt.json()["id"] == issued[1]["id"], nxt.json()
        log = _log(central)
        assert [seq for seq, _, _ in log] == list(range(1, len(log) + 1))
        assert len({epoch for _, epoch, _ in log}) == 1  # central's feeds see no reset
        assert [kind for _, _, kind in log[head:] if kind.startswith("ticket.")] == [
            "ticket.issued", "ticket.started", "ticket.finished", "ticket.called"
        ]  # fmt: skip
        stale = httpx.get(f"{central.url}/api/v1/nodes/{BRANCH}/cursor",
                          headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert stale.status_code in (401, 409)  # its token is revoked (or, cached, refused)
    finally:
        admin.close()
        if node is not None:
            node.stop()
        central.stop()


def test_central_manages_a_centre_s_people_and_devices_down_the_link(tmp_path: Path) -> None:
    """An administrator at central adds a manager and a kiosk for a centre its node serves: the
    node takes them down its link (the manager signs in there, the kiosk issues there);
    disabling and revoking at central reach the node the same way; audited at central."""
    central = LiveServer(
        test_settings(f"sqlite+aiosqlite:///{tmp_path / 'central.sqlite3'}", tmp_path / "c")
    ).start()
    node: LiveServer | None = None
    admin = _signed_in(central, "admin")
    try:
        token = admin.post(f"{B}/node-token", json={}).json()["token"]
        node = LiveServer(test_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'node.sqlite3'}", tmp_path / "n",
            node_central_url=central.url, node_token=token, node_branch=BRANCH,
            node_heartbeat_s=0.2,
        )).start()  # fmt: skip
        link = node.rigi.node

        def pulled_since(before: int) -> int:
            # The link's own pull (every 15 s) may take a share: the two together take it once.
            node.run(link.pull_down(now_all=True))
            return link.state.down_changes - before

        password = "a long enough password"
        ana = {"username": "ana", "password": password, "role": "manager", "branch": BRANCH}
        before = link.state.down_changes
        person = admin.post("/api/v1/users", json=ana)
        assert person.status_code == 201, person.text
        kiosk = admin.post(f"{B}/devices", json={"role": "kiosk", "name": "hall kiosk"})
        assert kiosk.status_code == 201, kiosk.text
        assert pulled_since(before) == 2
        assert node.run(link.pull_down(now_all=True)) == 0  # again: nothing changes

        def signs_in() -> int:
            login = {"username": "ana", "password": password}
            return httpx.post(f"{node.url}/api/v1/session", json=login, timeout=10).status_code

        def issues() -> int:
            answer = httpx.post(f"{node.url}{B}/tickets", json={"service_id": "id_card"},
                                headers={"Authorization": f"Bearer {kiosk.json()['token']}"},
                                timeout=10)  # fmt: skip
            return answer.status_code

        assert (signs_in(), issues()) == (200, 201)
        before = link.state.down_changes
        disabled = admin.post(f"/api/v1/people/{person.json()['id']}/disable")
        assert disabled.status_code == 200, disabled.text
        revoked = admin.post(f"/api/v1/devices/{kiosk.json()['device']['id']}/revoke")
        assert revoked.status_code == 200, revoked.text
        assert pulled_since(before) == 2
        assert signs_in() != 200
        assert issues() == 401
        kinds = {row.kind for row in _audited(central, "user.created")} | {
            row.kind for row in _audited(central, "device.revoked")
        }
        assert kinds == {"user.created", "device.revoked"}  # audited, not on the node's stream
    finally:
        admin.close()
        if node is not None:
            node.stop()
        central.stop()
