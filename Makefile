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
# Kernels started by papermill and nbval must be the venv's python.
export PATH := $(BIN):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1

CHAPTER ?=
PARAMS  ?=
GRID    ?=
JOBS    ?= 2

.PHONY: help install book chapters chapter sweep notebooks lint test test-unit test-notebooks test-browser clean

help:
	@echo "make book     execute every chapter (PROFILE=$(PROFILE)) and build _build/html"
	@echo "make test     lint + unit tests + nbval over notebooks/"
	@echo "make lint     ruff check + ruff format --check (line length 88) over the code and notebooks"
	@echo "make chapter CHAPTER=01_data PARAMS='-p seed 3'   execute one chapter into book/chapters"
	@echo "make notebooks   re-execute notebooks/ in place (refresh nbval's reference outputs)"
	@echo "make test-browser   open every page of _build/html in headless Chromium (after make book)"
	@echo "make sweep CHAPTER=04_adaptation_engines GRID=\"-g alpha '[0.1, 1.0]'\" JOBS=2   one chapter over a grid"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --quiet "$(TORCH)"
	$(PY) -m pip install --quiet --quiet -e ".[dev]"
	$(PY) -m pip check
	touch $@

install: $(VENV)/.installed

chapters: install
	$(PY) -m tsgen.book --profile $(PROFILE) --output-dir book/chapters

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
	$(PY) -m tsgen.book --in-place

# The paths that pre-commit checks too (.pre-commit-config.yaml); settings in pyproject.toml.
LINT_PATHS := tsgen tests benchmarks notebooks book/templates

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

test: lint test-unit test-notebooks

test-unit: install
	$(PY) -m pytest tests --ignore=tests/browser

test-notebooks: install
	$(PY) -m pytest --nbval-lax --nbval-current-env notebooks

# The browser test reads the built site; it does not rebuild it (that would re-execute
# every chapter): run `make book` first. It installs Debian's chromium when missing and
# the Playwright driver (the `browser` extra) into the venv; Playwright never downloads a browser.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

$(VENV)/.browser-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet --quiet -e ".[dev,browser]"
	touch $@

test-browser: $(VENV)/.browser-installed
	@test -d "$${BOOK_HTML:-_build/html}" || { echo "_build/html is missing: run 'make book' first"; exit 2; }
	test -x $(CHROMIUM) || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 CHROMIUM=$(CHROMIUM) $(PY) -m pytest -p no:cacheprovider tests/browser

clean:
	rm -rf _build book/chapters .pytest_cache
