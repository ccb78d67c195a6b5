""" "Near" by minutes as well as by people: a branch (or one of its services) may tell a citizen
when the estimated wait drops to N minutes, however many are still ahead. These servers run with
the forecast off, so the plain estimate decides and the arithmetic below holds (with it on, its
median decides: tests/test_forecast_server.py); the most particular setting wins."""

from __future__ import annotations

import asyncio
from pathlib import Path

from queue_server.notify.outbox import NearRule
from tests.support import LiveServer, test_settings

B = "/api/v1/branches/testhall"
NEAR_MINUTES = 15


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


async def test_a_citizen_is_told_near_when_the_estimate_drops_to_the_services_minutes(
    tmp_path: Path,
) -> None:
    settings = test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}",
        tmp_path,
        notify_sms_url="memory://",
        notify_near_ahead=1,
        notify_near={"testhall/stamp": {"minutes": NEAR_MINUTES}},
        forecast_runs=0,
    )
    server = LiveServer(settings).start()
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
        notify_near={"testhall/passport": {"minutes": 240}},
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
                if len(sms.sent) >= 25 + 1:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            told = {m.to for m in sms.sent}
    finally:
        server.stop()
    # A passport takes ten minutes at the one counter: 240 minutes reach the first 25 in line,
    # past the check's first look at the line. Of the stamps (one ahead at most, no minutes
    # rule) only the priority one is near: the normal ones wait behind the passports.
    assert told == {f"+9955550002{n:02d}" for n in range(25)} | {"+995555000302"}
