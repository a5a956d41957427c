# ksmrepro: every target creates and uses .venv, so a fresh machine needs only python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint clean test-real

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## make run: install, then run the flagship (Hugh Dickins' testcase) on its models
run: $(STAMP)
	$(BIN)/ksmrepro run scenarios/hugh.yaml

## make test: install, then the whole test suite (unit, scenario, CLI, plugin)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## make bench: performance figures (not a test; prints numbers against the targets)
bench: $(STAMP)
	$(BIN)/python -m ksmrepro.bench

## make test-real: boot a real kernel under QEMU (opt-in; KSMREPRO_KERNEL=/path/to/vmlinuz)
test-real: $(STAMP)
	$(BIN)/python -m pytest -q -m realkernel tests/realkernel

## make lint: ruff over the package, mypy over the simulated kernel and the runner
## (installed on demand; not part of make test)
lint: $(STAMP)
	$(BIN)/pip install --quiet ruff mypy types-PyYAML
	$(BIN)/ruff check ksmrepro/mm ksmrepro/runner ksmrepro/models ksmrepro/bench.py
	$(BIN)/mypy --ignore-missing-imports ksmrepro/mm ksmrepro/runner

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
