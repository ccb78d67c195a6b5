"""Real parts the notification tests share: the local SMS gateway in a uvicorn thread (which can
hold its requests, as an operator's gateway that hangs), an SMTP mailbox, and waiting."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from email import message_from_bytes
from typing import Any

import uvicorn

from queue_server.notify.gateway import gateway_app
from tests.support import free_port

GATEWAY_TOKEN = "gateway-token-for-tests"
INBOUND_TOKEN = "inbound-token-for-tests"


class Mailbox:
    """What the SMTP server (aiosmtpd) received, as parsed messages."""

    def __init__(self) -> None:
        self.mails: list[Any] = []
        self.refusing = False  # answer "try again later", as a busy mail server does
        self.refused = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refusing:
            self.refused += 1
            return "451 4.3.0 Try again later"
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"

    def texts(self) -> list[str]:
        """The received mails' texts."""
        return [
            mail.get_payload(decode=True).decode(mail.get_content_charset() or "utf-8")
            for mail in self.mails
        ]

    def code(self, count: int) -> str:
        """The one-time code of the `count`-th mail, waiting for it to arrive."""
        for _ in range(200):
            if len(self.mails) >= count:
                break
            threading.Event().wait(0.05)
        mail = self.mails[count - 1]
        text = mail.get_payload(decode=True).decode(mail.get_content_charset() or "utf-8")
        found = re.search(r"\b(\d{6})\b", text)
        assert found, text
        return found.group(1)


class Gateway:
    """The local SMS gateway in a uvicorn thread of its own. `hold()` keeps every request
    waiting (counted in `held`) until `release()`: a send the server is in the middle of."""

    def __init__(self) -> None:
        self.port = free_port()
        self.app = gateway_app(GATEWAY_TOKEN, None, INBOUND_TOKEN)
        self._open = threading.Event()
        self._open.set()
        self.held = 0
        config = uvicorn.Config(self._holding, host="127.0.0.1", port=self.port,
                                log_level="warning", interface="asgi3")  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(400):
            if self.server.started:
                break
            threading.Event().wait(0.025)

    async def _holding(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/send" and not self._open.is_set():
            # The request arrived whole before the hold: released, it is sent even when the
            # server that sent it is gone by then.
            arrived = [await receive()]
            while arrived[-1].get("more_body"):
                arrived.append(await receive())
            self.held += 1
            await asyncio.to_thread(self._open.wait)

            async def replay() -> Any:
                return arrived.pop(0) if arrived else await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sms_url(self) -> str:
        """The server's RIGI_NOTIFY_SMS_URL for this gateway."""
        return f"sms+http://127.0.0.1:{self.port}/send?token={GATEWAY_TOKEN}"

    @property
    def sent(self) -> list[dict[str, Any]]:
        return list(self.app.state.gateway.sent)

    @property
    def repeated(self) -> int:
        """Requests that repeated a reference already sent (the gateway dropped them)."""
        return int(self.app.state.gateway.repeated)

    def stop(self) -> None:
        self.release()
        self.server.should_exit = True
        self.thread.join(timeout=10)


async def until(
    condition: Callable[[], Any], seconds: float = 20.0, what: str = "messages"
) -> None:
    """Wait for `condition` (a bound so a broken build fails instead of hanging)."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
