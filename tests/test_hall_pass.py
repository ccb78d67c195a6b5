"""A phone's ticket counts at once only in the hall (issue 19, DESIGN decision 13): it carries
the rotating hall pass that the lobby screens and kiosks show as a QR code. A forged, expired,
other-hall or missing pass gets its own refusal and changes nothing; a pass photographed in the
hall and replayed from home after it rotated does not count."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import LiveServer, test_settings

B = "/api/v1/branches/testhall"
TICKET = {"service_id": "id_card"}


async def _waiting(server: LiveServer) -> int:
    async with server.client("manager") as manager:
        queues = (await manager.get(f"{B}/queues")).json()
    return sum(q["waiting"] for q in queues)


async def _shown_pass(server: LiveServer, branch: str = "testhall") -> dict[str, Any]:
    """The pass as the lobby display of `branch` fetches it."""
    async with server.client("display", branch) as display:
        answer = await display.get(f"/api/v1/branches/{branch}/hall-pass")
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return answer.json()  # type: ignore[no-any-return]


def _forged(genuine: str) -> str:
    """The genuine pass with its signature's last characters changed."""
    return genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB")


async def _take(server: LiveServer, hall_pass: str | None) -> httpx.Response:
    headers = {} if hall_pass is None else {"X-Rigi-Hall-Pass": hall_pass}
    async with server.client(None, hall_pass=False, headers=headers) as phone:
        return await phone.post(f"{B}/tickets", json=TICKET)


async def test_a_phone_that_scanned_the_screens_code_takes_a_ticket_that_counts(
    live_server: LiveServer,
) -> None:
    shown = await _shown_pass(live_server)
    assert shown["url"] == f"{live_server.url}/take/testhall?k={shown['token']}"
    assert "<svg" in shown["qr_svg"] and "<script" not in shown["qr_svg"]
    assert 0 < shown["rotates_in_s"] <= live_server.settings.hall_pass_minutes * 60

    taken = await _take(live_server, shown["token"])
    assert taken.status_code == 201, taken.text
    assert taken.json()["status"] == "waiting" and taken.json()["priority"] == "normal"
    assert await _waiting(live_server) == 1


@pytest.mark.parametrize(
    ("forge", "code"),
    [
        (lambda shown, other, old: None, "hall_pass_required"),
        (lambda shown, other, old: "", "hall_pass_required"),
        (lambda shown, other, old: _forged(shown), "hall_pass_invalid"),
        (lambda shown, other, old: "testhall.1.AAAAAAAAAAAAAAAA", "hall_pass_invalid"),
        (lambda shown, other, old: "not a pass", "hall_pass_invalid"),
        (lambda shown, other, old: shown + "." + "x" * 300, "hall_pass_invalid"),
        (lambda shown, other, old: other, "hall_pass_other_branch"),
        (lambda shown, other, old: old, "hall_pass_expired"),
    ],
    ids=["missing", "empty", "forged", "guessed", "garbage", "huge", "other_hall", "expired"],
)
async def test_a_bad_pass_gets_its_own_refusal_and_changes_nothing(
    sqlite_server: LiveServer, forge: Any, code: str
) -> None:
    server = sqlite_server
    passes = server.rigi.hall_passes
    period = timedelta(seconds=passes.period_s)
    shown = (await _shown_pass(server))["token"]
    other = (await _shown_pass(server, "otherhall"))["token"]
    old = passes.current("testhall", datetime.now(UTC) - 2 * period).token  # two rotations ago
    refused = await _take(server, forge(shown, other, old))
    assert (refused.status_code, refused.json()["code"]) == (403, code), refused.text
    assert refused.json()["message"]
    assert await _waiting(server) == 0


async def test_only_the_halls_own_screens_and_staff_read_the_pass(
    sqlite_server: LiveServer,
) -> None:
    async with sqlite_server.client(None) as phone:
        nobody = await phone.get(f"{B}/hall-pass")
    assert (nobody.status_code, nobody.json()["code"]) == (401, "unauthorized")
    async with sqlite_server.client("display", "otherhall") as elsewhere:
        foreign = await elsewhere.get(f"{B}/hall-pass")
    assert (foreign.status_code, foreign.json()["code"]) == (403, "forbidden_branch")
    async with sqlite_server.client("kiosk") as kiosk:
        assert (await kiosk.get(f"{B}/hall-pass")).status_code == 200


class _Clock:
    """A clock the test moves: the server's whole notion of now."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[LiveServer, _Clock]]:
    clock = _Clock()
    settings = test_settings(f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}", tmp_path)
    server = LiveServer(settings, clock=clock).start()
    yield server, clock
    server.stop()


async def test_a_pass_replayed_from_home_after_it_rotated_does_not_count(
    clocked: tuple[LiveServer, _Clock],
) -> None:
    server, clock = clocked
    period = timedelta(minutes=server.settings.hall_pass_minutes)
    photo = await _shown_pass(server)  # a citizen photographs the screen
    assert photo["rotates_in_s"] == pytest.approx(period.total_seconds() - 10)
    assert datetime.fromisoformat(photo["valid_until"]) == clock.now - timedelta(seconds=10) + (
        2 * period
    )

    clock.now += period  # the screen shows the next pass; a phone still choosing keeps its own
    fresh = await _shown_pass(server)
    assert fresh["token"] != photo["token"]
    assert (await _take(server, photo["token"])).status_code == 201

    clock.now += period  # rotated again: the photo, replayed from home, no longer counts
    replayed = await _take(server, photo["token"])
    assert (replayed.status_code, replayed.json()["code"]) == (403, "hall_pass_expired")
    assert await _waiting(server) == 1
    now_shown = await _shown_pass(server)
    assert (await _take(server, now_shown["token"])).status_code == 201


async def test_without_phone_tickets_no_pass_is_shown_and_phones_are_refused(
    tmp_path: Path,
) -> None:
    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}", tmp_path, remote_tickets=False
    )
    server = LiveServer(settings).start()
    try:
        async with server.client("display") as display:
            off = await display.get(f"{B}/hall-pass")
        assert (off.status_code, off.json()["code"]) == (404, "phone_tickets_off")
        refused = await _take(server, server.hall_pass())
        assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized")
        assert await _waiting(server) == 0
    finally:
        server.stop()
