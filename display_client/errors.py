"""The display client's errors: the shared coded base, so the CLI and the logs say what failed."""

from __future__ import annotations

from rigi_protocol.errors import CodedError, PhrasebookError, SpeechFailed

__all__ = ["ConfigError", "DisplayError", "PhrasebookError", "PlaybackFailed", "SpeechFailed"]


class DisplayError(CodedError):
    """Base of every display_client error."""

    code = "display_error"


class ConfigError(DisplayError):
    """A setting is missing or malformed: the program stops and names it."""

    code = "bad_config"


class PlaybackFailed(DisplayError):
    """The audio could not be played (no sound card, aplay missing or failing)."""

    code = "playback_failed"
