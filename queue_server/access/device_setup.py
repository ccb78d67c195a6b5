"""Setting a device up and watching it: the link (and its QR code) that makes a kiosk or a
lobby display out of a browser, and a device's health for the devices page.

The setup link carries the token as `?setup=…`; the page keeps it in localStorage and removes it
from the address bar (`common.js: deviceToken`). The link and the QR code are part of the
answer that creates the device, so the token is shown once and is never in a URL the server
serves itself (a QR image at an address would put the token in access logs)."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

import qrcode
import qrcode.image.svg

from queue_server.access.principal import Role

# The page a device of each role opens; a printer agent is set up on its computer instead
# (`printer-agent --token …`), so it has no link.
SETUP_PAGES = {Role.KIOSK: "kiosk", Role.DISPLAY: "display"}


def setup_link(base_url: str, branch: str, role: Role, token: str) -> str | None:
    page = SETUP_PAGES.get(role)
    if page is None:
        return None
    return f"{base_url.rstrip('/')}/{page}/{quote(branch)}?setup={quote(token)}"


def qr_svg(text: str) -> str:
    """An SVG QR code of `text` (medium error correction: a screen may be scratched), for a
    tablet's or a kiosk scanner's camera to open."""
    image = qrcode.make(
        text,
        image_factory=qrcode.image.svg.SvgPathImage,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=10,
        border=2,
    )
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


def with_health(
    devices: list[dict[str, Any]], printers: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Each device with its `health`: for a kiosk, the printers that serve it (as their agent
    declared them, by the kiosk's id or name), with connection, online and paper; None where
    nothing is known (a display, or printing not running)."""
    out = []
    for device in devices:
        health = None
        if printers is not None and device["role"] == Role.KIOSK:
            names = {device["id"], device["name"]}
            health = {"printers": [p for p in printers if names & set(p.get("kiosks", ()))]}
        elif printers is not None and device["role"] == Role.PRINTER:
            health = {"printers": printers}
        out.append(device | {"health": health})
    return out
