# seco: the two set-up commands are `make demo` and `make test`; each builds .venv on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-all bench lint lowest constraints clean

# pyproject.toml declares the supported ranges; constraints.txt the exact set installed here and in CI
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
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

## Install against the lowest declared version of every runtime dependency and run fast tests (minutes; not in `test`)
lowest:
	$(PY) scripts/check_lowest.py $(if $(PYTEST_ARGS),-- $(PYTEST_ARGS))

## Rewrite constraints.txt from what .venv holds (after a deliberate upgrade there)
constraints: $(STAMP)
	{ echo "# The exact versions \`make\` and CI install (pip install -c constraints.txt -e '.[dev]'); supported ranges"; \
	  echo "# are in pyproject.toml. Written by \`make constraints\` from .venv (pip freeze, seco itself left out)."; \
	  echo "# torch is the CPU build this project's machines hold as a local wheel: elsewhere install torch first"; \
	  echo "# (any build of the same version) and drop that line."; \
	  $(BIN)/pip freeze --exclude-editable | grep -iv '^seco[= @]'; } > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt

clean:
	rm -rf $(VENV) .venv-lowest demo_out .pytest_cache .mypy_cache .ruff_cache
