"""A test that overruns its timeout under `make test`'s two workers fails alone, and the run
goes on to the end (tests/workers.py): a small suite of its own, run the way `make test` runs.

xdist's file scheduler ran the test again on each replacement worker and then waited for good
for files the dead worker had already finished; the run below hung there, or reported the test
failed on every worker xdist would replace and never ran the rest of its file.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

RUN_WITHIN_S = 240  # the small suite: three worker starts, one 2 s timeout, a dozen empty tests
ROOT = Path(__file__).resolve().parent.parent

CONFTEST = """
import pytest
from tests.workers import configure_worker, make_scheduler

def pytest_configure(config):
    configure_worker(config)

@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    return make_scheduler(config, log)
"""
QUICK = """
def test_one():
    pass

def test_two():
    pass
"""
OVERRUN = """
import time
import pytest

def test_before():
    pass

@pytest.mark.timeout(2)
def test_overruns():
    time.sleep(600)

def test_after():
    pass
"""
# Files finished on the worker before its test overran (they went back to xdist's queue as
# empty batches), then the overrunning file, then one left to run after it.
FILES = {f"test_{name}.py": QUICK for name in ("a", "b", "c", "d", "e", "f")} | {
    "test_w_overrun.py": OVERRUN,
    "test_z_last.py": QUICK,
}
PASSING = 2 * 7 + 2  # the quick files' tests, and the overrunning file's other two


def _run_small_suite(folder: Path) -> tuple[bool, int, str]:
    """Run it: whether it ended within RUN_WITHIN_S, its exit status and its output."""
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "pytest.ini").write_text("[pytest]\n")
    for name, text in FILES.items():
        (folder / name).write_text(text)
    command = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadfile"]
    command += ["--no-loadscope-reorder", "-p", "no:cacheprovider", "-rf", "-q"]
    command += ["-p", "xdist.plugin", "-p", "pytest_timeout"]  # only these plugins: quick starts
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RIGI_", "PYTEST_", "COV_", "COVERAGE_"))
    } | {"PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    with subprocess.Popen(
        command,
        cwd=folder,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its workers are ended with it below, whatever happens
    ) as run:
        ended = True
        try:
            output, _ = run.communicate(timeout=RUN_WITHIN_S)
        except subprocess.TimeoutExpired:
            ended = False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        if not ended:
            output, _ = run.communicate()
    return ended, run.returncode, output


@pytest.mark.timeout(RUN_WITHIN_S + 60)
def test_a_test_overrunning_its_timeout_fails_alone_and_the_run_ends(tmp_path: Path) -> None:
    ended, status, output = _run_small_suite(tmp_path)
    assert ended, f"the run did not end within {RUN_WITHIN_S} s:\n{output}"
    assert re.search(rf"\b1 failed, {PASSING} passed\b", output), output
    assert output.count("FAILED test_w_overrun.py::test_overruns") == 1, output
    assert "crashed while running 'test_w_overrun.py::test_overruns'" in output, output
    assert status == 1, output
