# fishopt: every target installs what it needs first (make install: .venv with the pinned versions).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FISHOPT := $(VENV)/bin/fishopt
FISHOPT_DATA ?= $(abspath ../shared/data/fish)
export FISHOPT_DATA
RUNS ?= runs
DEFAULT_CKPT := $(RUNS)/default/model.pt
BENCH_OUT ?= $(RUNS)/benchmark
PYTEST_ARGS ?=

.PHONY: install train benchmark benchmark-quick test test-slow test-all clean help

help:
	@echo "make install    - create $(VENV) and install fishopt[dev] under constraints.txt"
	@echo "make train      - train the default model on \$$FISHOPT_DATA into $(RUNS)/<timestamp>-baseline/"
	@echo "make benchmark  - train $(DEFAULT_CKPT) if missing, build every variant, benchmark, report"
	@echo "make test       - the default test run (no slow tests), with coverage"
	@echo "make test-slow  - the slow tests (full-data checks, clean-venv deploy checks)"

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU build (an unpinned torch pulls a multi-GB CUDA build)
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

train: install
	$(FISHOPT) train out_dir=$(RUNS) $(ARGS)

$(DEFAULT_CKPT): | install
	$(FISHOPT) train out_dir=$(RUNS) run_name=default $(ARGS)

benchmark: install $(DEFAULT_CKPT)
	$(FISHOPT) benchmark --checkpoint $(DEFAULT_CKPT) --out $(BENCH_OUT) --overwrite $(BENCH_ARGS)

benchmark-quick: install $(DEFAULT_CKPT)
	$(FISHOPT) benchmark --checkpoint $(DEFAULT_CKPT) --out $(BENCH_OUT)-quick --overwrite --quick $(BENCH_ARGS)

test: install
	$(PY) -m pytest -m "not slow" --cov=fishopt --cov-report=term:skip-covered $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

test-all: install
	$(PY) -m pytest --cov=fishopt --cov-report=term:skip-covered $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .coverage
