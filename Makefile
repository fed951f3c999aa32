# Everything the project needs is installed by these targets: a fresh machine needs only
# Python 3.11+ and make. `make demo` and `make test` are the two commands in the README.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TOOLS  := .tools
SAM    := $(TOOLS)/sam/bin/sam
SAM_VERSION := 1.170.0
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv demo local test unit lint format typecheck validate bench clean

help:
	@echo "make demo       run the main job on the embedded local stack (moto, no AWS, no Docker)"
	@echo "make test       lint, type-check, validate the template and run every test"
	@echo "make local      start the local stack on http://127.0.0.1:3000"
	@echo "make bench      run the benchmarks (BENCH_ARGS=--json for JSON)"

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

venv: $(BIN)/.installed

# SAM CLI pins its own dependency set: it lives in its own venv, out of the project's way.
$(SAM):
	$(PYTHON) -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install --quiet "aws-sam-cli==$(SAM_VERSION)"

demo: venv
	$(BIN)/mlops demo

local: venv
	$(BIN)/mlops local --port 3000

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: venv
	$(BIN)/mypy

validate: venv $(SAM)
	$(SAM) validate --lint --template template.yaml
	$(BIN)/cfn-lint template.yaml

unit: venv
	$(BIN)/pytest tests/unit -q

test: lint typecheck validate
	$(BIN)/pytest --cov --cov-report=term:skip-covered

bench: venv
	$(BIN)/python benchmarks/inference.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .mypy_cache .ruff_cache .pytest_cache .coverage .mlops
