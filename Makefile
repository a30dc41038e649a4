# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_HOME ?= $(CURDIR)/.riverrun-demo

.PHONY: demo test lint typecheck unit bench bench-smoke bench-prefect clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	RIVERRUN_HOME=$(DEMO_HOME) $(BIN)/python examples/pipeline.py
	RIVERRUN_HOME=$(DEMO_HOME) $(BIN)/riverrun flow-run ls

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# Bytecode first: the many subprocesses the tests start (writers, servers, workers)
# would otherwise each compile riverrun from source where bytecode is not written.
unit: $(VENV)/.installed-dev
	$(BIN)/python -m compileall -q src
	$(BIN)/pytest -q

test: lint typecheck unit

# Benchmarks: each workload in fresh processes, medians against a baseline run alongside.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.run

bench-smoke: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.run --smoke

# The same workloads under Prefect, installed in a venv of its own (never a dependency).
PREFECT_VENV := .venv-prefect
PREFECT_VERSION ?= 3.9.1
# Extra pins for versions whose own ranges admit breaking releases (3.8.8 needs
# PREFECT_PINS="fastapi<0.118").
PREFECT_PINS ?=
$(PREFECT_VENV)/.installed-$(PREFECT_VERSION):
	$(PYTHON) -m venv $(PREFECT_VENV)
	$(PREFECT_VENV)/bin/python -m pip install --quiet 'prefect==$(PREFECT_VERSION)' $(PREFECT_PINS)
	touch $@

bench-prefect: $(VENV)/.installed-dev $(PREFECT_VENV)/.installed-$(PREFECT_VERSION)
	$(BIN)/python -m benchmarks.run --prefect-python $(PREFECT_VENV)/bin/python

clean:
	rm -rf $(VENV) $(PREFECT_VENV) $(DEMO_HOME)
