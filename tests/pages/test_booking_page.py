"""The phone booking page in real headless Chromium at phone size, in Georgian, against a real
server on the demo hall (59 services) with a real SMTP server (aiosmtpd) delivering the one-time
code: branch → service → day → free time → e-mail → code → the booking with its QR and short
code; moved from its link; checked in at the kiosk with the short code and called first, which
the citizen's ticket page and the lobby display show; a second booking cancelled from its link.
axe finds nothing serious on any step."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr

from queue_server.settings import Settings
from tests.notify.helpers import Mailbox
from tests.pages.browser import serious_violations
from tests.support import PASSWORD, LiveServer

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
SCREEN = {"width": 1280, "height": 800}
KIOSK = {"width": 1080, "height": 1920}
TBILISI = ZoneInfo("Asia/Tbilisi")
BRANCH = "tbilisi"
EMAIL = "citizen.book@example.ge"
# Monday 2 June 2025, 08:00 in Tbilisi: the page offers this week's and the next week's days.
START = datetime(2025, 6, 2, 4, 0, tzinfo=UTC)


class Clock:
    """The server's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def booking_hall(
    tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> Iterator[tuple[LiveServer, Clock, Mailbox]]:
    box, smtp_port = mailbox
    clock = Clock(START)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'rigi.sqlite3'}",
        data_dir=tmp_path,
        notify_email_url=SecretStr(f"smtp://127.0.0.1:{smtp_port}?from=rigi@example.ge"),
    )
    server = LiveServer(settings, clock=clock).start()
    yield server, clock, box
    server.stop()


def _page(browser: Any, viewport: dict[str, int] = PHONE) -> Any:
    context = browser.new_context(viewport=viewport, locale="ka-GE")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    return page


def _clean(page: Any, found: dict[str, list[str]], step: str) -> None:
    found[step] = serious_violations(page)


@contextlib.contextmanager
def _staff(server: LiveServer, role: str) -> Iterator[httpx.Client]:
    """A client acting as the hall's kiosk (device token) or a signed-in person."""
    with httpx.Client(base_url=server.url, timeout=15) as client:
        if role == "kiosk":
            client.headers["Authorization"] = f"Bearer {server.device_token('kiosk', BRANCH)}"
        else:
            answer = client.post(
                "/api/v1/session",
                json={"username": server.user(role, BRANCH), "password": PASSWORD},
            )
            answer.raise_for_status()
            client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        yield client


