# Everything the project needs is installed by these targets: a fresh machine needs only
# Python 3.11+ and make. `make demo` and `make test` are the two commands in the README.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TOOLS  := .tools
SAM    := $(TOOLS)/sam/bin/sam
SAM_VERSION := 1.170.0
DOCS_SITE := build/docs-site
CHECKOV    := $(TOOLS)/checkov/bin/checkov
CHECKOV_VERSION := 3.3.30
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv demo local test checks unit lint format typecheck validate build size docs bench clean chromium

help:
	@echo "make demo       run the main job on the embedded local stack (moto, no AWS, no Docker)"
	@echo "make test       lint, type-check, validate the template, build the docs, run every test"
	@echo "make local      start the local stack on http://127.0.0.1:3000"
	@echo "make build      sam build for the Lambda runtime (no Docker) and check sizes and platforms"
	@echo "                (MODEL_CODE=folder: your [estimator] factory's code, for the retrainer)"
	@echo "make docs       build the documentation site (docs/, mkdocs.yml) into $(DOCS_SITE)"
	@echo "make bench      run the benchmarks (BENCH_ARGS=--json for JSON)"

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -e ".[dev]" -c constraints.txt
	@touch $@

venv: $(BIN)/.installed

# SAM CLI and checkov pin their own dependency sets (checkov an old boto3): each lives in its
# own venv, out of the project's way.
$(SAM):
	$(PYTHON) -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install --quiet "aws-sam-cli==$(SAM_VERSION)"

$(CHECKOV):
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install --quiet "checkov==$(CHECKOV_VERSION)"

# The main job: months of a moving housing market through the local stack, drift caught,
# retrained, gated, canaried, promoted; ends with a table and demo-output/report.html.
# DEMO_ARGS="--seed 3 --months 15 --traffic 3000 --json" to vary it.
demo: venv
	$(BIN)/mlops demo $(DEMO_ARGS)

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

validate: venv $(SAM) $(CHECKOV)
	$(SAM) validate --lint --template template.yaml
	$(BIN)/cfn-lint template.yaml
	$(CHECKOV) --skip-download --quiet --compact --framework cloudformation -f template.yaml

# Layers and functions build through their own Makefiles (BuildMethod: makefile): pip installs
# manylinux wheels for the template's runtime and architecture, so no Docker and no matching
# interpreter are needed. Then every function's unzipped size and native modules are checked.
# MODEL_CODE=folder: the config's [estimator] code, built into ModelCodeLayer (absolute for
# sam, which runs the layer's Makefile elsewhere; MAKEFLAGS would carry the relative one).
build: venv $(SAM)
	MAKEFLAGS= MODEL_CODE="$(if $(MODEL_CODE),$(abspath $(MODEL_CODE)))" \
		$(SAM) build --template template.yaml --parallel
	$(MAKE) size

size: venv
	$(BIN)/python -m mlops_cli.buildcheck

# The documentation site: MkDocs with the Material theme, offline (no plugin fetches anything).
# --strict turns every warning into a failure: a broken link or anchor between pages, a page
# missing from the nav. `$(BIN)/mkdocs serve` previews it on http://127.0.0.1:8000.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(DOCS_SITE)

unit: venv
	$(BIN)/pytest tests/unit -q

# Headless Chromium for the tests that look at the drift report as a person would (Debian's
# package, installed when missing and we are root; otherwise those tests skip, saying why).
chromium:
	@bash scripts/ensure_chromium.sh || echo "chromium unavailable: the browser tests will skip"

# Two workers, a test module per worker at a time (module fixtures train once): most e2e
# time is waiting on subprocesses, so the two cores stay busy (13 min -> 7.5 min here).
# The checks before the tests run side by side (three tool venvs to install, a build): each
# target's output is printed whole when it ends.
test:
	$(MAKE) --no-print-directory -j3 --output-sync=target checks
	$(BIN)/pytest -n 2 --dist loadfile --cov --cov-report=term:skip-covered --durations=30

checks: lint typecheck validate build docs chromium

bench: venv
	$(BIN)/pip install --quiet -e ".[dev,bench]" -c constraints.txt
	$(BIN)/python benchmarks/inference.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/local_runtime.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/capture.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/retrain.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/training_scale.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/drift.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/batch.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/drift_false_alarms.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/rollout.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/foresight.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/monitoring_scale.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/query.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/batch_map.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) $(DOCS_SITE) .aws-sam .mypy_cache .ruff_cache .pytest_cache .coverage .mlops
