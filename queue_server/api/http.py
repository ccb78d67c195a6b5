"""How a declared endpoint becomes a Starlette route: body limits, validation, error bodies.

Every error a client can cause leaves here as JSON with a stable `code` and a plain `message`;
nothing else (no stack trace, no framework page) reaches a client.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from queue_server.access.policy import authorize
from queue_server.access.principal import ANONYMOUS, Principal
from queue_server.errors import BadRequest, PayloadTooLarge, RigiError, ValidationFailed
from queue_server.responses import error_response, json_response

__all__ = ["Endpoint", "error_response", "json_response", "principal_of", "route"]

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]
BODY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Endpoint:
    """One API operation: what it takes, what it returns, who may call it."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    access: str = "public"
    errors: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    headers: tuple[str, ...] = field(default=())
    query: type[BaseModel] | None = None  # documented query parameters
    media_type: str = "application/json"

    @property
    def name(self) -> str:
        return self.handler.__name__


async def read_json(request: Request, model: type[BaseModel]) -> BaseModel:
    """Parse and validate a JSON body; an empty body means an empty object."""
    try:
        raw = await request.body()
    except ClientDisconnect:
        # The client went away mid-body: nothing was done, and nobody is left to answer.
        log.info("client left during %s %s", request.method, request.url.path)
        raise BadRequest("The body ended early.", code="client_disconnected") from None
    if raw.strip():
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            # JSONDecodeError and UnicodeDecodeError are ValueErrors, and so is an integer of
            # more than 4,300 digits (Python's int limit); RecursionError: nesting deeper than
            # the parser goes. Hostile bodies, not JSON any client of ours sends.
            raise BadRequest("The body is not valid JSON.", code="malformed_json") from None
    else:
        data = {}
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.", code="malformed_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(
            "Some fields are missing or wrong.",
            fields=[
                {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False)
            ],
        ) from None


def principal_of(request: Request) -> Principal:
    return request.scope.get("rigi.principal", ANONYMOUS)  # type: ignore[no-any-return]


def route(endpoint: Endpoint) -> Route:
    """The Starlette route of an endpoint: permission check first, then body, then handler."""

    async def _call(request: Request) -> Response:
        authorize(
            principal_of(request),
            endpoint.access,
            request.path_params.get("branch"),
            allow_anonymous_issue=request.app.state.settings.remote_tickets,
        )
        kwargs = dict(request.path_params)
        if endpoint.body is not None:
            kwargs["body"] = await read_json(request, endpoint.body)
        result = await endpoint.handler(request, **kwargs)
        if isinstance(result, Response):
            return result
        return json_response(result, endpoint.status)

    return Route(endpoint.path, _call, methods=[endpoint.method], name=endpoint.name)


async def rigi_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RigiError)
    return error_response(exc)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    message = {404: "No such resource.", 405: "This method is not allowed here."}
    error = RigiError(
        message.get(exc.status_code, str(exc.detail)),
        code=codes.get(exc.status_code, "http_error"),
    )
    error.status = exc.status_code
    return error_response(error)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return json_response(
        {
            "code": "internal_error",
            "message": "Something went wrong on our side; nothing was changed.",
        },
        500,
    )


def _body_timeout(timeout_s: float) -> RigiError:
    error = RigiError(f"The body did not arrive within {timeout_s:g} s.", code="body_timeout")
    error.status = 408
    return error


class BodyLimit:
    """Refuses bodies over `max_bytes` with 413 before the app reads them, whether the client
    announced the length or streams it, and bodies that trickle in slower than `timeout_s`
    for the whole body with 408 (a slow client must not hold a request open for ever)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        timeout_s: float = BODY_TIMEOUT_S,
        large: tuple[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        # (path prefix, bound): a node's compressed event batches may be larger
        self.large = large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.max_bytes
        if self.large is not None and scope["path"].startswith(self.large[0]):
            max_bytes = self.large[1]
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = PayloadTooLarge(f"The body is larger than {max_bytes} bytes.")
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            await error_response(too_large)(scope, receive, send)
            return
        received = 0
        complete = False
        deadline = asyncio.get_running_loop().time() + self.timeout_s

        async def _limited() -> Message:
            nonlocal received, complete
            if complete:  # after the body: waiting for a disconnect is not bounded
                return await receive()
            left = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(left, 0.001))
            except TimeoutError:
                raise _body_timeout(self.timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise too_large
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, _limited, send)