def test_a_citizen_books_on_the_phone_checks_in_at_the_kiosk_and_is_called(
    browser: Any, booking_hall: tuple[LiveServer, Clock, Mailbox], shots: Path
) -> None:
    from playwright.sync_api import expect

    server, clock, box = booking_hall
    axe: dict[str, list[str]] = {}
    phone = _page(browser)

    # Branch: the list of every branch, found by typing; Georgian by default.
    phone.goto(f"{server.url}/book")
    assert phone.evaluate("document.documentElement.lang") == "ka"
    expect(phone.locator("h1")).to_have_text("ვიზიტის დაჯავშნა")
    assert phone.locator("[data-branch]").count() >= 86
    phone.fill("#branch-search", "თბილისი")
    phone.locator(f"[data-branch={BRANCH}]").click()

    # Service: the hall's 59, most used first; the search reads Latin letters too.
    expect(phone.locator("[data-service]")).to_have_count(59)
    _clean(phone, axe, "service")
    phone.screenshot(path=shots / "book-service-ka.png")
    phone.fill("#service-search", "pirado")
    phone.locator("[data-service=id_card]").first.click()

    # Day, then a free time: Monday's first slot is 09:00 in Tbilisi.
    expect(phone.locator("[data-day]").first).to_have_attribute("data-day", "2025-06-02")
    phone.locator("[data-day='2025-06-03']").click()
    expect(phone.locator(".chosen")).to_contain_text("სამშაბათი, 3 ივნისი")
    expect(phone.locator("[data-slot]").first).to_have_text("09:00")
    _clean(phone, axe, "slot")
    phone.screenshot(path=shots / "book-slots-ka.png")
    chosen = phone.locator("[data-slot]").nth(6)
    chosen_time = chosen.inner_text()
    chosen.click()

    # Contact, then the code the SMTP server received.
    phone.fill("#contact", EMAIL)
    phone.click("#send-code")
    expect(phone.locator("#code")).to_be_visible()
    phone.fill("#code", "000000" if box.code(1) != "000000" else "111111")
    phone.click("#confirm-code")
    expect(phone.locator("#book-error")).to_contain_text("4")  # attempts left, said in Georgian
    phone.fill("#code", box.code(1))
    phone.click("#confirm-code")

    # The booking: day, time, the arrival window, the short code and the QR.
    expect(phone.locator("#step-heading")).to_have_text("თქვენი ჯავშანი დადასტურებულია")
    expect(phone.locator("#booked-time")).to_have_text(chosen_time)
    hour, minute = map(int, chosen_time.split(":"))
    for shift in (-30, 10):  # the arrival window, in the branch's time
        edge = datetime(2025, 6, 3, hour, minute) + timedelta(minutes=shift)
        expect(phone.locator("#arrive")).to_contain_text(edge.strftime("%H:%M"))
    expect(phone.locator(".qr img")).to_be_visible()
    short_code = phone.locator("#short-code").inner_text()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", short_code)
    assert EMAIL not in phone.content()
    _clean(phone, axe, "done")
    phone.screenshot(path=shots / "book-done-ka.png", full_page=True)
    link = phone.url
    assert "#booking=" in link

    # From the link, on another phone: moved to a later time the same day.
    again = _page(browser)
    again.goto(link)
    expect(again.locator("#booked-time")).to_have_text(chosen_time)
    again.click("#move")
    again.locator("[data-day='2025-06-03']").click()
    later = again.locator("[data-slot]").nth(12)
    later_time, later_slot = later.inner_text(), later.get_attribute("data-slot")
    later.click()
    expect(again.locator("#booked-time")).to_have_text(later_time)
    expect(again.locator(".qr img")).to_be_visible()

    # At the kiosk, 10 minutes before the slot, the short code checks in; walk-ins wait already.
    slot = datetime.fromisoformat(later_slot)
    clock.now = slot - timedelta(minutes=25)
    with _staff(server, "kiosk") as kiosk, _staff(server, "operator") as operator:
        _check_in_and_call(server, clock, kiosk, operator, short_code, slot, shots, phone, again)
    assert axe == {step: [] for step in axe}


