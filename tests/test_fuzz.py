"""Fuzzing the API from its own OpenAPI document: a real server, schemathesis-generated requests
for every operation, once as a signed-in manager (cookie + CSRF header) and once as a kiosk.

No request may get a 5xx, and every response must match the schema the document declares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.internal.result import Err
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from queue_server.store.queue import CounterMode
from tests.support import PASSWORD, LiveServer

# Derandomized: the same examples every run. 15 took 122 s of a 16-minute suite on a slower
# machine (67 s on the last); 8 keep every operation fuzzed by both sessions in about half.
EXAMPLES_PER_OPERATION = 8
BRANCH = "testhall"
COUNTERS = ("c01", "c02", "c03")
SERVICES = ("id_card", "passport", "stamp")
# body fields that name something: mostly a real one (from the path values' strategies)
BODY_VALUES = {"service_id": "service_id", "ticket_id": "ticket_id", "counter_id": "counter"}
CHECKS = (not_a_server_error, response_schema_conformance, status_code_conformance)
# Signing out would end the manager's session for every later example.
SKIPPED = {("POST", "/api/v1/session/logout")}


def _manager_session(server: LiveServer) -> requests.Session:
    session = requests.Session()
    signed_in = httpx.post(
        f"{server.url}/api/v1/session",
        json={"username": server.user("manager"), "password": PASSWORD},
        timeout=30,
    )
    signed_in.raise_for_status()
    session.cookies.set("rigi_session", signed_in.cookies["rigi_session"])
    session.headers["X-CSRF-Token"] = signed_in.json()["csrf_token"]
    return session


def _kiosk_session(server: LiveServer) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.device_token('kiosk')}"
    return session


def _real_path_values(server: LiveServer) -> dict[str, st.SearchStrategy[str]]:
    """Generated path values would only ever meet 404 or another branch's 403: most examples use
    the test hall, its counters and tickets that exist, so the handlers behind them run."""
    ticket_ids = server.run(_issue_and_open(server))
    return {
        "branch": st.just(BRANCH),
        "counter": st.sampled_from(COUNTERS),
        "ticket_id": st.sampled_from(ticket_ids),
        "service_id": st.sampled_from(SERVICES),
    }


async def _issue_and_open(server: LiveServer) -> list[str]:
    store = server.rigi.store
    ids = []
    for service in SERVICES * 4:
        ids.append((await store.issue_ticket(BRANCH, service, actor="test")).result["id"])
    for counter in COUNTERS[:2]:
        await store.set_counter_mode(BRANCH, counter, CounterMode.OPEN, actor="test")
    return ids


def _fuzz(
    operation: Any,
    sessions: dict[str, requests.Session],
    base_url: str,
    path_values: dict[str, st.SearchStrategy[str]],
) -> Callable[[], None]:
    """Each generated request is sent as every one of `sessions`, and each answer checked. (The
    same examples for each: made once, not once per session, which was half the test's time.)"""

    @given(case=operation.as_strategy(), data=st.data())
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any, data: st.DataObject) -> None:
        for name in case.path_parameters or {}:
            if name in path_values and data.draw(st.integers(0, 4)) > 0:
                case.path_parameters[name] = data.draw(path_values[name])
        if isinstance(case.body, dict):
            for name in case.body.keys() & BODY_VALUES.keys():
                if data.draw(st.integers(0, 4)) > 0:
                    case.body[name] = data.draw(path_values[BODY_VALUES[name]])
        failures = []
        for who, session in sessions.items():
            try:
                response = case.call(base_url=base_url, session=session, timeout=30)
                case.validate_response(response, checks=CHECKS)
            except Exception as failure:  # the other sessions' answers are checked too
                failures.append(f"as {who}: {failure}")
        if failures:
            raise AssertionError("\n".join(failures))

    return run  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_api_answers_generated_requests_within_its_schema(sqlite_server: LiveServer) -> None:
    server = sqlite_server
    schemathesis.experimental.OPEN_API_3_1.enable()  # our document is OpenAPI 3.1 (pydantic)
    try:
        schema = schemathesis.from_uri(f"{server.url}/openapi.json", base_url=server.url)
    finally:
        schemathesis.experimental.OPEN_API_3_1.disable()
    path_values = _real_path_values(server)
    sessions = {"manager": _manager_session(server), "kiosk": _kiosk_session(server)}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation the schema cannot describe fails the test
            raise result.err()
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        operations += 1
        try:
            _fuzz(operation, sessions, server.url, path_values)()
        except Exception as failure:  # collect every operation's failure, then report
            failures.append(f"{operation.method.upper()} {operation.path}: {failure}")
    assert operations >= 30, f"only {operations} operations in the OpenAPI document"
    assert not failures, "\n\n".join(failures)
