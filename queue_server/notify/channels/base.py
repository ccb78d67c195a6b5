"""The contract every channel keeps, and the choice of a channel by its URL.

`smtp://user:pass@host:port?starttls=1&from=rigi@example.ge` sends e-mail,
`sms+http://host:port/path?token=…` (or `sms+https://`) posts SMS to an HTTP gateway,
`webpush://?subject=mailto:…&key=…` pushes to the phone page's service worker (VAPID),
`memory://` keeps what it "sent" in a list (tests, demos). Each module is imported only when
its scheme is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit


class ChannelError(Exception):
    """A message was not delivered. `permanent`: retrying cannot help (a refused recipient)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Outgoing:
    """One message to one recipient. The recipient is hidden from its repr (logs)."""

    to: str = field(repr=False)
    subject: str
    text: str
    reference: str  # the message's id: a gateway may use it to drop a repeated request


class Channel(Protocol):
    async def send(self, message: Outgoing) -> None:
        """Deliver or raise ChannelError."""

    async def close(self) -> None: ...


def create_channel(url: str) -> Channel:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from queue_server.notify.channels.memory import MemoryChannel

        return MemoryChannel()
    if scheme in ("smtp", "smtps"):
        from queue_server.notify.channels.smtp import SmtpChannel

        return SmtpChannel.from_url(url)
    if scheme == "webpush":
        from queue_server.notify.channels.webpush import WebPushChannel

        return WebPushChannel.from_url(url)
    if scheme in ("sms+http", "sms+https"):
        from queue_server.notify.channels.sms_http import HttpSmsChannel

        return HttpSmsChannel.from_url(url)
    raise ValueError(f"unknown channel scheme {scheme!r}")
