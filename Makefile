# carbonbook: the two commands (make demo, make test) and their helpers.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VENDOR := src/carbonbook/web/static/vendor
VENDOR_FILES := $(VENDOR)/htmx.min.js $(VENDOR)/echarts.min.js

.PHONY: demo test lint bench venv vendor serve clean

demo: venv vendor
	$(BIN)/carbonbook demo --host 127.0.0.1 --port 8000

serve: venv vendor
	$(BIN)/carbonbook serve

venv: $(STAMP)

$(STAMP): pyproject.toml
	@scripts/check-python.sh $(PYTHON)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -m pip install --quiet -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
	@$(BIN)/python -c "import carbonbook, fastapi, sqlalchemy" || { echo "install failed"; exit 1; }
	@touch $(STAMP)

vendor: $(VENDOR_FILES)

$(VENDOR_FILES): package.json
	@scripts/vendor.sh

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: venv vendor lint
	@scripts/test-env.sh

bench: venv
	@scripts/bench-env.sh

clean:
	rm -rf $(VENV) node_modules $(VENDOR) var .pytest_cache .mypy_cache .ruff_cache
