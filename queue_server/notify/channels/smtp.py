"""E-mail over SMTP with the standard library, in a worker thread (smtplib blocks).

`smtp://user:pass@host:port?starttls=1&from=rigi@example.ge`; `smtps://` for implicit TLS.
Every connection has a timeout; a 5xx answer for a recipient is permanent, anything else is
retried by the worker.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from queue_server.notify.channels.base import ChannelError, Outgoing

SMTP_TIMEOUT_S = 15
DEFAULT_FROM = "rigi@localhost"


@dataclass(frozen=True)
class SmtpChannel:
    host: str
    port: int
    sender: str
    starttls: bool = False
    implicit_tls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> SmtpChannel:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (465 if implicit else 25),
            sender=query.get("from", [DEFAULT_FROM])[0],
            starttls=query.get("starttls", ["0"])[0] in ("1", "true", "yes"),
            implicit_tls=implicit,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    async def send(self, message: Outgoing) -> None:
        await asyncio.to_thread(self._send, message)

    def _send(self, message: Outgoing) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Message-ID"] = f"<{message.reference}@rigi>"
        mail.set_content(message.text)
        try:
            smtp_class = smtplib.SMTP_SSL if self.implicit_tls else smtplib.SMTP
            with smtp_class(self.host, self.port, timeout=SMTP_TIMEOUT_S) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise ChannelError("the mail server refused the recipient", permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            raise ChannelError(
                f"the mail server answered {exc.smtp_code}", permanent=500 <= exc.smtp_code < 600
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"the mail server is unreachable ({type(exc).__name__})") from exc

    async def close(self) -> None:
        return None
