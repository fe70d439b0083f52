# seco: the two set-up commands are `make demo` and `make test`; each builds .venv on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-all bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Offline end to end: synth archive -> sample -> collect -> SeCo pre-training -> export -> probes -> report (demo_out/)
demo: $(STAMP)
	$(BIN)/seco demo --out demo_out

## The default test run (what CI runs)
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

## Everything, slow tests included
test-all: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

lint: $(STAMP)
	$(BIN)/ruff check seco tests bench
	$(BIN)/mypy seco

clean:
	rm -rf $(VENV) demo_out .pytest_cache .mypy_cache .ruff_cache
