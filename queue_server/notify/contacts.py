"""A citizen's contact: validated, normalised, encrypted at rest, known elsewhere by a keyed hash.

The number or address is needed only to send a message. It is stored encrypted (Fernet, a key
derived from the server's secret) and identified by an HMAC of the same secret, so the flood
limit and SMS replies find a subscription without reading the contact, and no log, error body or
public page ever holds it (errors name the problem, never the value).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from queue_server.errors import ValidationFailed

SMS, EMAIL = "sms", "email"
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


def contact_of(phone: str | None, email: str | None) -> Contact:
    """Exactly one of a phone number and an e-mail address, validated."""
    if (phone is None) == (email is None):
        raise ValidationFailed("Give a phone number or an e-mail address.", code="bad_contact")
    if phone is not None:
        return Contact(SMS, normalise_phone(phone))
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
