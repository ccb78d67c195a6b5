"""The organisation's API: admins edit everything, a branch manager their own branch.

Each edit is a function of the newest stored document (`Organisation.edit`), checked whole by
the loader's rules, so an edit through here is refused exactly as `check-config` would refuse
the same change in a file, with the field named, and nothing is changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from queue_server.api.http import Endpoint, principal_of
from queue_server.catalog.organisation import to_document
from queue_server.errors import Conflict, NotFound
from queue_server.store.queue import CounterMode

if TYPE_CHECKING:
    from queue_server.app import Rigi
    from queue_server.organisation.live import Change

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
B = "/api/v1/branches/{branch}"
EDIT_ERRORS = (401, 403, 404, 409, 422)
CLOSED = CounterMode.CLOSED.value


class _Body(BaseModel):
    # The loader's models check the content; these bodies only give it its shape, so that a
    # bad value is reported once, by the same rule and with the same field name as in a file.
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrganisationBody(_Body):
    agencies: list[dict[str, Any]] = Field(max_length=500)
    services: list[dict[str, Any]] = Field(max_length=2000)
    branches: list[dict[str, Any]] = Field(max_length=2000)


class BranchSettings(_Body):
    """What a branch manager may change at their branch; a field left out stays as it is.
    `offers: null` offers whatever the counters serve."""

    hours: dict[str, Any] | None = None
    holidays: list[Any] | None = Field(default=None, max_length=400)
    offers: list[str] | None = Field(default=None, max_length=2000)
    counters: list[dict[str, Any]] | None = Field(default=None, max_length=500)
    screens: list[dict[str, Any]] | None = Field(default=None, max_length=200)
    # a Community Centre's conference rooms (id, name, capacity, hours); null: its one room
    rooms: list[dict[str, Any]] | None = Field(default=None, max_length=20)


class CounterProfile(_Body):
    serves: dict[str, Any] = Field(max_length=2000)
    area: str | None = Field(default=None, max_length=64)


class Item(_Body):
    """An agency, a service or a branch in the shape of its configuration file."""

    model_config = ConfigDict(extra="allow", frozen=True)


def _rigi(request: Request) -> Rigi:
    return request.app.state.rigi  # type: ignore[no-any-return]


async def _edit(
    request: Request, change: Change, summary: str, branch: str | None = None
) -> dict[str, Any]:
    rigi = _rigi(request)
    version = await rigi.organisation.edit(
        change, actor=principal_of(request).actor, summary=summary, audit_branch=branch
    )
    return {"version": version}


def _branch_of(document: dict[str, Any], branch: str) -> dict[str, Any]:
    for item in document["branches"]:
        if item.get("id") == branch:
            return item  # type: ignore[no-any-return]
    raise NotFound(f"There is no branch {branch!r}.", code="unknown_branch", branch=branch)


def _put(items: list[dict[str, Any]], item: dict[str, Any]) -> None:
    """Replace the item with the same id in place, or add it at the end."""
    for index, existing in enumerate(items):
        if existing.get("id") == item.get("id"):
            items[index] = item
            return
    items.append(item)


# ---- reads -------------------------------------------------------------------------------


async def read_organisation(request: Request) -> dict[str, Any]:
    catalog = _rigi(request).organisation.catalog
    return {"version": catalog.version} | to_document(catalog)


async def read_branch_organisation(request: Request, branch: str) -> dict[str, Any]:
    """The branch as its manager edits it, with the services and agencies it may offer."""
    catalog = _rigi(request).organisation.catalog
    document = to_document(catalog)
    return {
        "version": catalog.version,
        "branch": _branch_of(document, branch),
        "offered": [s.id for s in catalog.branch_services(branch)],
        "services": document["services"],
        "agencies": document["agencies"],
    }


# ---- edits -------------------------------------------------------------------------------


async def replace_organisation(request: Request, body: OrganisationBody) -> dict[str, Any]:
    await _refuse_removing_busy_branches(request, {b.get("id") for b in body.branches})

    def change(document: dict[str, Any]) -> dict[str, Any]:
        return body.model_dump()

    return await _edit(request, change, "the whole organisation replaced")


async def put_agency(request: Request, agency: str, body: Item) -> dict[str, Any]:
    def change(document: dict[str, Any]) -> dict[str, Any]:
        _put(document["agencies"], body.model_dump() | {"id": agency})
        return document

    return await _edit(request, change, f"agency {agency}")


async def put_service(request: Request, service: str, body: Item) -> dict[str, Any]:
    def change(document: dict[str, Any]) -> dict[str, Any]:
        _put(document["services"], body.model_dump() | {"id": service})
        return document

    return await _edit(request, change, f"service {service}")


async def put_branch(request: Request, branch: str, body: Item) -> dict[str, Any]:
    def change(document: dict[str, Any]) -> dict[str, Any]:
        _put(document["branches"], body.model_dump() | {"id": branch})
        return document

    return await _edit(request, change, f"branch {branch}", branch)


async def set_branch_settings(
    request: Request, branch: str, body: BranchSettings
) -> dict[str, Any]:
    given = body.model_dump(exclude_unset=True)
    if body.counters is not None:
        await _refuse_removing_open_counters(request, branch, body.counters)

    def change(document: dict[str, Any]) -> dict[str, Any]:
        _branch_of(document, branch).update(given)
        return document

    return await _edit(request, change, f"branch {branch}: {', '.join(sorted(given))}", branch)


async def _refuse_removing_open_counters(
    request: Request, branch: str, counters: list[dict[str, Any]]
) -> None:
    """A counter someone is working at stays until they close it: removing it would strand
    the operator and the citizen in front of them."""
    kept = {counter.get("id") for counter in counters}
    views = await _rigi(request).store.counters(branch)
    busy = sorted(
        view["counter_id"]
        for view in views
        if view["counter_id"] not in kept and view.get("state", CLOSED) != CLOSED
    )
    if busy:
        raise Conflict(
            f"Close counters {', '.join(busy)} before removing them.",
            code="counter_in_use",
            counters=busy,
        )


async def _refuse_removing_busy_branches(request: Request, kept: set[Any]) -> None:
    """A branch with people waiting or a counter open stays until its day is done: removing it
    would strand its tickets (they would still be in the database, in no branch anyone sees)."""
    store = _rigi(request).store
    busy = []
    for branch in sorted(set(_rigi(request).organisation.catalog.branches) - kept):
        waiting = sum(queue["waiting"] for queue in await store.queues(branch))
        opened = any(view.get("state", CLOSED) != CLOSED for view in await store.counters(branch))
        if waiting or opened:
            busy.append(branch)
    if busy:
        raise Conflict(
            f"Branches {', '.join(busy)} still have people waiting or counters open.",
            code="branch_in_use",
            branches=busy,
        )


async def set_counter_profile(
    request: Request, branch: str, counter: str, body: CounterProfile
) -> dict[str, Any]:
    def change(document: dict[str, Any]) -> dict[str, Any]:
        for item in _branch_of(document, branch)["counters"]:
            if item.get("id") == counter:
                item["serves"] = body.serves
                if body.area is not None:
                    item["area"] = body.area
                return document
        raise NotFound(
            f"Branch {branch!r} has no counter {counter!r}.",
            code="unknown_counter", branch=branch, counter=counter,
        )  # fmt: skip

    return await _edit(request, change, f"counter {counter} work profile", branch)


ORGANISATION_ENDPOINTS = (
    Endpoint("GET", "/api/v1/organisation", read_organisation,
             "The whole organisation document and its version", access="admin",
             errors=(401, 403), tags=("organisation",)),
    Endpoint("POST", "/api/v1/organisation", replace_organisation,
             "Replace the whole organisation (checked like check-config)", body=OrganisationBody,
             access="admin", errors=EDIT_ERRORS, tags=("organisation",)),
    Endpoint("POST", "/api/v1/agencies/{agency}", put_agency, "Add or change an agency",
             body=Item, access="admin", errors=EDIT_ERRORS, tags=("organisation",)),
    Endpoint("POST", "/api/v1/services/{service}", put_service,
             "Add or change a service (names, letter, targets, documents, online link)",
             body=Item, access="admin", errors=EDIT_ERRORS, tags=("organisation",)),
    Endpoint("POST", B + "/definition", put_branch, "Add or replace a whole branch",
             body=Item, access="admin", errors=EDIT_ERRORS, tags=("organisation",)),
    Endpoint("GET", B + "/organisation", read_branch_organisation,
             "The branch as its manager edits it", access="manager", errors=(401, 403, 404),
             tags=("organisation",)),
    Endpoint("POST", B + "/organisation", set_branch_settings,
             "Change the branch's hours, holidays, services offered, counters, screens or rooms",
             body=BranchSettings, access="manager", errors=EDIT_ERRORS, tags=("organisation",)),
    Endpoint("POST", B + "/counters/{counter}/profile", set_counter_profile,
             "Change a counter's work profile (services with weights) and area",
             body=CounterProfile, access="manager", errors=EDIT_ERRORS, tags=("organisation",)),
)  # fmt: skip
