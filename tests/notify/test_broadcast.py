"""A manager's broadcast against a real server: everyone waiting (for a service) who left a
contact hears of a delay or an early closing in their own language; an operator may not send
one, a bad one is refused with a stable code, the branch's broadcasts are limited, each is in
the audit trail. And from the live view, in real Chromium, in Georgian, axe clean."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.notify.helpers import until
from tests.pages.browser import serious_violations, with_pages
from tests.support import PASSWORD, LiveServer, test_settings

B = "/api/v1/branches/testhall"


def _server(database_url: str, tmp_path: Path) -> LiveServer:
    settings = test_settings(
        database_url,
        tmp_path,
        notify_sms_url="memory://",
        notify_email_url="memory://",
        notify_broadcast_rate="2/hour",
    )
    return with_pages(LiveServer(settings)).start()


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = _server(database_url, tmp_path)
    yield live
    live.stop()


async def _ticket(kiosk: httpx.AsyncClient, service: str, language: str) -> dict[str, Any]:
    issued = await kiosk.post(f"{B}/tickets", json={"service_id": service, "language": language})
    assert issued.status_code == 201, issued.text
    return issued.json()  # type: ignore[no-any-return]


async def _subscribe(client: httpx.AsyncClient, ticket: dict[str, Any], **contact: str) -> None:
    answer = await client.post(f"/api/v1/tickets/{ticket['id']}/subscribe", json=contact)
    assert answer.status_code == 200, answer.text


def _texts(server: LiveServer, channel: str, to: str) -> list[str]:
    return [m.text for m in server.rigi.notify.channels[channel].sent if m.to == to]


async def test_a_manager_tells_everyone_waiting_of_a_delay_and_an_early_closing(
    server: LiveServer,
) -> None:
    async with (
        server.client("kiosk") as kiosk,
        server.client("operator") as operator,
        server.client("manager") as manager,
    ):
        called = await _ticket(kiosk, "stamp", "ka")
        stamp = await _ticket(kiosk, "stamp", "ru")
        card = await _ticket(kiosk, "id_card", "en")
        await _ticket(kiosk, "stamp", "ka")  # left no contact: hears nothing
        await _subscribe(kiosk, called, phone="555000001")
        await _subscribe(kiosk, stamp, phone="555000002")
        await _subscribe(kiosk, card, email="card.holder@example.ge")
        assert (await operator.post(f"{B}/counters/c04/open")).status_code == 200
        assert (await operator.post(f"{B}/counters/c04/call-next")).json()["id"] == called["id"]

        refused = await operator.post(
            f"{B}/notify/broadcast", json={"kind": "delay", "minutes": 40}
        )
        assert refused.status_code == 403
        for bad, code in [
            ({"kind": "closing"}, "bad_broadcast"),
            ({"kind": "closing", "closes_at": "25:00"}, "bad_broadcast"),
            ({"kind": "delay"}, "bad_broadcast"),
            ({"kind": "delay", "minutes": 40, "service_id": "nothing"}, "unknown_service"),
            ({"kind": "shout", "minutes": 40}, "validation_failed"),
        ]:
            answer = await manager.post(f"{B}/notify/broadcast", json=bad)
            assert answer.status_code in (404, 422) and answer.json()["code"] == code, answer.text

        delay = await manager.post(
            f"{B}/notify/broadcast", json={"kind": "delay", "minutes": 40, "service_id": "stamp"}
        )
        assert delay.status_code == 200, delay.text
        assert delay.json()["recipients"] == 1  # the called one is not waiting any more
        closing = await manager.post(
            f"{B}/notify/broadcast", json={"kind": "closing", "closes_at": "16:00"}
        )
        assert closing.json()["recipients"] == 2
        limited = await manager.post(f"{B}/notify/broadcast", json={"kind": "delay", "minutes": 5})
        assert (limited.status_code, limited.json()["code"]) == (429, "broadcast_limited")

        await until(lambda: len(_texts(server, "sms", "+995555000002")) >= 3)  # near + two
        await until(lambda: len(_texts(server, "email", "card.holder@example.ge")) >= 2)
        trail = (await manager.get("/api/v1/audit", params={"kind": "notify.broadcast"})).json()
        log = (await manager.get(f"{B}/notify/messages")).json()
    stamp_texts = _texts(server, "sms", "+995555000002")
    assert f"Талон {stamp['label']}: ожидание дольше обычного, ещё примерно 40 мин. " \
           "Приносим извинения." in stamp_texts  # fmt: skip
    assert any("в 16:00" in text for text in stamp_texts)
    assert f"Ticket {card['label']}: the branch closes early today, at 16:00. If you are not " \
           "called by then, please come back another day." in \
           _texts(server, "email", "card.holder@example.ge")  # fmt: skip
    assert not any("16:00" in t or "40" in t for t in _texts(server, "sms", "+995555000001"))
    # Staff read a broadcast by a kind and a title in every language, never as `bc:<id>`.
    shown = {(m["label"], m["broadcast_id"]): m for m in log if m["kind"] == "broadcast"}
    assert set(shown) == {(stamp["label"], delay.json()["id"]),
                          (stamp["label"], closing.json()["id"]),
                          (card["label"], closing.json()["id"])}  # fmt: skip
    assert shown[(stamp["label"], delay.json()["id"])]["title"] == {
        "ka": "ლოდინი დაახლოებით 40 წუთით გახანგრძლივდა",
        "en": "The wait is about 40 minutes longer",
        "ru": "Ожидание дольше примерно на 40 мин.",
        "az": "Gözləmə təxminən 40 dəqiqə uzundur",
        "hy": "Սպասումը մոտ 40 րոպեով երկար է",
    }
    assert shown[(card["label"], closing.json()["id"])]["title"]["en"] == (
        "The branch closes early, at 16:00"
    )
    assert not any(m["kind"].startswith("bc:") for m in log)
    assert {m["title"] for m in log if m["kind"] != "broadcast"} == {None}
    entries = trail["entries"] if isinstance(trail, dict) else trail
    assert sorted((e["target"], e["detail"]["recipients"]) for e in entries) == [
        ("stamp", 1),
        ("testhall", 2),
    ]


@pytest.mark.browser
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_manager_broadcasts_from_the_live_view(browser: Any, server: LiveServer) -> None:
    from playwright.sync_api import expect

    with httpx.Client(base_url=server.url) as kiosk:
        kiosk.headers["Authorization"] = f"Bearer {server.device_token('kiosk')}"
        ticket = kiosk.post(f"{B}/tickets", json={"service_id": "stamp", "language": "ka"}).json()
        kiosk.post(f"/api/v1/tickets/{ticket['id']}/subscribe", json={"phone": "555000003"})
    page = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ka-GE").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/live/testhall")
    page.fill("#username", server.user("manager"))
    page.fill("#password", PASSWORD)
    page.click("#signin-submit")
    expect(page.locator("#broadcast-heading")).to_have_text("შეტყობინება ყველა მომლოდინეს")
    expect(page.locator("#notify-states")).to_contain_text("ბოლო შეტყობინებები:")
    page.select_option("#broadcast-kind", "closing")
    page.fill("#broadcast-time", "16:00")
    page.select_option("#broadcast-service", "stamp")
    assert serious_violations(page) == []
    page.click("#broadcast-send")
    expect(page.locator("#broadcast-result")).to_have_text("გაიგზავნა 1 ადამიანთან.")
    for _ in range(200):
        if any("16:00" in t for t in _texts(server, "sms", "+995555000003")):
            break
        time.sleep(0.05)
    assert any("16:00-ზე იხურება" in t for t in _texts(server, "sms", "+995555000003"))
    # The newest messages name the broadcast by its title in Georgian, not by `bc:<id>`.
    line = f"{ticket['label']} — შეტყობინება ყველას: ფილიალი ადრე, 16:00-ზე იხურება (SMS): "
    states = "(რიგშია|იგზავნება|გაიგზავნა)"  # queued, sending or sent by the time it reads
    expect(page.locator("#notify-recent li").first).to_have_text(
        re.compile("^" + re.escape(line) + states + "$")
    )
    expect(page.locator("#notify-recent")).not_to_contain_text("bc:")
    assert serious_violations(page) == []
    assert errors == []
    page.context.close()
