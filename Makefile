# Everything a fresh machine needs: `make demo`, `make test`, `make lint`, `make bench`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install bytecode test test-fast demo lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) bytecode

# The package is installed editable, so Python compiles its modules when it imports them, and with
# PYTHONDONTWRITEBYTECODE set (as on these machines) it does so again in every process: each
# `campaign` command paid 50-100 ms for it. compileall writes the bytecode anyway (a no-op when it
# is up to date); Python still recompiles a module whose source changed since.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q campaign migrations bench

# Test processes (pytest-xdist): 3 on 2 cores, since most tests wait rather than compute.
TEST_WORKERS ?= 3

test: $(STAMP) bytecode
	$(BIN)/pytest -q -n $(TEST_WORKERS)

test-fast: $(STAMP) bytecode
	$(BIN)/pytest -q -n $(TEST_WORKERS) -m 'not slow'

demo: $(STAMP) bytecode
	PATH="$(CURDIR)/$(BIN):$$PATH" bash samples/demo.sh

# ruff (lint + format check) on campaign, tests, bench; mypy on the files pyproject names.
lint: $(STAMP)
	$(BIN)/ruff check campaign tests bench
	$(BIN)/ruff format --check campaign tests bench
	$(BIN)/mypy

bench: $(STAMP) bytecode
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info demo-run
