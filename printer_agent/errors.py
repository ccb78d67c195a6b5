"""Errors of the printer agent: one base with a stable `code`, so acks and logs name the cause."""

from __future__ import annotations

from rigi_protocol.errors import CodedError


class PrinterAgentError(CodedError):
    """Base of every error the agent reports; `code` is stable and goes into failed acks."""

    code = "printer_error"


class ConfigError(PrinterAgentError):
    """A bad setting; the message names the setting so the installer can fix it."""

    code = "bad_config"


class FontMissing(PrinterAgentError):
    """The TrueType font for Georgian/Armenian raster lines is not installed."""

    code = "font_missing"


class PrinterUnavailable(PrinterAgentError):
    """The printer cannot take a job now (offline, cover open, paper out): the job waits."""

    code = "printer_unavailable"


class PrintFailed(PrinterAgentError):
    """Printing started or was attempted and went wrong; counts towards setting the job aside."""

    code = "print_failed"


class BadJob(PrinterAgentError):
    """A job message that cannot be laid out; retrying cannot help, so it fails at once."""

    code = "bad_job"
