"""One base error with a stable `code`, so the CLI and the logs say what went wrong."""

from __future__ import annotations


class DisplayError(Exception):
    """Base of every display_client error."""

    code = "display_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(DisplayError):
    """A setting is missing or malformed: the program stops and names it."""

    code = "bad_config"


class SpeechFailed(DisplayError):
    """espeak-ng (through pyttsx3) did not produce audio for a phrase."""

    code = "speech_failed"


class PlaybackFailed(DisplayError):
    """The audio could not be played (no sound card, aplay missing or failing)."""

    code = "playback_failed"
