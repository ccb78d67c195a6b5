"""Stories of installing an agent: a wrong setting is named, a network call never waits long."""

from __future__ import annotations

import pytest

from printer_agent.config import parse_config
from printer_agent.device import build_printer
from printer_agent.errors import ConfigError


def _config(**printer: object) -> dict[str, object]:
    return {"printers": [{"id": "p1", "transport": "network", "host": "10.0.0.5", **printer}]}


def test_network_printer_gets_a_short_timeout_not_sixty_seconds() -> None:
    config = parse_config(_config(), {})
    printer = build_printer(config.printers[0])
    assert printer.timeout <= 5


def test_two_printers_serve_their_own_kiosks() -> None:
    raw = {
        "printers": [
            {"id": "a", "transport": "dummy", "kiosks": ["k1"]},
            {
                "id": "b",
                "transport": "dummy",
                "kiosks": ["k2", "k3"],
                "width": 384,
                "profile": "POS-5890",
            },
        ]
    }
    config = parse_config(raw, {"RIGI_PRINTER_TOKEN": "secret"})
    assert config.printer_for("k3", None).id == "b"
    assert config.printer_for(None, "a").id == "a"
    assert "secret" not in repr(config)


@pytest.mark.parametrize(
    ("printer", "named"),
    [
        ({"width": 576, "profile": "TM-T88V"}, "printers[p1].width"),
        ({"width": 500}, "printers[p1].width"),
        ({"transport": "bluetooth"}, "printers[p1].transport"),
        ({"host": ""}, "printers[p1].host"),
        ({"profile": "no-such-printer"}, "printers[p1].profile"),
        ({"timeout": "soon"}, "printers[p1].timeout"),
    ],
)
def test_bad_setting_stops_start_up_naming_it(printer: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_config(_config(**printer), {})
