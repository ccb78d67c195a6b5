"""`/national`: the central office's screen of every branch, grouped by region, live.

The page is public like every page; its figures go only to administrators. The boot data is
the map (branches, their regions, in display order) and, for an administrator, the national
floor's snapshot of every row, so that the page paints at once; `/ws/national` then brings the
rows that change. A signed-in person who is not an administrator gets a 403 page that says so.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from queue_server.catalog.models import LANGUAGES
from queue_server.catalog.regions import OTHER, region_of, regions_by_municipality
from queue_server.errors import Forbidden
from queue_server.web.pages import _language, _localized, _render

NATIONAL_ROLES = frozenset({"admin"})
CAPITAL = "Tbilisi"  # shown first: the largest halls
MIN_NAMES_TO_SHORTEN = 2


def national_boot(request: Request) -> dict[str, Any]:
    """Branches with their region, regions in order: the capital, the others by English name,
    then branches of no known region."""
    rigi = request.app.state.rigi
    by_municipality = regions_by_municipality(rigi.settings.config)
    georgian = {region.id: region.name_ka for region in by_municipality.values()}
    regions: dict[str, dict[str, Any]] = {}
    branches = []
    for branch in rigi.catalog.branches.values():
        region_id = region_of(branch, by_municipality) or OTHER
        if region_id != OTHER and region_id not in regions:
            name = {"ka": georgian.get(region_id) or region_id, "en": region_id}
            regions[region_id] = {"id": region_id, "name": name}
        branches.append(
            {"id": branch.id, "kind": branch.kind, "name": _localized(branch.name),
             "region": region_id}
        )  # fmt: skip
    ordered = sorted(regions.values(), key=lambda r: (r["id"] != CAPITAL, r["id"]))
    if any(b["region"] == OTHER for b in branches):
        ordered.append({"id": OTHER, "name": None})
    centres = [b["name"] for b in branches if b["kind"] == "community_centre"]
    return {"branches": branches, "regions": ordered, "common_words": _common_words(centres)}


def _common_words(names: list[dict[str, str | None]]) -> dict[str, dict[str, str]]:
    """Per language, the words every Community Centre's name begins and ends with ("Community
    Centre"), which the page leaves out of its narrow rows (the full name stays the label)."""
    common: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        split = [(n.get(language) or "").split() for n in names]
        if len(split) < MIN_NAMES_TO_SHORTEN or not all(split):
            continue
        prefix = _shared(split)
        suffix = _shared([words[::-1] for words in split])[::-1]
        common[language] = {"prefix": " ".join(prefix), "suffix": " ".join(suffix)}
    return common


def _shared(word_lists: list[list[str]]) -> list[str]:
    shared: list[str] = []
    for words in zip(*word_lists, strict=False):
        if len(set(words)) != 1:
            break
        shared.append(words[0])
    return shared


async def national_page(request: Request) -> Response:
    """The national view (its figures are for administrators)."""
    language = _language(request)
    boot = national_boot(request)
    principal = request.scope.get("rigi.principal")
    role = getattr(getattr(principal, "role", None), "value", None)
    if role is not None and role not in NATIONAL_ROLES:
        return _render("national", language, boot | {"forbidden": True}, Forbidden.status)
    floor = request.app.state.rigi.national
    if role in NATIONAL_ROLES and floor is not None:
        # Every row with the page, so that it paints without waiting for its feed. It is the
        # feed's own snapshot frame, encoded once and shared (the page parses it).
        boot["snapshot"] = await floor.page_snapshot()
    return _render("national", language, boot)


def national_page_routes() -> list[Route]:
    return [Route("/national", national_page, name="national_page")]
