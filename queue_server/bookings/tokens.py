"""Secrets of bookings: the one-time code, the short code and the signed check-in token.

The check-in token is `booking-id.branch.slot-epoch.service.language.signature` with an
HMAC-SHA256 of a key derived from the booking key (`RIGI_BOOKING_KEY`, else the server's secret),
so a branch node holding that key verifies a QR code offline and, from the service and language
it names, checks in a booking made centrally that has not reached it yet (docs/offline.md).
Tokens of the earlier form `booking-id.branch.slot-epoch.signature` still verify. A one-time
code is stored only as an HMAC of the booking and the code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

CODE_DIGITS = 6
SHORT_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: typed at a kiosk
SHORT_CODE_LENGTH = 8  # 32⁸ ≈ 10¹²
SIGNATURE_BYTES = 16


@dataclass(frozen=True)
class CheckInClaim:
    booking_id: str
    branch_id: str
    slot_at: datetime
    service_id: str | None = None  # None in a token of the earlier form
    language: str | None = None


class BookingKeys:
    """Keys derived from the server's secret; the repr hides them."""

    def __init__(self, secret: str) -> None:
        self._code_key = _derive(secret, b"rigi/bookings/one-time-code")
        self._token_key = _derive(secret, b"rigi/bookings/check-in-token")

    def __repr__(self) -> str:
        return "BookingKeys(<hidden>)"

    def code_hash(self, booking_id: str, code: str) -> str:
        return hmac.new(self._code_key, f"{booking_id}:{code}".encode(), hashlib.sha256).hexdigest()

    def sign(
        self, booking_id: str, branch_id: str, slot_at: datetime, service_id: str, language: str
    ) -> str:
        body = f"{booking_id}.{branch_id}.{int(slot_at.timestamp())}.{service_id}.{language}"
        return f"{body}.{self._signature(body)}"

    def verify(self, token: str) -> CheckInClaim | None:
        """The claim of a genuine token; None for anything else."""
        parts = token.split(".")
        if len(parts) not in (4, 6) or not parts[2].isdigit():
            return None
        body = ".".join(parts[:-1])
        if not hmac.compare_digest(self._signature(body), parts[-1]):
            return None
        slot_at = datetime.fromtimestamp(int(parts[2]), UTC)
        if len(parts) == 4:
            return CheckInClaim(parts[0], parts[1], slot_at)
        return CheckInClaim(parts[0], parts[1], slot_at, parts[3], parts[4])

    def _signature(self, body: str) -> str:
        digest = hmac.new(self._token_key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:SIGNATURE_BYTES]).decode().rstrip("=")


def one_time_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def short_code() -> str:
    return "".join(secrets.choice(SHORT_CODE_ALPHABET) for _ in range(SHORT_CODE_LENGTH))


def _derive(secret: str, purpose: bytes) -> bytes:
    return hmac.new(secret.encode(), purpose, hashlib.sha256).digest()