def _check_in_and_call(
    server: LiveServer, clock: Clock, kiosk: httpx.Client, operator: httpx.Client,
    short_code: str, slot: datetime, shots: Path, *pages: Any,
) -> None:  # fmt: skip
    """The kiosk checks the booking in among walk-ins; the operator calls it first; the
    citizen's ticket page and the lobby display show the call."""
    from playwright.sync_api import expect

    b = f"/api/v1/branches/{BRANCH}"
    walk_ins = [
        kiosk.post(b + "/tickets", json={"service_id": "id_card"}).json()["id"] for _ in range(3)
    ]
    # At the kiosk's screen: 45 minutes early is told when to come back; 10 minutes early
    # checks in and prints an appointment ticket.
    browser = pages[0].context.browser
    screen = _page(browser, KIOSK)
    screen.goto(f"{server.url}/kiosk/{BRANCH}?setup={server.device_token('kiosk', BRANCH)}")
    clock.now = slot - timedelta(minutes=45)
    expect(screen.locator(".not-served").first).to_be_visible()  # its first refresh is done
    screen.fill("#booking-code", short_code)
    screen.click("#check-in-submit")
    come_back = (slot - timedelta(minutes=30)).astimezone(TBILISI).strftime("%H:%M")
    expect(screen.locator(".error")).to_have_text(
        f"ჯავშნისთვის ჯერ ადრეა: დაბრუნდით {come_back}-ზე."
    )
    clock.now = slot - timedelta(minutes=10)
    screen.fill("#booking-code", short_code)
    screen.click("#check-in-submit")
    expect(screen.locator("#ticket-number")).to_be_visible()
    qr_src = screen.locator(".qr img").get_attribute("src")
    ticket = {
        "id": qr_src.removeprefix("/qr/").removesuffix(".svg"),
        "label": screen.locator("#ticket-number").inner_text(),
    }
    assert serious_violations(screen) == []
    screen.screenshot(path=shots / "kiosk-check-in-ka.png")

    display = _page(browser, SCREEN)
    display.goto(f"{server.url}/display/{BRANCH}?setup={server.device_token('display', BRANCH)}")
    expect(display.locator("#connection.live")).to_be_visible()
    follow = _page(browser)
    follow.goto(f"{server.url}/t/{ticket['id']}")
    expect(follow.locator("#ticket-number")).to_have_text(ticket["label"])

    clock.now = slot
    counter = "q01"
    assert operator.post(f"{b}/counters/{counter}/open").status_code == 200
    called = operator.post(f"{b}/counters/{counter}/call-next")
    assert called.json()["id"] == ticket["id"] and ticket["id"] not in walk_ins
    expect(follow.locator("#go")).to_contain_text("მიბრძანდით")
    expect(display.locator(".big-calls .call").first).to_have_attribute(
        "data-ticket", ticket["label"]
    )

    # The manager's live view: the fairness ledger counts the appointment called ahead (once
    # the report facts, which follow the events, hold the call).
    with _staff(server, "manager") as manager:
        for _ in range(100):
            hours = manager.get(b + "/fairness", params={"date": "2025-06-03"}).json()["hours"]
            if hours and hours[0]["called"]["appointment"]:
                break
            threading.Event().wait(0.05)
    live = _page(browser, SCREEN)
    live.goto(f"{server.url}/live/{BRANCH}?lang=en")
    live.wait_for_selector("#signin")
    live.fill("#username", server.user("manager", BRANCH))
    live.fill("#password", PASSWORD)
    live.click("#signin-submit")
    row = live.locator("#fairness-table tbody tr")
    expect(row.locator("[data-kind=appointment]")).to_have_text("1", timeout=15_000)
    expect(row.locator("[data-kind=remote]")).to_have_text("0")
    assert serious_violations(live) == []
    live.screenshot(path=shots / "live-fairness-en.png", full_page=True)
    for page in (*pages, screen, follow, display, live):
        assert page.js_errors == []


def test_a_booking_is_cancelled_from_its_link_and_its_time_is_free_again(
    browser: Any, booking_hall: tuple[LiveServer, Clock, Mailbox], shots: Path
) -> None:
    from playwright.sync_api import expect

    server, _, box = booking_hall
    b = f"{server.url}/api/v1/branches/{BRANCH}"
    slots = httpx.get(f"{b}/services/id_card/slots", params={"date": "2025-06-04"}).json()
    pending = httpx.post(
        f"{b}/bookings",
        json={"service": "id_card", "slot": slots[0]["slot"], "contact": EMAIL, "language": "en"},
    )
    assert pending.status_code == 201, pending.text
    booking_id = pending.json()["id"]
    confirmed = httpx.post(
        f"{server.url}/api/v1/bookings/{booking_id}/confirm", json={"code": box.code(1)}
    ).json()

    phone = _page(browser)
    phone.goto(
        f"{server.url}/book/{BRANCH}?lang=en#booking={confirmed['token']}&service=id_card"
        f"&code={confirmed['short_code']}"
    )
    expect(phone.locator("#booked-time")).to_have_text("09:00")  # the day's first slot
    phone.click("#cancel")
    expect(phone.locator("#cancel-question")).to_be_visible()
    assert serious_violations(phone) == []
    phone.click("#cancel-yes")
    expect(phone.locator("#step-heading")).to_have_text("The booking is cancelled")
    assert "#booking" not in phone.url
    free = httpx.get(f"{b}/services/id_card/slots", params={"date": "2025-06-04"}).json()
    assert free[0]["slot"] == slots[0]["slot"]
    phone.screenshot(path=shots / "book-cancelled-en.png")
    assert phone.js_errors == []


