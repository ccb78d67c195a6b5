"""Authenticates every request and WebSocket handshake before the app sees it.

- a bearer token (devices) or the session cookie (people) becomes `scope["rigi.principal"]`;
- a token in the query string is refused (URLs end up in logs and browser history);
- a cookie-authenticated state-changing request needs the CSRF header and a same-site Origin;
- a WebSocket handshake from a foreign Origin is refused.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
from collections.abc import Iterable
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from queue_server.access.principal import ANONYMOUS, Principal
from queue_server.access.sessions import COOKIE_NAME, CSRF_HEADER
from queue_server.errors import BadRequest, Forbidden, Overloaded, Unauthorized
from queue_server.responses import error_response

if TYPE_CHECKING:
    from queue_server.app import Rigi
from rigi_protocol.closecodes import CLOSE_FORBIDDEN, CLOSE_TRY_AGAIN

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIGN_IN_PATH = "/api/v1/session"  # signing in again over a stale session needs no CSRF token
URL_TOKEN_NAMES = ("token", "access_token", "auth")


def allowed_origin(headers: Headers, scheme: str, extra: Iterable[str]) -> bool:
    """No Origin (a device's client, curl) or the server's own origin, or a configured one."""
    origin = headers.get("origin")
    if origin is None:
        return True
    host = headers.get("host", "")
    own = {f"http://{host}", f"https://{host}"} if scheme in ("http", "ws") else {f"https://{host}"}
    return origin in own or origin in set(extra)


class AccessMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rigi: Rigi = scope["app"].state.rigi
        headers = Headers(scope=scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if any(name in query for name in URL_TOKEN_NAMES):
            await self._refuse(
                scope, receive, send,
                BadRequest("Send credentials in a header or the first message, never in the URL.",
                           code="token_in_url"),
            )  # fmt: skip
            return
        if scope["type"] == "websocket" and not allowed_origin(
            headers, scope.get("scheme", "ws"), rigi.settings.allowed_origins
        ):
            log.warning("refused a WebSocket from origin %s", headers.get("origin"))
            await self._refuse(scope, receive, send, Forbidden("Foreign origin.", code="origin"))
            return
        try:
            principal, by_cookie = await self._principal(rigi, headers)
        except Overloaded as error:  # no database connection in time: 503, not a 500
            await self._refuse(scope, receive, send, error, CLOSE_TRY_AGAIN)
            return
        if principal is _INVALID_TOKEN and scope["type"] == "http":
            # A revoked or unknown device token is refused, not served as an anonymous phone.
            await self._refuse(
                scope, receive, send,
                Unauthorized("This device token is revoked or unknown."),
            )  # fmt: skip
            return
        if (
            scope["type"] == "http"
            and by_cookie
            and scope["method"] not in SAFE_METHODS
            and scope["path"] != SIGN_IN_PATH
            and not self._csrf_ok(scope, headers, principal, rigi)
        ):
            log.warning("refused a cross-site request by %s to %s", principal.actor, scope["path"])
            await self._refuse(
                scope, receive, send,
                Forbidden("This request lacks its CSRF token.", code="csrf_failed"),
            )  # fmt: skip
            return
        scope["rigi.principal"] = principal
        scope["rigi.actor"] = principal.actor
        await self.app(scope, receive, send)

    async def _principal(self, rigi: Rigi, headers: Headers) -> tuple[Principal, bool]:
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            device = await rigi.accounts.device_for_token(authorization[7:].strip())
            return (device or _INVALID_TOKEN), False
        cookie = SimpleCookie(headers.get("cookie", "")).get(COOKIE_NAME)
        if cookie is not None:
            session = rigi.sessions.read(cookie.value)
            if session is not None:
                user = await rigi.accounts.user_for_session(session.user_id, session.version)
                if user is not None:
                    return _with_csrf(user, session.csrf_token), True
        return ANONYMOUS, False

    def _csrf_ok(self, scope: Scope, headers: Headers, principal: Principal, rigi: Rigi) -> bool:
        sent = headers.get(CSRF_HEADER, "")
        if not principal.csrf_token or not hmac.compare_digest(sent, principal.csrf_token):
            return False
        return allowed_origin(headers, scope.get("scheme", "http"), rigi.settings.allowed_origins)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, error: Any, close: int = CLOSE_FORBIDDEN
    ) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": close, "reason": error.code})
            return
        await error_response(error)(scope, receive, send)


def _with_csrf(principal: Principal, csrf_token: str) -> Principal:
    return dataclasses.replace(principal, csrf_token=csrf_token)


# A bearer token that matches no live device: HTTP requests get 401; a feed treats it as
# nobody (and refuses it where a device is needed).
_INVALID_TOKEN = Principal(role=None, name="invalid token")
