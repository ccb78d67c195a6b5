"""The one error base of the server and the companions: a stable `code` and a plain `message`.

The server adds an HTTP status; the display client and printer agent print `code: message` and
put it in their reports. Codes are part of the protocol: never rename one.
"""

from __future__ import annotations

from typing import Any


class CodedError(Exception):
    """An error a user, device or setting can cause, named by a stable `code`."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class PhrasebookError(CodedError):
    """announcements.yaml is missing or malformed; the message names the file and the key."""

    code = "bad_config"


class SpeechFailed(CodedError):
    """espeak-ng did not produce the audio of a phrase."""

    code = "speech_failed"
