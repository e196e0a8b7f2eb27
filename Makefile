# Two commands for a newcomer: `make demo` and `make test`. Both build .venv themselves from PyPI.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed
# The demo needs fewer packages than the tests (pyproject's `demo` extra): a first `make demo`
# installs only those; `make test` adds the rest (and satisfies the demo's stamp too).
DEMO_STAMP := $(VENV)/.installed-demo
DEMO_REPO := .demo/churn-model
# KEEP=1 leaves the demo's endpoints running (curl them; `make down` stops them).
DEMO_ARGS := $(if $(KEEP),--keep-running)

.PHONY: demo demo-shadow demo-drift demo-rollback demo-quality demo-batch demo-definition down test lint bench aws-facts clean

# uv itself is pinned (the version the generated repo's workflows install) and every install reads
# uv.lock: --locked fails when it no longer matches pyproject.toml (then `$(UV) lock` and commit
# both). --inexact: a `make demo` after `make test` keeps the test tools, and the reverse.
UV_VERSION := 0.12.4
UV_STAMP := $(VENV)/.uv-$(UV_VERSION)
SYNC := UV_PROJECT_ENVIRONMENT=$(abspath $(VENV)) $(UV) sync --quiet --locked --inexact \
	--python $(BIN)/python

# Bytecode: every command below runs Python with its compiled-module cache in .venv/pycache, which
# fills as modules are first imported and is read from then on. Where PYTHONDONTWRITEBYTECODE is
# set (containers and CI images set it; so do the machines this is tested on), Python would
# otherwise recompile scikit-learn, pandas and scipy on every run (issue 29, point 11): the cache is
# written only inside .venv, never beside a source, so it is kept on here. Compiling at install
# instead (uv's --compile-bytecode) compiled all ~20 000 files of the full install, ~45 CPU-s
# and ~30 s on 2 cores, for the ~8 500 a whole test run imports.
export PYTHONPYCACHEPREFIX := $(abspath $(VENV))/pycache
export PYTHONDONTWRITEBYTECODE :=

# Named by the version: a .venv made before a change of UV_VERSION gets the new uv.
# .venv is made without pip (ensurepip installs and compiles pip: 5-7 s of a fresh clone's
# install) and uv goes in with the system's pip (`--python`, pip >= 22.3); where Python has no
# pip of its own (Debian's python3 without python3-pip), ensurepip is the fallback. uv puts pip
# in .venv for the tests that need it (pyproject's dev extra).
PIP_INSTALL_UV := install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
$(UV_STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	@$(PYTHON) -m pip --python $(BIN)/python $(PIP_INSTALL_UV) 2>/dev/null || \
		{ $(BIN)/python -m ensurepip --default-pip >/dev/null && $(BIN)/python -m pip $(PIP_INSTALL_UV); }
	@touch $(UV_STAMP)

$(STAMP): pyproject.toml uv.lock | $(UV_STAMP)
	@$(SYNC) --extra dev
	@touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml uv.lock | $(UV_STAMP)
	@$(SYNC) --extra demo
	@touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)  ## render a model repo and run the whole GitOps loop locally (KEEP=1: leave it up)
	@$(BIN)/python -m scripts.demo $(DEMO_ARGS)

# The monitor scenarios build the monitoring pipeline's definition with the sagemaker SDK (only
# the training definition ships prebuilt), so they take the full install.
demo-drift: $(STAMP)  ## the loop, then drift in prod found by monitoring -> retrained -> proposed
	@$(BIN)/python -m scripts.demo --scenario drift $(DEMO_ARGS)

demo-shadow: $(DEMO_STAMP)  ## the loop, then a second version shadow-tested on prod's traffic before it switches
	@$(BIN)/python -m scripts.demo --scenario shadow $(DEMO_ARGS)

demo-rollback: $(DEMO_STAMP)  ## the loop, then a broken version whose canary fails and rolls back
	@$(BIN)/python -m scripts.demo --scenario rollback $(DEMO_ARGS)

demo-quality: $(STAMP)  ## the loop, then labelled prod traffic: a quality drop with no data drift
	@$(BIN)/python -m scripts.demo --scenario quality $(DEMO_ARGS)

# A deployment=batch render also builds the platform's batch pipeline (ci_scripts/pipelines/batch.py),
# which, unlike the default render's training definition, ships no prebuilt copy: the CLI builds
# it with the SDK, so the full install.
demo-batch: $(STAMP)  ## the loop for deployment=batch: batch jobs in staging and prod, no endpoints
	@$(BIN)/python -m scripts.demo --scenario batch $(DEMO_ARGS)

demo-definition: $(STAMP)  ## rebuild scripts/demo_definition.json with the sagemaker SDK
	@$(BIN)/python -m scripts.demo --write-definition

down:  ## stop the endpoints a `make demo KEEP=1` left running
	@if [ -d $(DEMO_REPO) ]; then $(BIN)/python -m ci_scripts --project-dir $(DEMO_REPO) local down; \
	else echo "$(DEMO_REPO): no demo repo, nothing to stop"; fi

test: $(STAMP)  ## lint and run the template's tests
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/python -m pytest -n 2 --dist loadgroup

bench: $(STAMP)  ## print performance figures as JSON
	@$(BIN)/python -m scripts.bench

aws-facts: $(STAMP)  ## regenerate ci_scripts/aws_facts.json from the installed botocore
	@$(BIN)/python -m scripts.gen_aws_facts

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
