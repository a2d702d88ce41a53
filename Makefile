# The README's two commands: `make serve` (install + run) and `make test` (install + test).
# Installs are constrained by the lock files (exact versions of every dependency, for Python 3.11);
# `make lock` regenerates them from pyproject.toml with pip-tools.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK_VENV ?= .lock-venv
PIP_COMPILE = $(LOCK_VENV)/bin/pip-compile -q --strip-extras --no-emit-index-url \
	--no-emit-find-links --no-emit-trusted-host

.PHONY: serve test install install-test lint lock

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -c requirements.lock .

install-test: $(BIN)/python
	$(BIN)/pip install -q -c requirements-test.lock -e '.[test]'

serve: install
	$(BIN)/postroom serve

test: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/python -m mypy
	$(BIN)/lint-imports

# Pin what pyproject.toml added or changed, keeping the other pins; LOCK_ARGS=--upgrade moves
# every package to its newest allowed release, LOCK_ARGS='-P aiohttp' one package. The runtime
# lock is resolved under the test lock, so the image runs exactly the versions CI tested.
# Run with Python 3.11 (the image's).
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || ($(PY) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q pip-tools)
	$(PIP_COMPILE) $(LOCK_ARGS) --extra test -o requirements-test.lock pyproject.toml
	$(PIP_COMPILE) -c requirements-test.lock -o requirements.lock pyproject.toml
