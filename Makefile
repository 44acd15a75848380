# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
PORT   ?= 5000
VENV   := .venv
BIN    := $(VENV)/bin
# The demo needs only the package and its runtime dependencies; the development tools
# (pytest, mypy, playwright, localstripe, database drivers, …) are `make test`'s, on top.
DEMO_STAMP := $(VENV)/.demo-installed
DEV_STAMP  := $(VENV)/.dev-installed

.PHONY: demo test lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install -q -e .
	touch $(DEMO_STAMP)

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[postgres,mysql,celery]' --group dev
	touch $(DEV_STAMP) $(DEMO_STAMP)

## Serve the example app (from this checkout) on SQLite at http://127.0.0.1:$(PORT), its
## tables made and seeded first
demo: $(DEMO_STAMP)
	$(BIN)/flask --app example_app setup
	$(BIN)/flask --app example_app run --host 127.0.0.1 --port $(PORT)

## Lint, type-check and run the whole suite (SQLite, then PostgreSQL when reachable; both in CI)
test: $(DEV_STAMP)
	$(BIN)/python tools/run_tests.py

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(DEV_STAMP)
	$(BIN)/python bench/renewals.py --db both --n 1000

clean:
	rm -rf $(VENV) instance example_app/instance .pytest_cache .mypy_cache .ruff_cache
