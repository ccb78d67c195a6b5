"""The request id of the request being handled, for log lines written while handling it."""

from __future__ import annotations

import random
import re
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
# An incoming id is kept only when it cannot smuggle anything into a log line or a header.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

request_id: ContextVar[str | None] = ContextVar("rigi_request_id", default=None)


def accept_request_id(incoming: str | None) -> str:
    """The client's (or the proxy's) id when it is sane, else a new one. A new one is 128 bits of
    the interpreter's own generator, not `uuid4`: an id only tells requests apart in the logs,
    and `os.urandom` is a system call that lets go of the interpreter lock: a busy thread of the
    process (the reports projector, a forecast) then took it, and the request waited up to the
    switch interval (5 ms) to go on; the compressed national day's watchdog found the late loop
    waiting there (docs/benchmarks.md, issue 18, n18day)."""
    if incoming is not None and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return f"{random.getrandbits(128):032x}"
