"""Log setup: plain text or one JSON object a line (`RIGI_LOG_FORMAT`), each line with the
request id it was written under, and scrubbed of anything secret or personal.

Scrubbing is the last line of defence, applied to every formatted line whatever logger wrote
it (uvicorn's included): device tokens, bearer credentials, `key=value` secrets, query strings
(a setup link carries a device token), ticket ids in paths (a ticket id opens its page and
cancels it), e-mail addresses, international phone numbers and client IP addresses.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from queue_server.ops.context import request_id

_SCRUB: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"rigi_[A-Za-z0-9_-]{8,}"), "[token]"),
    (re.compile(r"(?i)\bbearer\s+[^\s\"',;]+"), "Bearer [redacted]"),
    (
        re.compile(
            r"(?i)\b(token|setup|password|passwd|secret|secret_key|csrf_token|authorization"
            r"|cookie|api_key|rigi_session)(\"?\s*[:=]\s*\"?)([^\s\"'&,;}]+)"
        ),
        r"\1\2[redacted]",
    ),
    (re.compile(r"\?[^\s\"']+"), "?[query]"),
    (re.compile(r"/tickets/[A-Za-z0-9_-]{6,}"), "/tickets/{ticket_id}"),
    (re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"), "[email]"),
    (re.compile(r"\+\d[\d \-]{7,16}\d"), "[phone]"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "[address]"),
    (re.compile(r"\[[0-9a-fA-F:]*:[0-9a-fA-F:]+\](?::\d+)?"), "[address]"),
)


def scrub(text: str) -> str:
    """`text` with every secret or personal datum the patterns know replaced."""
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = request_id.get() or "-"
        return scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id, and the error."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        rid = request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        if record.exc_info:
            entry["error"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, log_format: str) -> None:
    """Send every logger (uvicorn's too: run it with `log_config=None`) through one handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
