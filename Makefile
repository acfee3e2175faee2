# tsgen: the two commands a reader needs are `make book` and `make test`.
# Both create .venv and install everything on first use.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= default
# The torch build to install first: 2.13.0 is served locally as a CPU wheel on
# the book's CI machines; elsewhere pip fetches the same version from PyPI.
TORCH   ?= torch==2.13.0

BIN := $(abspath $(VENV))/bin
PY  := $(BIN)/python
# Kernels started by papermill must be the venv's python.
export PATH := $(BIN):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1

CHAPTER ?=
PARAMS  ?=
GRID    ?=
JOBS    ?= 2
# chapters at a time: two kernels share the CPU at the default profile; one at a time
# for the other profiles, whose chapters each fill a GPU
CHAPTER_JOBS ?= $(if $(filter default,$(PROFILE)),2,1)

.PHONY: help install lock book chapters chapter sweep notebooks lint test test-unit test-chapters test-browser test-gpu-profile clean

help:
	@echo "make book     execute every chapter (PROFILE=$(PROFILE)) and build _build/html"
	@echo "make lock     re-resolve requirements.lock from pyproject.toml's ranges (pip-tools)"
	@echo "make test     lint + unit tests + every chapter executed and checked against its references"
	@echo "make lint     ruff check + ruff format --check (line length 88) over the code and notebooks"
	@echo "make chapter CHAPTER=01_data PARAMS='-p seed 3'   execute one chapter into book/chapters"
	@echo "make notebooks   re-execute notebooks/ in place: refresh the references (stored outputs, book/results/*.default.json)"
	@echo "make test-browser   open every page of _build/html in headless Chromium (after make book)"
	@echo "make test-gpu-profile   the GPU profile with its work capped, on the CPU, under the device check"
	@echo "make sweep CHAPTER=04_adaptation_engines GRID=\"-g alpha '[0.1, 1.0]'\" JOBS=2   one chapter over a grid"

# The environment is the lock: every package at the version requirements.lock names
# (regenerate it with `make lock` after changing pyproject.toml's ranges); torch
# comes first, from TORCH, and the lock was resolved against constraints.txt.
$(VENV)/.installed: pyproject.toml requirements.lock constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --quiet "$(TORCH)"
	$(PY) -m pip install --quiet --quiet -r requirements.lock -c constraints.txt
	$(PY) -m pip install --quiet --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $@

install: $(VENV)/.installed

# pip-tools in a venv of its own, so the project's venv holds exactly the lock.
LOCK_VENV := .venv-lock
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install --quiet "pip-tools==7.6.2"; }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --upgrade --strip-extras --extra dev --extra browser \
		--unsafe-package torch --no-emit-index-url --no-emit-find-links \
		-c constraints.txt -o requirements.lock pyproject.toml

# Executed copies go to book/chapters; a copy whose inputs (notebook, tsgen sources, lock,
# profile, parameters) have not changed is kept, so `make test` and `make book` execute
# each chapter once between them. CHAPTER_JOBS chapters run at a time (each kernel pins
# its own threads and numerics, so the numbers do not depend on it).
chapters: install
	$(PY) -m tsgen.book --profile $(PROFILE) --output-dir book/chapters --jobs $(CHAPTER_JOBS)

chapter: install
	@test -n "$(CHAPTER)" || { echo "usage: make chapter CHAPTER=01_data [PARAMS='-p seed 3'] [PROFILE=gpu]"; exit 2; }
	$(PY) -m tsgen.book $(CHAPTER) --profile $(PROFILE) --output-dir book/chapters $(PARAMS)

book: chapters
	rm -rf _build/html
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "open _build/html/index.html"

sweep: install
	@test -n "$(CHAPTER)" -a -n "$(GRID)" || { echo "usage: make sweep CHAPTER=04_adaptation_engines GRID=\"-g alpha '[0.1, 1.0]'\" [JOBS=2] [PARAMS='-p seed 1'] [PROFILE=gpu]"; exit 2; }
	$(PY) -m tsgen.book.sweep $(CHAPTER) --profile $(PROFILE) --jobs $(JOBS) $(GRID) $(PARAMS)

notebooks: install
	$(PY) -m tsgen.book --in-place --force --jobs $(CHAPTER_JOBS)

# The paths that pre-commit checks too (.pre-commit-config.yaml); settings in pyproject.toml.
LINT_PATHS := tsgen tests benchmarks notebooks book/templates

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

test: lint test-unit test-chapters

test-unit: install
	$(PY) -m pytest tests --ignore=tests/browser --ignore=tests/chapters

# The default profile's chapters against the committed references (tests/chapters says how).
test-chapters: install
	$(MAKE) chapters PROFILE=default
	$(PY) -m pytest tests/chapters

# The browser test reads the built site; it does not rebuild it: run `make book` first.
# It installs Debian's chromium when missing; the Playwright driver is in the lock and
# never downloads a browser.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

test-browser: install
	@test -d "$${BOOK_HTML:-_build/html}" || { echo "_build/html is missing: run 'make book' first"; exit 2; }
	test -x $(CHROMIUM) || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 CHROMIUM=$(CHROMIUM) $(PY) -m pytest -p no:cacheprovider tests/browser

clean:
	rm -rf _build book/chapters build .pytest_cache

# The GPU profile proven on a CPU: gpu.yaml with only its work capped
# (book/profiles/gpu-check.yaml), every chapter under the device check
# (tsgen.book.devices), so a host tensor meeting one on the GPU fails here as on CUDA.
# Executed copies and results files go to GPU_CHECK_DIR, never to book/results.
GPU_CHECK_DIR ?= build/gpu-check
test-gpu-profile: install
	rm -rf $(GPU_CHECK_DIR)/generation-cells
	env -u TSGEN_RESULTS_DIR TSGEN_DEVICE_CHECK=1 $(PY) -m tsgen.book --profile gpu-check --output-dir $(GPU_CHECK_DIR) --jobs 2
