"""The companions (display client, printer agent) install and run on a lobby PC or a board next
to a printer without the server's package: they share only `rigi_protocol` with it."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rigi_protocol.speech.audio import read_wav

ROOT = Path(__file__).resolve().parent.parent
COMPANIONS = ("display_client", "printer_agent")
SERVER = "queue_server"
SHARED = "rigi_protocol"
# Run a companion's CLI with the server's package made unimportable, as on a machine where only
# the companion is installed; afterwards, prove the server package was never even asked for.
WITHOUT_SERVER = """
import sys
sys.modules["queue_server"] = None  # any import of it raises ImportError
from {package}.cli import main
code = main(sys.argv[1:])
assert not [m for m in sys.modules if m.startswith("queue_server.")], "imported the server"
sys.exit(code)
"""


def run_without_server(package: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVER.format(package=package), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def imported_packages(package: str) -> dict[str, set[str]]:
    """For each module of `package`, the top-level packages it imports (anywhere in it)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tops: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                tops.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                tops.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = tops
    return found


@pytest.mark.speech
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="install espeak-ng")
def test_display_client_says_a_call_without_the_server_package(tmp_path: Path) -> None:
    out = tmp_path / "call.wav"
    result = run_without_server("display_client", "say", "A", "12", "5", "--out", str(out))
    assert result.returncode == 0, result.stderr
    info, _ = read_wav(out)
    assert info.seconds > 2.0


def test_printer_agent_previews_a_ticket_without_the_server_package(tmp_path: Path) -> None:
    out = tmp_path / "ticket.png"
    result = run_without_server("printer_agent", "preview", "--language", "ka", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(b"\x89PNG")


def test_the_companions_never_import_the_server_and_the_server_never_imports_them() -> None:
    crossings = [
        f"{module} imports {top}"
        for package, forbidden in (
            *((companion, {SERVER, *COMPANIONS} - {companion}) for companion in COMPANIONS),
            (SERVER, set(COMPANIONS)),
            (SHARED, {SERVER, *COMPANIONS}),
        )
        for module, tops in imported_packages(package).items()
        for top in sorted(tops & forbidden)
    ]
    assert crossings == []
    # the check itself sees imports: the server does import the shared package
    assert any(SHARED in tops for tops in imported_packages(SERVER).values())
