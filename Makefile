# The README's two commands: `make serve` (install + run) and `make test` (install + test).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test install install-test lint

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q .

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

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
