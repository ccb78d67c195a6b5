# One command to run the demo, one to test: both build .venv from pyproject.toml first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint typecheck fmt clean system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/queue-server migrate
	$(BIN)/queue-server serve --host 127.0.0.1 --port 8000

# The whole suite with the coverage figure, on TEST_WORKERS workers (pytest-xdist; each has its
# own database, see docs/testing.md); a test file stays on one worker, with its module fixtures,
# and the files are handed out longest first (tests/ordering.py), not xdist's most-tests-first.
# `make test PYTEST_ARGS="tests/bus -x"` narrows it; `make test TEST_WORKERS=0` runs it serially.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25 --cov --cov-report=term $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy over the tree as configured in pyproject.toml (strict on queue_server.domain).
typecheck: $(STAMP)
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) data .pytest_cache
