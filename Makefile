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
SERVE_ARTIFACT ?= $(RUNS)/artifacts/onnxruntime-int8
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8000
SERVE_ARGS ?= --threads 2
# the default deployable model: the baseline CNN distilled from the pretrained teacher (trained once per split)
TRAIN_DEFAULTS ?= distill.teacher=auto
# make benchmark measures the default model and the teacher it was distilled from, in one report
BENCH_MODELS ?= --checkpoint $(DEFAULT_CKPT) --with-teacher

.PHONY: install train benchmark benchmark-quick serve lint test test-slow test-all clean help

help:
	@echo "make install    - create $(VENV) and install fishopt[dev] under constraints.txt"
	@echo "make train      - train the teacher if needed, then the distilled default model into $(RUNS)/<timestamp>-baseline/"
	@echo "make benchmark  - train $(DEFAULT_CKPT) if missing, build every variant of it and of its teacher, benchmark, report"
	@echo "make serve      - quantize $(DEFAULT_CKPT) to INT8 (ONNX Runtime) if missing and serve it on port $(SERVE_PORT)"
	@echo "make lint       - ruff (lint, import order, format check) and mypy on the typed modules"
	@echo "make test       - the default test run (no slow tests), with coverage"
	@echo "make test-slow  - the slow tests (full-data checks, clean-venv deploy checks)"

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU build (an unpinned torch pulls a multi-GB CUDA build)
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	# corrupt-tta (ImageNet-C) asks for opencv-python, which clashes with the opencv-python-headless of [monitor]:
	# its real imports (numpy, scipy, scikit-image, Pillow, cv2) are installed above
	$(PY) -m pip install -q -c constraints.txt --no-deps corrupt-tta
	touch $@

install: $(VENV)/.installed

train: install
	$(FISHOPT) train out_dir=$(RUNS) $(TRAIN_DEFAULTS) $(ARGS)

$(DEFAULT_CKPT): | install
	$(FISHOPT) train out_dir=$(RUNS) run_name=default $(TRAIN_DEFAULTS) $(ARGS)

benchmark: install $(DEFAULT_CKPT)
	$(FISHOPT) benchmark $(BENCH_MODELS) --out $(BENCH_OUT) --overwrite $(BENCH_ARGS)

benchmark-quick: install $(DEFAULT_CKPT)
	$(FISHOPT) benchmark $(BENCH_MODELS) --out $(BENCH_OUT)-quick --overwrite --quick $(BENCH_ARGS)

$(SERVE_ARTIFACT)/manifest.json: $(DEFAULT_CKPT) | install
	$(FISHOPT) quantize $(DEFAULT_CKPT) --backend onnxruntime --out $(SERVE_ARTIFACT) --overwrite

serve: install $(SERVE_ARTIFACT)/manifest.json
	@image=$$(find "$(FISHOPT_DATA)" -type f \( -name '*.png' -o -name '*.jpg' \) 2>/dev/null | head -n 1); \
	echo "serving $(SERVE_ARTIFACT) at http://$(SERVE_HOST):$(SERVE_PORT) (Ctrl+C stops it)"; \
	echo "try: curl -s --data-binary @\"$${image:-fish.png}\" http://$(SERVE_HOST):$(SERVE_PORT)/v1/classify"; \
	echo "     curl -s http://$(SERVE_HOST):$(SERVE_PORT)/metrics"
	$(FISHOPT) serve $(SERVE_ARTIFACT) --host $(SERVE_HOST) --port $(SERVE_PORT) $(SERVE_ARGS)

lint: install
	$(VENV)/bin/ruff check fishopt tests benchmarks
	$(VENV)/bin/ruff format --check fishopt tests benchmarks
	$(VENV)/bin/mypy

test: install
	$(PY) -m pytest -m "not slow" --cov=fishopt --cov-report=term:skip-covered $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

test-all: install
	$(PY) -m pytest --cov=fishopt --cov-report=term:skip-covered $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .coverage
