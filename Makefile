# The project's single entry point. `make demo` and `make test` set up everything they need on a
# fresh clone: the virtualenv at .venv is built on first use and rebuilt when the requirements
# change.

# Lambda runs python3.12, and so do we: $PYTHON312, else pyenv's newest 3.12, else python3.12 on
# PATH (scripts/find-python312, the rule the tests and benchmarks share).
PYTHON312 ?= $(shell scripts/find-python312)

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
DEMO_ARGS ?=
LOCAL_ARGS ?=
BENCH_ARGS ?=

# The template's tools (SAM CLI + cfn-lint, and checkov) each need pins that clash with .venv's and
# with each other's: two more virtualenvs under .venv-tools, built the same way.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
# SAM's python3.12 build workflow runs the `python3.12` it finds first on PATH: make it ours.
# No telemetry; no container: nothing is fetched but the layer's packages, from PyPI.
SAM_ENV := PATH="$(dir $(PYTHON312)):$$PATH" SAM_CLI_TELEMETRY=0

.PHONY: install tools demo local test lint lint-template build bench format clean

install: $(STAMP)

$(STAMP): requirements-dev.txt layers/dependencies/requirements.txt layers/dependencies/requirements.lock pyproject.toml
	@test -n "$(PYTHON312)" || { echo "python3.12 not found: install it (e.g. pyenv install 3.12) or pass PYTHON312=/path/to/python3.12" >&2; exit 1; }
	$(PYTHON312) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# The layer's distributions at the lock's versions, the ones Lambda runs (its hashes are for
	@# the layer's build: a requirement with a hash would demand one of every other).
	sed -e '/--hash=/d' -e 's/ *\\$$//' layers/dependencies/requirements.lock > $(VENV)/layer-constraints.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c $(VENV)/layer-constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@# The function's code directory on sys.path, as Lambda puts it there: the local stack, the
	@# demo, the CLI and the benchmarks import `app` and `zego_resume` like the runtime does.
	echo "$(CURDIR)/functions/resume_streams" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zego-resume-function.pth"
	@touch $@

# The main job on the embedded local stack: moto, the ZEGO emulator, the Lambda SQS poller.
demo: install
	$(BIN)/python -m zegosim.demo $(DEMO_ARGS)

# The local stack until Ctrl-C: moto and the ZEGO emulator on 127.0.0.1, the stack's resources,
# `export` lines on stdout (docs/cli.md). LOCAL_ARGS="--with-function" also runs the function.
local: install
	@$(BIN)/python -m zegosim.local $(LOCAL_ARGS)

tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): requirements-tools.txt requirements-checkov.txt
	@test -n "$(PYTHON312)" || { echo "python3.12 not found: install it (e.g. pyenv install 3.12) or pass PYTHON312=/path/to/python3.12" >&2; exit 1; }
	rm -rf $(TOOLS)
	$(PYTHON312) -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/sam/bin/python -m pip install --quiet -r requirements-tools.txt
	$(PYTHON312) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/checkov/bin/python -m pip install --quiet -r requirements-checkov.txt
	@touch $@

# tests/template lints, builds and runs the template with those tools.
test: install tools
	$(BIN)/pytest --cov --cov-report=term $(PYTEST_ARGS)

# ruff, mypy --strict, the function's rooms (import-linter, contracts in pyproject.toml), and
# every relative link in the docs (scripts/check-docs).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	PYTHONPATH=functions/resume_streams $(BIN)/lint-imports
	scripts/check-docs

# `sam build` into .aws-sam/build, as `sam deploy` expects it (scripts/sam-build, as the tests run it).
build: tools
	scripts/sam-build

# cfn-lint (with the project's rules in .cfnlint/rules), checkov and `sam validate --lint`.
lint-template: tools
	$(SAM_ENV) scripts/lint-template template.yaml

# Benchmarks with side-by-side baselines; `sam build` (for the package size) needs the tools.
bench: install tools
	$(BIN)/python -m bench.run $(BENCH_ARGS)

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .coverage
