"""Signed session cookies (itsdangerous) that carry the user, a session version and a CSRF token."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "rigi_session"
SESSION_MAX_AGE_S = 12 * 3600  # one working day
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, slots=True)
class SessionData:
    user_id: str
    version: int
    csrf_token: str


class SessionSigner:
    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="rigi-session")

    def issue(self, user_id: str, version: int) -> tuple[str, SessionData]:
        data = SessionData(user_id, version, secrets.token_urlsafe(24))
        cookie = self._serializer.dumps({"u": user_id, "v": version, "c": data.csrf_token})
        return cookie, data

    def read(self, cookie: str) -> SessionData | None:
        try:
            payload = self._serializer.loads(cookie, max_age=SESSION_MAX_AGE_S)
            return SessionData(str(payload["u"]), int(payload["v"]), str(payload["c"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            return None


def development_secret(data_dir: Path) -> str:
    """Without RIGI_SECRET_KEY (development only), keep a generated key in the data folder so
    sessions survive a restart. Production refuses to start without a configured key."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret
