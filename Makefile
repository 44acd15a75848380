# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[postgres,mysql,celery]' --group dev
	touch $(STAMP)

## Serve the example app on SQLite at http://127.0.0.1:5000
demo: $(STAMP)
	$(BIN)/flask --app example_app run --host 127.0.0.1 --port 5000

## Lint, type-check and run the whole suite (SQLite, then PostgreSQL when reachable; both in CI)
test: $(STAMP)
	$(BIN)/python tools/run_tests.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/renewals.py --db both --n 1000

clean:
	rm -rf $(VENV) instance example_app/instance .pytest_cache .mypy_cache .ruff_cache
