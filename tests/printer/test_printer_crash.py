"""Crash safety: the agent is SIGKILLed at each step of a job and started again.

Whatever the moment, the citizen's ticket is printed exactly once — or, when the agent died
while bytes were going out and cannot know what came out, once more marked REPRINT — and the
server always ends up with an ack.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from printer_support import TOKEN, agent_toml

from printer_agent.fake_printer import FakePrinter

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 20.0


def _start_agent(config: Path, pause_at: str | None, pause_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RIGI_PRINTER_TOKEN": TOKEN, "PYTHONPATH": str(REPO)}
    env.pop("RIGI_PRINTER_TEST_PAUSE_AT", None)
    if pause_at:
        env["RIGI_PRINTER_TEST_PAUSE_AT"] = pause_at
        env["RIGI_PRINTER_TEST_PAUSE_DIR"] = str(pause_dir)
    return subprocess.Popen(
        [sys.executable, "-m", "printer_agent.cli", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )


async def _reached(marker: Path, agent: subprocess.Popen[bytes]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not await asyncio.to_thread(marker.exists):
            assert agent.poll() is None, agent.stderr.read().decode() if agent.stderr else ""
            await asyncio.sleep(0.02)


def _stop(agent: subprocess.Popen[bytes]) -> str:
    if agent.poll() is None:
        agent.send_signal(signal.SIGTERM)
    try:
        agent.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()
    return agent.stderr.read().decode() if agent.stderr else ""


@pytest.mark.parametrize(
    ("kill_at", "expected_prints"),
    [
        ("before_print", 1),  # journaled, nothing sent: printed once after restart
        ("during_print", 2),  # bytes out, not marked: outcome unknown → once more, REPRINT
        ("after_print", 1),  # marked printed, not acked: only the ack is sent after restart
        ("after_ack", 1),  # all done; the server's repeat gets an ack, not paper
    ],
)
async def test_sigkilled_agent_never_loses_or_silently_doubles_a_ticket(
    tmp_path: Path, server, fake_printer: FakePrinter, kill_at: str, expected_prints: int
) -> None:
    config = agent_toml(tmp_path, fake_printer.port, server.url)
    agent = _start_agent(config, kill_at, tmp_path)
    try:
        await server.print_job("crash-1", "ka")
        await _reached(tmp_path / f"{kill_at}.reached", agent)
        if kill_at != "before_print":
            await asyncio.to_thread(fake_printer.wait_for_tickets, 1)
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=WAIT_S)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert agent.returncode == -signal.SIGKILL
    acks_before_restart = len(server.acks_for("crash-1"))
    assert acks_before_restart == (1 if kill_at == "after_ack" else 0)

    restarted = _start_agent(config, None, tmp_path)
    try:
        await server.wait_for(lambda: len(server.acks_for("crash-1")) > acks_before_restart)
        await server.print_job("after-crash-2", "en")  # and the agent carries on
        await server.wait_for(lambda: server.acks_for("after-crash-2"))
    finally:
        log = _stop(restarted)

    tickets = fake_printer.wait_for_tickets(expected_prints + 1)
    crash_tickets = [t for t in tickets if "https://rigi.example.ge/t/crash-1" in t.text]
    assert len(crash_tickets) == expected_prints, log
    assert "REPRINT" not in crash_tickets[0].text
    if expected_prints == 2:
        assert "REPRINT" in crash_tickets[1].text
    assert all(ack["result"] == "printed" for ack in server.acks)
    assert len(tickets) == expected_prints + 1
