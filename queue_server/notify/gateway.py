"""`queue-server sms-gateway`: a small local SMS gateway that stands in for the operator in
tests and demos. It takes messages in the format of docs/notifications.md, records what it
"sent" (shown at `GET /messages`), and posts a citizen's reply to the server's signed webhook
(`POST /reply {"from": …, "text": …}`). `GET /counts` says how many it sent and how many
requests repeated a reference already sent (dropped). It never logs a number or a text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

INBOUND_PATH = "/api/v1/notify/sms-inbound"
SIGNATURE_HEADER = "X-Rigi-Signature"
FORWARD_TIMEOUT_S = 10
KEPT_MAX = 100_000


@dataclass
class GatewayState:
    token: str | None = field(default=None, repr=False)
    server_url: str | None = None
    inbound_token: str | None = field(default=None, repr=False)
    sent: list[dict[str, Any]] = field(default_factory=list)
    references: set[str] = field(default_factory=set)
    repeated: int = 0  # requests whose reference was sent already (a sender retried)


def _error(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status)


def gateway_app(
    token: str | None = None, server_url: str | None = None, inbound_token: str | None = None
) -> Starlette:
    state = GatewayState(token, server_url, inbound_token)

    async def send(request: Request) -> JSONResponse:
        if state.token and request.headers.get("authorization") != f"Bearer {state.token}":
            return _error("unauthorized", "A valid bearer token is needed.", 401)
        try:
            body = json.loads(await request.body())
            to, text = str(body["to"]), str(body["text"])
            reference = str(body.get("reference") or len(state.sent))
        except (ValueError, KeyError, TypeError):
            return _error("malformed", 'Send {"to": …, "text": …, "reference": …}.', 400)
        if reference in state.references:  # a retried request: sent once already
            state.repeated += 1
            return JSONResponse({"status": "duplicate", "reference": reference})
        state.references.add(reference)
        state.sent.append(
            {"to": to, "text": text, "reference": reference,
             "at": datetime.now(UTC).isoformat()}
        )  # fmt: skip
        del state.sent[:-KEPT_MAX]
        return JSONResponse({"status": "sent", "reference": reference})

    async def messages(request: Request) -> JSONResponse:
        return JSONResponse(state.sent)

    async def counts(request: Request) -> JSONResponse:
        return JSONResponse({"sent": len(state.sent), "repeated": state.repeated})

    async def reply(request: Request) -> JSONResponse:
        if not (state.server_url and state.inbound_token):
            return _error("no_server", "Start the gateway with --server-url and a token.", 503)
        raw = await request.body()
        signature = hmac.new(state.inbound_token.encode(), raw, hashlib.sha256).hexdigest()
        async with httpx.AsyncClient(timeout=FORWARD_TIMEOUT_S) as client:
            answer = await client.post(
                state.server_url.rstrip("/") + INBOUND_PATH,
                content=raw,
                headers={SIGNATURE_HEADER: signature, "Content-Type": "application/json"},
            )
        return JSONResponse(answer.json(), answer.status_code)

    app = Starlette(
        routes=[
            Route("/send", send, methods=["POST"]),
            Route("/messages", messages, methods=["GET"]),
            Route("/counts", counts, methods=["GET"]),
            Route("/reply", reply, methods=["POST"]),
        ]
    )
    app.state.gateway = state
    return app