def test_a_citizen_joins_todays_queue_from_the_phone_and_activates_it_at_the_kiosk(
    browser: Any, booking_hall: tuple[LiveServer, Clock, Mailbox], shots: Path
) -> None:
    from playwright.sync_api import expect

    server, clock, box = booking_hall
    clock.now = START + timedelta(hours=2)  # Monday 10:00 in Tbilisi
    phone = _page(browser)
    phone.goto(f"{server.url}/book/{BRANCH}")
    phone.locator("[data-service=id_card]").click()
    phone.click("#join-now")
    phone.fill("#contact", EMAIL)
    phone.click("#send-code")
    phone.fill("#code", box.code(1))
    phone.click("#confirm-code")
    expect(phone.locator("#step-heading")).to_have_text("თქვენ დღევანდელ რიგში ხართ")
    expect(phone.locator("#arrive")).to_contain_text("11:00")  # the place is kept an hour
    expect(phone.locator("#move")).to_have_count(0)  # a place in the queue is not moved
    assert serious_violations(phone) == []
    phone.screenshot(path=shots / "book-joined-ka.png", full_page=True)
    short_code = phone.locator("#short-code").inner_text()

    clock.now += timedelta(minutes=35)
    with _staff(server, "kiosk") as kiosk:
        arrived = kiosk.post(f"/api/v1/branches/{BRANCH}/check-in", json={"code": short_code})
    assert arrived.status_code == 201, arrived.text
    assert arrived.json()["kind"] == "remote"
    assert arrived.json()["ticket"]["priority"] == "normal"
    assert phone.js_errors == []


def test_an_institution_asks_for_a_community_centres_room_on_its_page(
    browser: Any, booking_hall: tuple[LiveServer, Clock, Mailbox], shots: Path
) -> None:
    from playwright.sync_api import expect

    server, _, box = booking_hall
    page = _page(browser)
    page.goto(f"{server.url}/room/cc01-shashiani")
    expect(page.locator("h1")).to_have_text("საკონფერენციო დარბაზი")
    page.locator("[data-day='2025-06-02']").click()
    expect(page.locator(".free-times li")).to_have_text(["09:00–18:00"])
    page.select_option("#starts", "2025-06-02T06:00:00.000Z")  # 10:00 in Shashiani
    page.select_option("#ends", "2025-06-02T08:00:00.000Z")
    page.fill("#institution", "Shashiani public school")
    page.fill("#purpose", "Parents' meeting")
    page.fill("#contact", EMAIL)
    page.check("#declaration")
    assert serious_violations(page) == []
    page.screenshot(path=shots / "room-form-ka.png", full_page=True)
    page.click("#send-request")
    expect(page.locator("#room-sent")).to_contain_text("10:00–12:00")
    for _ in range(100):
        if box.mails:
            break
        threading.Event().wait(0.05)
    assert len(box.mails) == 1
    page.goto(f"{server.url}/room/cc01-shashiani?lang=en")
    page.locator("[data-day='2025-06-02']").click()
    expect(page.locator(".free-times li")).to_have_text(["09:00–10:00", "12:00–18:00"])
    assert "Shashiani public school" not in page.content()
    hall = httpx.get(f"{server.url}/room/tbilisi")
    assert hall.status_code == 404 and "text/html" in hall.headers["content-type"]

    # The centre's manager, signed in, sees the request on the same page and declines it.
    manager = server.user("manager", "cc01-shashiani")
    signed_in = page.request.post(
        f"{server.url}/api/v1/session", data={"username": manager, "password": PASSWORD}
    )
    assert signed_in.ok
    page.goto(f"{server.url}/room/cc01-shashiani?lang=en")
    request = page.locator(".room-request")
    expect(request).to_contain_text("Shashiani public school")
    expect(request).to_contain_text("waiting for a decision")
    assert serious_violations(page) == []
    request.locator("input").fill("The room is being painted.")
    request.locator("[data-action=decline]").click()
    expect(request).to_contain_text("declined")
    for _ in range(100):
        if len(box.mails) == 2:
            break
        threading.Event().wait(0.05)
    assert "The room is being painted." in box.mails[1].get_payload(decode=True).decode()
    assert page.js_errors == []
