"""SMS through an HTTP gateway: one JSON POST per message (the format is in
docs/notifications.md), so a real operator's API is a small adapter away.

`sms+http://host:port/path?token=…` posts to `http://host:port/path` with
`Authorization: Bearer <token>` and `{"to": "+995…", "text": "…", "reference": "…"}`.
2xx is sent; 4xx (but 429) is permanent; 429, 5xx and network errors are retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx

from queue_server.notify.channels.base import ChannelError, Outgoing

SMS_TIMEOUT_S = 10


@dataclass
class HttpSmsChannel:
    endpoint: str
    token: str | None = field(default=None, repr=False)
    _client: httpx.AsyncClient | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> HttpSmsChannel:
        parts = urlsplit(url)
        scheme = parts.scheme.removeprefix("sms+")
        token = parse_qs(parts.query).get("token", [None])[0]
        return cls(urlunsplit((scheme, parts.netloc, parts.path or "/", "", "")), token)

    def __post_init__(self) -> None:
        # Made at start-up, not at the first message: building its TLS context takes a
        # noticeable moment of the loop, which a call's displays would otherwise wait out.
        self._client = httpx.AsyncClient(timeout=SMS_TIMEOUT_S)

    async def send(self, message: Outgoing) -> None:
        assert self._client is not None
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        body = {"to": message.to, "text": message.text, "reference": message.reference}
        try:
            response = await self._client.post(self.endpoint, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ChannelError(f"the SMS gateway is unreachable ({type(exc).__name__})") from exc
        status = response.status_code
        if status >= 300:
            permanent = 400 <= status < 500 and status != 429
            raise ChannelError(f"the SMS gateway answered {status}", permanent=permanent)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
