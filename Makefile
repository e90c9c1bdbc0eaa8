# The project's single entry point. `make test` (and later `make demo`) set up everything they
# need on a fresh clone: the virtualenv at .venv is built on first use and rebuilt when the
# requirements change.

# Lambda runs python3.12, and so do we: pyenv's 3.12 first, then any python3.12 on PATH.
PYTHON312 ?= $(shell ls -d $$(pyenv root 2>/dev/null)/versions/3.12.*/bin/python3.12 2>/dev/null | tail -n 1)
ifeq ($(strip $(PYTHON312)),)
PYTHON312 := $(shell command -v python3.12 2>/dev/null)
endif

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install test lint format clean

install: $(STAMP)

$(STAMP): requirements-dev.txt layers/dependencies/requirements.txt pyproject.toml
	@test -n "$(PYTHON312)" || { echo "python3.12 not found: install it (e.g. pyenv install 3.12) or pass PYTHON312=/path/to/python3.12" >&2; exit 1; }
	$(PYTHON312) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

test: install
	$(BIN)/pytest --cov --cov-report=term $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .aws-sam .coverage
