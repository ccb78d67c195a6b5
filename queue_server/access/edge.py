"""What every request passes first: its real client address, sanity checks, HSTS.

The client address decides the rate-limit buckets (phones' tickets, sign-in), so it must not
be something a client can write. `X-Forwarded-For` and `X-Forwarded-Proto` are believed only
when the direct peer is a configured trusted proxy (`RIGI_TRUSTED_PROXIES`, none by default);
then the client is the right-most address in the chain that is not itself a trusted proxy
(everything left of it was written by the client and proves nothing). uvicorn's own
proxy-header handling, which trusts 127.0.0.1 by default, is switched off by `queue-server
serve`: this middleware is the only place that reads those headers.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from queue_server.errors import BadRequest, RigiError
from queue_server.responses import error_response

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
HSTS = b"max-age=31536000; includeSubDomains"
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
DEFAULT_WS_PER_ADDRESS = 1_000  # a hall's screens and consoles, or phones behind a carrier NAT
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN_LATER = 1013
log = logging.getLogger(__name__)
_SECURE = {"http": "https", "websocket": "wss"}
_PLAIN = {"http": "http", "websocket": "ws"}


def parse_networks(text: str) -> tuple[Network, ...]:
    """'10.0.0.1, 192.168.0.0/16, ::1' → networks; a bad entry raises ValueError naming it."""
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"not an address or CIDR: {entry!r}") from None
    return tuple(networks)


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(peer: str, forwarded_for: str, trusted: Sequence[Network]) -> str:
    """The client behind a chain of proxies: the right-most untrusted hop, if `peer` is a
    trusted proxy; otherwise the peer itself."""
    if not _is_trusted(peer, trusted):
        return peer
    client = peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # garbage a trusted proxy passed on: the last good hop is the client
        client = hop
        if not _is_trusted(hop, trusted):
            break
    return client


class EdgeMiddleware:
    """Sets `scope["client"]` and `scope["scheme"]` from a trusted proxy's headers; refuses a
    NUL byte in a path (no file or route has one; static files would fail on it), headers
    over `max_header_bytes` (431) and WebSockets past `ws_per_address` open ones from one
    client address in this process; sends HSTS in production."""

    def __init__(
        self,
        app: ASGIApp,
        trusted_proxies: Sequence[Network],
        hsts: bool,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        ws_per_address: int = DEFAULT_WS_PER_ADDRESS,
    ) -> None:
        self.app = app
        self.trusted = tuple(trusted_proxies)
        self.hsts = hsts
        self.max_header_bytes = max_header_bytes
        self.ws_per_address = ws_per_address
        self._open_sockets: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.trusted and scope.get("client"):
            scope = self._behind_proxy(scope)
        refusal = self._refusal(scope)
        if refusal is not None:
            if kind == "http":
                await error_response(refusal)(scope, receive, send)
            else:
                await send(
                    {"type": "websocket.close", "code": CLOSE_POLICY, "reason": refusal.code}
                )
            return
        if kind == "websocket":
            await self._counted_websocket(scope, receive, send)
            return
        if self.hsts:
            send = self._with_hsts(send)
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> RigiError | None:
        if "\x00" in scope["path"]:
            return BadRequest("A path cannot contain a NUL byte.", code="bad_path")
        if sum(len(name) + len(value) for name, value in scope["headers"]) > self.max_header_bytes:
            error = RigiError(
                f"The request headers are larger than {self.max_header_bytes} bytes.",
                code="headers_too_large",
            )
            error.status = 431
            return error
        return None

    async def _counted_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        address = scope["client"][0] if scope.get("client") else "unknown"
        if self._open_sockets[address] >= self.ws_per_address:
            log.warning("refused a WebSocket from %s: %d open", address, self.ws_per_address)
            await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER,
                        "reason": "too_many_connections"})  # fmt: skip
            return
        self._open_sockets[address] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self._open_sockets[address] -= 1
            if self._open_sockets[address] <= 0:
                del self._open_sockets[address]

    def _behind_proxy(self, scope: Scope) -> Scope:
        peer = scope["client"][0]
        if not _is_trusted(peer, self.trusted):
            return scope
        forwarded_for: list[str] = []
        proto = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded_for.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").split(",")[-1].strip().lower()
        scope = dict(scope)
        if forwarded_for:
            scope["client"] = (client_address(peer, ",".join(forwarded_for), self.trusted), 0)
        if proto in ("http", "https"):
            scheme = _SECURE if proto == "https" else _PLAIN
            scope["scheme"] = scheme[scope["type"]]
        return scope

    def _with_hsts(self, send: Send) -> Send:
        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"strict-transport-security", HSTS))
                message = {**message, "headers": headers}
            await send(message)

        return _send
