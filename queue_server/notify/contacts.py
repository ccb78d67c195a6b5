"""A citizen's contact: validated, normalised, encrypted at rest, known elsewhere by a keyed hash.

The number or address is needed only to send a message. It is stored encrypted (Fernet, a key
derived from the server's secret) and identified by an HMAC of the same secret, so the flood
limit and SMS replies find a subscription without reading the contact, and no log, error body or
public page ever holds it (errors name the problem, never the value).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken

from queue_server.errors import ValidationFailed

SMS, EMAIL, PUSH = "sms", "email", "push"
GEORGIA = "+995"
# Georgian numbers are nine digits after +995; mobiles start with 5 (also dialled as 5XXXXXXXX).
_GEORGIAN = re.compile(r"^\+995\d{9}$")
_LOCAL_MOBILE = re.compile(r"^5\d{8}$")
_SEPARATORS = re.compile(r"[\s\-().]")
# Deliberately plain: one @, a dotted domain, no spaces; the mail server has the last word.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$"
)
EMAIL_MAX = 254


@dataclass(frozen=True)
class Contact:
    """A validated contact. Its repr hides the value: contacts never reach a log."""

    channel: str
    value: str

    def __repr__(self) -> str:
        return f"Contact({self.channel}, <hidden>)"

    __str__ = __repr__


def normalise_phone(text: str) -> str:
    """`+995 555 12-34-56`, `00995555123456`, `555123456` → `+995555123456`."""
    number = _SEPARATORS.sub("", text)
    if number.startswith("00"):
        number = "+" + number[2:]
    if _LOCAL_MOBILE.match(number):
        number = GEORGIA + number
    if not _GEORGIAN.match(number):
        raise ValidationFailed(
            "Give a Georgian phone number: +995 and nine digits, or a mobile number 5XXXXXXXX.",
            code="bad_phone_number",
        )
    return number


def normalise_email(text: str) -> str:
    address = text.strip()
    if len(address) > EMAIL_MAX or not _EMAIL.match(address):
        raise ValidationFailed("Give an e-mail address like name@example.ge.", code="bad_email")
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


_KEY = re.compile(r"^[A-Za-z0-9_-]{16,200}={0,2}$")  # base64url, as browsers give p256dh/auth
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def normalise_push(subscription: Mapping[str, object], hosts: Sequence[str]) -> str:
    """A browser's push subscription as canonical JSON. The server will POST to its endpoint,
    so only the push services in `hosts` (over HTTPS; a loopback host may be plain HTTP, for
    tests) are taken: a subscription cannot aim the server at anything else."""
    endpoint = subscription.get("endpoint")
    keys = subscription.get("keys")
    refused = ValidationFailed(
        "Give the browser's push subscription from a known push service.",
        code="bad_push_subscription",
    )
    if not isinstance(endpoint, str) or not isinstance(keys, Mapping):
        raise refused
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if not any(fnmatch.fnmatch(host, pattern) for pattern in hosts):
        raise refused
    if parts.scheme != "https" and not (parts.scheme == "http" and host in LOOPBACK):
        raise refused
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not all(isinstance(k, str) and _KEY.match(k) for k in (p256dh, auth)):
        raise refused
    return json.dumps({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}})


def contact_of(
    phone: str | None,
    email: str | None,
    push: Mapping[str, object] | None = None,
    push_hosts: Sequence[str] = (),
) -> Contact:
    """Exactly one of a phone number, an e-mail address and a push subscription, validated."""
    if sum(x is not None for x in (phone, email, push)) != 1:
        raise ValidationFailed("Give a phone number or an e-mail address.", code="bad_contact")
    if phone is not None:
        return Contact(SMS, normalise_phone(phone))
    if push is not None:
        return Contact(PUSH, normalise_push(push, push_hosts))
    assert email is not None
    return Contact(EMAIL, normalise_email(email))


class ContactVault:
    """Encrypts, decrypts and hashes contacts with keys derived from the server's secret."""

    def __init__(self, secret: str) -> None:
        self._hash_key = _derive(secret, b"rigi/notify/contact-hash")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, b"rigi/notify/contact-key")))

    def __repr__(self) -> str:
        return "ContactVault(<keys hidden>)"

    def hash(self, channel: str, value: str) -> str:
        """The keyed hash that identifies a contact without revealing it."""
        message = f"{channel}:{value.lower()}".encode()
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()

    def seal(self, contact: Contact) -> str:
        return self._fernet.encrypt(contact.value.encode()).decode("ascii")

    def open(self, channel: str, sealed: str) -> Contact | None:
        """The contact back, or None when it cannot be read (the secret changed)."""
        try:
            return Contact(channel, self._fernet.decrypt(sealed.encode("ascii")).decode())
        except InvalidToken:
            return None


def _derive(secret: str, purpose: bytes) -> bytes:
    return hmac.new(secret.encode(), purpose, hashlib.sha256).digest()
