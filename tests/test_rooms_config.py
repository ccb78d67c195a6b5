"""Each Community Centre configures its own conference rooms (issue 19): which rooms, their
seats and their hours live in the organisation document, edited by the centre's manager with the
branch. Each room has its own calendar; a centre without rooms configured lends its one room on
its own hours, as before; a bad configuration is refused and changes nothing."""

from __future__ import annotations

from typing import Any

from tests.support import LiveServer
from tests.test_bookings import Clock
from tests.test_rooms import CENTRE, R, ask, centre  # noqa: F401  (the fixture)

EDIT = f"/api/v1/branches/{CENTRE}/organisation"
MAIN = {
    "id": "main",
    "name": {"ka": "დიდი დარბაზი", "en": "Main hall"},
    "capacity": 40,
}
SMALL = {
    "id": "small",
    "name": {"ka": "პატარა ოთახი", "en": "Small room"},
    "capacity": 8,
    "hours": {"mon": [{"opens": "10:00", "closes": "13:00"}]},  # Mondays 10–13 only
}
DAY = {"date": "2025-06-02"}  # a Monday


def _times(day: dict[str, Any], key: str = "free") -> list[str]:
    return [f"{i['starts_at'][11:16]}-{i['ends_at'][11:16]}" for i in day[key]]


async def test_a_centre_lends_its_configured_rooms_each_on_its_own_calendar(
    centre: tuple[LiveServer, Clock],  # noqa: F811
) -> None:
    server, _ = centre
    async with server.client("manager", CENTRE) as manager, server.client() as public:
        before = (await public.get(R, params=DAY)).json()
        assert before["rooms"] == [before["room"]] and before["room"]["id"] == "room"
        assert _times(before) == ["05:00-14:00"]  # 09:00–18:00 in Tbilisi

        configured = await manager.post(EDIT, json={"rooms": [MAIN, SMALL]})
        assert configured.status_code == 200, configured.text
        main = (await public.get(R, params=DAY)).json()
        assert [r["id"] for r in main["rooms"]] == ["main", "small"]
        assert main["room"] == {"id": "main", "name": main["room"]["name"], "capacity": 40}
        assert _times(main) == ["05:00-14:00"]
        small = (await public.get(R, params=DAY | {"room": "small"})).json()
        assert (small["room"]["capacity"], _times(small)) == (8, ["06:00-09:00"])
        tuesday = (await public.get(R, params={"date": "2025-06-03", "room": "small"})).json()
        assert tuesday["free"] == []  # its hours say Mondays only

        in_main = await public.post(R + "/requests", json=ask("10:00", "12:00"))
        assert (in_main.status_code, in_main.json()["room_id"]) == (201, "main")
        in_small = await public.post(R + "/requests", json=ask("10:00", "12:00", room="small"))
        assert (in_small.status_code, in_small.json()["room_id"]) == (201, "small")  # no clash
        taken = await public.post(R + "/requests", json=ask("11:00", "12:00", room="small"))
        assert (taken.status_code, taken.json()["code"]) == (409, "room_taken")
        late = await public.post(R + "/requests", json=ask("12:00", "14:00", room="small"))
        assert (late.status_code, late.json()["code"]) == (422, "bad_room_time")
        no_gym = await public.get(R, params=DAY | {"room": "gym"})
        asked_gym = await public.post(R + "/requests", json=ask("14:00", "15:00", room="gym"))
        for unknown in (no_gym, asked_gym):
            assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_room")

        assert _times((await public.get(R, params=DAY | {"room": "small"})).json()) == [
            "08:00-09:00"
        ]
        listed = (await manager.get(R + "/requests")).json()
        assert sorted(r["room_id"] for r in listed) == ["main", "small"]
        for request in listed:
            approved = await manager.post(f"{R}/requests/{request['id']}/approve")
            assert approved.json()["status"] == "approved", approved.text


async def test_a_bad_room_configuration_is_refused_and_changes_nothing(
    centre: tuple[LiveServer, Clock],  # noqa: F811
) -> None:
    server, _ = centre
    bad: list[tuple[str, dict[str, Any]]] = [
        (EDIT, {"rooms": [MAIN, MAIN]}),  # the same id twice
        (EDIT, {"rooms": [MAIN | {"capacity": 0}]}),
        (EDIT, {"rooms": [MAIN | {"id": "Main Hall"}]}),
        (EDIT, {"rooms": [SMALL | {"hours": {"mon": [{"opens": "13:00", "closes": "10:00"}]}}]}),
        ("/api/v1/branches/tbilisi/organisation", {"rooms": [MAIN]}),  # a hall lends none
    ]
    for path, body in bad:
        branch = path.split("/")[4]
        async with server.client("manager", branch) as manager:
            refused = await manager.post(path, json=body)
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_organisation"), body
    async with server.client() as public:
        day = (await public.get(R, params=DAY)).json()
    assert [r["id"] for r in day["rooms"]] == ["room"]
