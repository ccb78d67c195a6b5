""" "Near" by minutes as well as by people: a branch (or one of its services) may tell a citizen
when the estimated wait drops to N minutes, however many are still ahead. These servers run with
the forecast off, so the plain estimate decides and the arithmetic below holds (with it on, its
median decides: tests/test_forecast_server.py); the most particular setting wins."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from queue_server.notify.outbox import NearRule
from tests.support import LiveServer, test_settings
from tests.test_forecast_server import _forecast_view, _refresh

B = "/api/v1/branches/testhall"
NEAR_MINUTES = 15
# Between two forecast medians of the passport line below (about 9, 18, 29, 39 minutes; the
# overrun moves each down by 5 to 9).
FORECAST_MINUTES = 25


def test_the_most_particular_rule_wins_key_by_key() -> None:
    rule = NearRule(3, 0, {"tbilisi": {"minutes": 20}, "tbilisi/id_card": {"ahead": 1}})
    assert rule.of("tbilisi", "id_card") == (1, 20)
    assert rule.of("tbilisi", "passport") == (3, 20)
    assert rule.of("rustavi", "id_card") == (3, 0)
    view = {"service_id": "passport", "people_ahead": 9, "wait_minutes": 18, "served_now": True}
    assert rule.reached("tbilisi", view)
    assert not rule.reached("rustavi", view)
    assert not rule.reached("tbilisi", view | {"served_now": False})  # no counter: no estimate
    assert rule.reached("rustavi", view | {"people_ahead": 3})


def _stamp_server(tmp_path: Path) -> LiveServer:
    """Stamps are near at one person ahead or NEAR_MINUTES; the plain estimate decides."""
    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}",
        tmp_path,
        notify_sms_url="memory://",
        notify_near_ahead=1,
        notify_near={"testhall/stamp": {"minutes": NEAR_MINUTES}},
        forecast_runs=0,
    )
    return LiveServer(settings).start()


async def test_a_citizen_is_told_near_when_the_estimate_drops_to_the_services_minutes(
    tmp_path: Path,
) -> None:
    server = _stamp_server(tmp_path)
    try:
        async with server.client("kiosk") as kiosk, server.client("operator") as operator:
            assert (await operator.post(f"{B}/counters/c04/open")).status_code == 200
            issued = []
            for _ in range(12):
                answer = await kiosk.post(f"{B}/tickets", json={"service_id": "stamp"})
                issued.append(answer.json())
            views = [(await kiosk.get(f"/api/v1/tickets/{t['id']}")).json() for t in issued]
            by_minutes = [v for v in views if v["people_ahead"] > 1
                          and v["wait_minutes"] <= NEAR_MINUTES]  # fmt: skip
            not_yet = [v for v in views if v["wait_minutes"] > NEAR_MINUTES]
            assert by_minutes and not_yet, views  # the hall's estimate spans the threshold
            near, far = by_minutes[-1], not_yet[0]
            for n, view in enumerate((near, far)):
                answer = await kiosk.post(
                    f"/api/v1/tickets/{view['id']}/subscribe", json={"phone": f"55500010{n}"}
                )
                assert answer.status_code == 200, answer.text
            sms = server.rigi.notify.channels["sms"]
            for _ in range(200):
                if sms.sent:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # the far one would have been told by now, wrongly
            told = {m.to: m.text for m in sms.sent}
    finally:
        server.stop()
    assert list(told) == ["+995555000100"]
    assert told["+995555000100"].startswith(
        f"ბილეთი {near['label']}: თქვენი რიგი ახლოვდება, თქვენ წინ {near['people_ahead']} "
    )


async def test_the_near_check_looks_past_the_front_of_a_long_line_and_at_priority(
    tmp_path: Path,
) -> None:
    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}",
        tmp_path,
        notify_sms_url="memory://",
        notify_near_ahead=1,
        notify_near={"testhall/passport": {"minutes": 238}},
        forecast_runs=0,
    )
    server = LiveServer(settings).start()
    long_line = 40  # more than the check's first look (NEAR_CHUNK) at each line
    try:
        async with server.client("kiosk") as kiosk, server.client("operator") as operator:
            assert (await operator.post(f"{B}/counters/c03/open")).status_code == 200
            for n in range(long_line):
                answer = await kiosk.post(f"{B}/tickets", json={"service_id": "passport"})
                await kiosk.post(f"/api/v1/tickets/{answer.json()['id']}/subscribe",
                                 json={"phone": f"5550002{n:02d}"})  # fmt: skip
            stamps = []
            for priority in ("normal", "normal", "priority"):
                answer = await kiosk.post(
                    f"{B}/tickets", json={"service_id": "stamp", "priority": priority}
                )
                stamps.append(answer.json())
            for n, ticket in enumerate(stamps):
                await kiosk.post(f"/api/v1/tickets/{ticket['id']}/subscribe",
                                 json={"phone": f"5550003{n:02d}"})  # fmt: skip
            sms = server.rigi.notify.channels["sms"]
            for _ in range(400):
                if len(sms.sent) >= 24 + 1:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            told = {m.to for m in sms.sent}
    finally:
        server.stop()
    # A passport takes ten minutes at the one counter: 238 minutes reach the first 24 in line,
    # past the check's first look at the line, whether the check runs before or after the
    # priority stamp (3 min) goes ahead of them (the 24th waits 230 or 233 min, the 25th 240 or
    # 243). Of the stamps (one ahead at most, no minutes rule) only the priority one is near:
    # the normal ones wait behind the passports.
    assert told == {f"+9955550002{n:02d}" for n in range(24)} | {"+995555000302"}


async def _told(sms: Any, count: int) -> list[Any]:
    """The SMS sent, once there are `count` (or after a bound)."""
    for _ in range(200):
        if len(sms.sent) >= count:
            break
        await asyncio.sleep(0.05)
    return list(sms.sent)


async def test_a_counter_opening_makes_a_citizen_near_by_minutes_though_nobody_left(
    tmp_path: Path,
) -> None:
    """Nobody ahead of the citizen leaves: a second counter opens and halves every wait. The
    near check runs on the counter's opening, not only when someone is called."""
    server = _stamp_server(tmp_path)
    try:
        async with server.client("kiosk") as kiosk, server.client("operator") as operator:
            assert (await operator.post(f"{B}/counters/c04/open")).status_code == 200
            issued = [
                (await kiosk.post(f"{B}/tickets", json={"service_id": "stamp"})).json()
                for _ in range(12)
            ]
            views = [(await kiosk.get(f"/api/v1/tickets/{t['id']}")).json() for t in issued]
            far = next(v for v in views if v["wait_minutes"] > NEAR_MINUTES)
            answer = await kiosk.post(f"/api/v1/tickets/{far['id']}/subscribe",
                                      json={"phone": "555000200"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            sms = server.rigi.notify.channels["sms"]
            await asyncio.sleep(1.0)  # the subscription's own check has run: not near yet
            assert sms.sent == []
            assert (await operator.post(f"{B}/counters/c05/open")).status_code == 200
            told = await _told(sms, 1)
            now = (await kiosk.get(f"/api/v1/tickets/{far['id']}")).json()
    finally:
        server.stop()
    assert now["people_ahead"] == far["people_ahead"] > 1  # nobody ahead of them left
    assert now["wait_minutes"] <= NEAR_MINUTES < far["wait_minutes"]
    assert [(m.to, m.text.split(":")[0]) for m in told] == [
        ("+995555000200", f"ბილეთი {far['label']}")
    ]
    assert "რიგი ახლოვდება" in told[0].text


async def test_a_forecast_that_moves_with_no_event_makes_a_citizen_near_by_minutes(
    tmp_path: Path,
) -> None:
    """Time passes with the visit in hand running far past its usual length: the forecast's
    refresh shortens every wait behind it though nothing happened in the hall, and whoever it
    brings within the minutes is told (as tests/test_forecast_server.py's phone is)."""
    ahead = [timedelta(0)]  # how far the server's clock is ahead of the real one
    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}",
        tmp_path,
        notify_sms_url="memory://",
        notify_near_ahead=1,
        notify_near={"testhall/passport": {"minutes": FORECAST_MINUTES}},
        forecast_runs=128,
    )
    server = LiveServer(settings, clock=lambda: datetime.now(UTC) + ahead[0]).start()
    forecasts = server.rigi.store.forecasts
    try:
        async with server.client("manager") as staff:
            await staff.post(f"{B}/counters/c03/open")  # c03 serves passports (10 minutes)
            issued = [
                (await staff.post(f"{B}/tickets", json={"service_id": "passport"})).json()
                for _ in range(7)
            ]
            await staff.post(f"{B}/counters/c03/call-next")
            await staff.post(f"{B}/counters/c03/start")
            server.run(_refresh(forecasts))
            before = {t["id"]: await _forecast_view(staff, t["id"]) for t in issued[1:]}
            far = [v for v in before.values() if v["wait_minutes"] > FORECAST_MINUTES]
            for n, view in enumerate(far):
                answer = await staff.post(f"/api/v1/tickets/{view['id']}/subscribe",
                                          json={"phone": f"5550004{n:02d}"})  # fmt: skip
                assert answer.status_code == 200, answer.text
            sms = server.rigi.notify.channels["sms"]
            await asyncio.sleep(1.0)  # the subscriptions' own checks have run: none is near
            assert sms.sent == []
            ahead[0] = timedelta(hours=2)
            server.run(_refresh(forecasts))
            after = {v["id"]: (await staff.get(f"/api/v1/tickets/{v['id']}")).json() for v in far}
            now_near = {i for i, v in after.items() if v["wait_minutes"] <= FORECAST_MINUTES}
            await _told(sms, len(now_near))
            await asyncio.sleep(1.0)  # one told wrongly would be by now
            told = list(sms.sent)
    finally:
        server.stop()
    assert now_near, (before, after)  # the forecast's move brought someone within the minutes
    labels = {after[i]["label"] for i in now_near}
    assert sorted(m.text.split(":")[0].removeprefix("ბილეთი ") for m in told) == sorted(labels)
