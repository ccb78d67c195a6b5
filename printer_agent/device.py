"""One physical printer behind python-escpos, driven only from its own worker thread.

python-escpos is synchronous and its network transport waits up to 60 s by default, so the agent
builds every transport with a short timeout and never calls it on the event loop.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass

from escpos.escpos import Escpos

from printer_agent.config import PrinterConfig
from printer_agent.errors import PrinterUnavailable, PrintFailed
from printer_agent.layout import RasterBlock, TicketLayout, printer_text_lines

log = logging.getLogger(__name__)

PAPER_NAMES = {2: "ok", 1: "near_end", 0: "out"}
UDEV_RULES_FILE = "/etc/udev/rules.d/60-rigi-printer.rules"


def udev_rule(config: PrinterConfig) -> str:
    """The line that lets the agent's user open this USB printer (docs/printing.md)."""
    return (
        f'SUBSYSTEM=="usb", ATTRS{{idVendor}}=="{config.usb_vendor:04x}", '
        f'ATTRS{{idProduct}}=="{config.usb_product:04x}", MODE="0660", GROUP="lp"'
    )


def usb_unavailable(config: PrinterConfig, exc: Exception) -> PrinterUnavailable:
    """A USB printer that cannot be opened: say whether it is missing or forbidden, and how
    to fix it, rather than python-escpos's "Device not found"."""
    device = f"{config.usb_vendor:04x}:{config.usb_product:04x}"
    fix = (
        f"check the cable and `lsusb` for {device}; if it is listed, let the agent's user open "
        f"it: add to {UDEV_RULES_FILE} the line\n  {udev_rule(config)}\nthen run "
        "`udevadm control --reload && udevadm trigger` and add the user to the group lp"
    )
    if getattr(exc, "errno", None) == errno.EACCES or "Access denied" in str(exc):
        return PrinterUnavailable(
            f"USB printer {config.id} ({device}) is there but not allowed: {fix}",
            code="usb_access_denied",
        )
    return PrinterUnavailable(
        f"USB printer {config.id} ({device}) not found: {fix}", code="usb_printer_not_found"
    )


@dataclass(frozen=True)
class Health:
    """What the server is told about a printer."""

    online: bool
    paper: str = "unknown"

    @property
    def ready(self) -> bool:
        return self.online and self.paper in ("ok", "near_end", "unknown")


def build_printer(config: PrinterConfig) -> Escpos:
    """The python-escpos object for the configured transport (not yet connected)."""
    kwargs = {"profile": config.profile}
    if config.transport == "network":
        from escpos.printer import Network

        printer: Escpos = Network(config.host, port=config.port, timeout=config.timeout, **kwargs)
    elif config.transport == "usb":
        from escpos.printer import Usb

        printer = Usb(
            config.usb_vendor, config.usb_product, timeout=int(config.timeout * 1000), **kwargs
        )
    elif config.transport == "serial":
        from escpos.printer import Serial

        printer = Serial(config.device, baudrate=config.baudrate, timeout=config.timeout, **kwargs)
    elif config.transport == "file":
        from escpos.printer import File

        printer = File(config.device, **kwargs)
    else:
        from escpos.printer import Dummy

        printer = Dummy(**kwargs)
    media = printer.profile.profile_data.setdefault("media", {}).setdefault("width", {})
    if not isinstance(media.get("pixels"), int):
        # An unknown width makes python-escpos print a warning to stdout on every image.
        media["pixels"] = config.width
    return printer


class PrinterDevice:
    """Owns one python-escpos printer; every method blocks and belongs in the worker thread."""

    def __init__(self, config: PrinterConfig) -> None:
        self.config = config
        self._printer: Escpos | None = None
        self._last_problem = ""

    @property
    def escpos(self) -> Escpos | None:
        return self._printer

    def _connected(self) -> Escpos:
        if self._printer is None:
            printer = build_printer(self.config)
            try:
                if self.config.transport != "dummy":
                    printer.open()
            except Exception as exc:
                if self.config.transport == "usb":
                    raise usb_unavailable(self.config, exc) from exc
                raise PrinterUnavailable(
                    f"printer {self.config.id} unreachable: {exc}",
                    code="serial_port_unavailable" if self.config.transport == "serial" else None,
                ) from exc
            self._printer = printer
        return self._printer

    def close(self) -> None:
        """Drop the connection; the next call reconnects."""
        printer, self._printer = self._printer, None
        if printer is not None:
            try:
                printer.close()
            except Exception:  # closing a dead socket is not news
                log.debug("closing printer %s failed", self.config.id, exc_info=True)

    def health(self) -> Health:
        """Ask the printer (DLE EOT) whether it is online and has paper."""
        if self.config.transport in ("dummy", "file"):
            return Health(online=True, paper="unknown")
        try:
            printer = self._connected()
        except PrinterUnavailable as problem:
            if problem.message != self._last_problem:  # once per new problem, not every poll
                self._last_problem = problem.message
                log.warning("%s: %s", problem.code, problem.message)
            return Health(online=False)
        self._last_problem = ""
        try:
            online = printer.is_online()
            paper = PAPER_NAMES.get(printer.paper_status(), "unknown") if online else "unknown"
        except Exception as exc:
            log.info("printer %s did not answer a status query: %s", self.config.id, exc)
            self.close()
            return Health(online=False)
        return Health(online=online, paper=paper)

    def print_layout(self, layout: TicketLayout, on_started: Callable[[], None]) -> None:
        """Send the whole ticket; `on_started` runs just before the first byte leaves."""
        printer = self._connected()
        on_started()
        try:
            printer.hw("INIT")
            for block in layout.blocks:
                if isinstance(block, RasterBlock):
                    printer.set_with_default(align="left")
                    printer.image(block.image, impl="bitImageRaster", center=False)
                    continue
                scale = block.scale
                printer.set_with_default(
                    align=block.align,
                    bold=block.bold,
                    custom_size=scale > 1,
                    width=scale,
                    height=scale,
                )
                for line in printer_text_lines(block, layout.width):
                    printer.text(line + "\n")
            printer.set_with_default()
            printer.cut()
            if self.config.transport == "dummy":
                log.info("dummy printer %s took %d bytes", self.config.id, len(printer.output))
                printer.clear()
        except Exception as exc:
            self.close()
            raise PrintFailed(f"printing on {self.config.id} failed: {exc}") from exc
