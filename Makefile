# Two commands for a newcomer: `make demo` and `make test`. Both build .venv themselves from PyPI.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed

.PHONY: demo demo-drift demo-rollback demo-quality test lint bench aws-facts clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.4"
	@VIRTUAL_ENV=$(abspath $(VENV)) $(UV) pip install --quiet --compile-bytecode -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)  ## render a model repo and run the whole GitOps loop locally
	@$(BIN)/python -m scripts.demo

demo-drift: $(STAMP)  ## the loop, then drift in prod found by monitoring -> retrained -> proposed
	@$(BIN)/python -m scripts.demo --scenario drift

demo-rollback: $(STAMP)  ## the loop, then a broken version whose canary fails and rolls back
	@$(BIN)/python -m scripts.demo --scenario rollback

demo-quality: $(STAMP)  ## the loop, then labelled prod traffic: a quality drop with no data drift
	@$(BIN)/python -m scripts.demo --scenario quality

test: $(STAMP)  ## lint and run the template's tests
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/python -m pytest -n 2

bench: $(STAMP)  ## print performance figures as JSON
	@$(BIN)/python -m scripts.bench

aws-facts: $(STAMP)  ## regenerate ci_scripts/aws_facts.json from the installed botocore
	@$(BIN)/python -m scripts.gen_aws_facts

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
