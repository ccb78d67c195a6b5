"""The hall pass: a phone whose ticket counts at once shows that it is in the hall.

DESIGN decision 13: a remote ticket counts only once it is activated at the kiosk or by staff.
A phone is anonymous, so the one thing it can show is something only the hall shows: every lobby
screen and kiosk displays a QR code of `/take/{branch}?k=<pass>`, and the pass rotates. A pass
is `branch.window.signature`: `window` counts `RIGI_HALL_PASS_MINUTES` periods since the epoch,
and the signature is an HMAC-SHA256 under a key derived from the booking key, so central and a
branch node verify the same pass without asking each other.

Screens show the current window's pass. A pass is honoured during its own window and the next
one: a citizen who scanned it the second before it rotated still has a whole period to choose a
service, and a photo of the screen sent home stops counting at most two periods after it was
shown. One window ahead is honoured too, for a process whose clock runs a little behind the one
that made the pass. Without a valid pass the phone page offers "join the queue now"
(docs/bookings.md), which counts only once checked in at the kiosk.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from queue_server.errors import Forbidden

HALL_PASS_HEADER = "x-rigi-hall-pass"
HALL_PASS_QUERY = "k"
SIGNATURE_BYTES = 12  # 96 bits: a forged pass is a guess against the server's key
MAX_PASS_LENGTH = 120


@dataclass(frozen=True)
class HallPass:
    """The pass a screen shows now, and when it should fetch the next one."""

    token: str
    rotates_at: datetime  # the next window starts: screens show its pass from then
    valid_until: datetime  # the last moment this pass is honoured


class HallPasses:
    """Makes and checks hall passes; the repr hides the key."""

    def __init__(self, secret: str, minutes: int, clock: Callable[[], datetime]) -> None:
        self._key = hmac.new(secret.encode(), b"rigi/take/hall-pass", hashlib.sha256).digest()
        self.period_s = minutes * 60
        self._clock = clock

    def __repr__(self) -> str:
        return "HallPasses(<hidden>)"

    def current(self, branch_id: str, now: datetime | None = None) -> HallPass:
        """The pass the hall of `branch_id` shows at `now` (default: the clock)."""
        window = self._window(now or self._clock())
        return HallPass(
            token=self._token(branch_id, window),
            rotates_at=self._start(window + 1),
            valid_until=self._start(window + 2),
        )

    def check(self, token: str | None, branch_id: str) -> None:
        """Raise a coded 403 unless `token` is a pass of `branch_id` honoured now."""
        if not token:
            raise Forbidden(
                "A ticket from a phone counts at once only in the hall: scan the QR code on a "
                "lobby screen or kiosk, or join the queue from where you are.",
                code="hall_pass_required",
            )
        parts = token.split(".")
        if (
            len(token) > MAX_PASS_LENGTH
            or len(parts) != 3
            or not parts[1].isdigit()
            or not hmac.compare_digest(self._signature(f"{parts[0]}.{parts[1]}"), parts[2])
        ):
            raise Forbidden(
                "This is not a hall pass of ours: scan the QR code on a lobby screen or kiosk.",
                code="hall_pass_invalid",
            )
        if parts[0] != branch_id:
            raise Forbidden(
                "This QR code belongs to another hall: scan the one on a screen in this hall.",
                code="hall_pass_other_branch",
            )
        age = self._window(self._clock()) - int(parts[1])
        if age > 1:
            raise Forbidden(
                "This QR code has changed since: scan the one on the screen again, or join "
                "the queue from where you are.",
                code="hall_pass_expired",
            )
        if age < -1:
            raise Forbidden("This hall pass is not valid yet.", code="hall_pass_invalid")

    def state(self, token: str | None, branch_id: str) -> str:
        """What the phone page says about a pass: "valid", or the code of its refusal."""
        try:
            self.check(token, branch_id)
        except Forbidden as refusal:
            return refusal.code
        return "valid"

    def _window(self, moment: datetime) -> int:
        return int(moment.timestamp()) // self.period_s

    def _start(self, window: int) -> datetime:
        return datetime.fromtimestamp(0, UTC) + timedelta(seconds=window * self.period_s)

    def _token(self, branch_id: str, window: int) -> str:
        body = f"{branch_id}.{window}"
        return f"{body}.{self._signature(body)}"

    def _signature(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:SIGNATURE_BYTES]).decode()
