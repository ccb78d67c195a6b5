"""Web Push to the phone page's service worker: VAPID-signed, aes128gcm-encrypted (pywebpush).

`webpush://?subject=mailto:ops@example.ge&key=<VAPID private key, base64url>` (the key as
`vapid --gen` makes it, or `queue-server vapid-key`). The "recipient" is the browser's push
subscription (endpoint and keys) as JSON. pywebpush posts with `requests`, so a send runs in a
worker thread with a timeout. 404/410 from the push service: the subscription is gone
(permanent); 429, 5xx and network errors are retried.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from queue_server.notify.channels.base import ChannelError, Outgoing

PUSH_TIMEOUT_S = 10
PUSH_TTL_S = 3600  # a phone that is off for an hour does not need "near" any more
GONE = (404, 410)


@dataclass(frozen=True)
class WebPushChannel:
    subject: str
    vapid: Vapid02 = field(repr=False)

    @classmethod
    def from_url(cls, url: str) -> WebPushChannel:
        query = parse_qs(urlsplit(url).query)
        key = query.get("key", [""])[0]
        subject = query.get("subject", [""])[0]
        if not key or not subject.startswith(("mailto:", "https://")):
            raise ValueError("webpush:// needs key=<VAPID private key> and subject=mailto:…")
        return cls(subject, Vapid02.from_string(private_key=key))

    @property
    def public_key(self) -> str:
        """The applicationServerKey the page subscribes with (uncompressed point, base64url)."""
        raw = self.vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    async def send(self, message: Outgoing) -> None:
        await asyncio.to_thread(self._send, message)

    def _send(self, message: Outgoing) -> None:
        payload = json.dumps(
            {"title": message.subject, "body": message.text, "tag": message.reference},
            ensure_ascii=False,
        )
        try:
            webpush(
                json.loads(message.to),
                payload,
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.subject},
                timeout=PUSH_TIMEOUT_S,
                ttl=PUSH_TTL_S,
            )
        except WebPushException as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status is None:
                raise ChannelError("the push service is unreachable") from exc
            permanent = status in GONE or (400 <= status < 500 and status != 429)
            raise ChannelError(f"the push service answered {status}", permanent=permanent) from exc
        except OSError as exc:
            raise ChannelError(f"the push service is unreachable ({type(exc).__name__})") from exc

    async def close(self) -> None:
        return None
