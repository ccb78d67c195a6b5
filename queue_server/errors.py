"""One error family with stable codes; the HTTP layer maps each code to a status in one place."""

from __future__ import annotations

from typing import Any

from rigi_protocol.errors import CodedError


class RigiError(CodedError):
    """Base of every error a user or device can cause: a stable `code`, a plain `message`, and
    the HTTP status the API answers it with."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message, code=code)
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(RigiError):
    code = "bad_request"
    status = 400


class ValidationFailed(RigiError):
    code = "validation_failed"
    status = 422


class NotFound(RigiError):
    code = "not_found"
    status = 404


class Conflict(RigiError):
    code = "conflict"
    status = 409


class IllegalTransition(Conflict):
    code = "illegal_transition"


class BranchNodeOwned(Conflict):
    """A central process was asked to write the queue of a branch that its node serves."""

    code = "branch_node_owned"


class Unauthorized(RigiError):
    code = "unauthorized"
    status = 401


class Forbidden(RigiError):
    code = "forbidden"
    status = 403


class PayloadTooLarge(RigiError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(RigiError):
    code = "unsupported_media_type"
    status = 415


class RateLimited(RigiError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after


class Overloaded(RigiError):
    """The database did not give this request a connection, or answer it, in time: the server
    is overloaded. A clear 503 the client may retry, instead of a 500 (or, behind nginx, a
    request held until the proxy gives up)."""

    code = "overloaded"
    status = 503
    retry_after = 5


class ConfigError(Exception):
    """The configuration cannot be loaded; the message names the file and the bad key."""
