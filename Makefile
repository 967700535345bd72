# One-command set-up: `make run` starts the platform, `make test` runs the suite.
# Both create .venv and install what they need; nothing has to be installed by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The services come from the platform's one list (bio_shared/services.toml), read with the stdlib.
CATALOGUE := shared/src/bio_shared/services.toml
catalogue = $(shell $(PYTHON) -c 'import tomllib; print(" ".join(s["$(1)"] for s in tomllib.load(open("$(CATALOGUE)", "rb"))["service"]))')
SERVICE_FOLDERS := $(call catalogue,folder)
SERVICE_CLIS := $(call catalogue,cli)
PACKAGES := shared gateway $(addprefix services/,$(SERVICE_FOLDERS))
ifeq ($(strip $(SERVICE_FOLDERS)),)
$(error cannot read $(CATALOGUE) with $(PYTHON) (Python 3.11 or newer is needed))
endif
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q
HOST   ?= 127.0.0.1
PORT   ?= 8000
export BIOMETRICS_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: help install run migrate create-admin test test-tools lint up down status bench clean services

help:
	@echo "make run           start the whole platform as one process (SQLite, in-process jobs) on http://$(HOST):$(PORT)"
	@echo "make test          install test dependencies and run the whole suite"
	@echo "make lint          ruff, mypy (strict on bio_shared and every engine/) and the import contracts"
	@echo "make up / down     distributed mode on loopback: gateway, 4 services, 4 Celery workers and the webhooks worker (PostgreSQL + Redis)"
	@echo "make create-admin  EMAIL=... [PASSWORD=...]: create or promote an admin account"
	@echo "make bench         benchmarks; reports under reports/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python constraints.txt requirements-nodeps.txt $(CATALOGUE) $(addsuffix /pyproject.toml,$(PACKAGES))
	$(PIP) -c constraints.txt $(addprefix -e ,$(PACKAGES))
	$(PIP) -c constraints.txt --no-deps -r requirements-nodeps.txt
	@touch $@

$(VENV)/.test-installed: $(VENV)/.installed requirements-test.txt shared/testing/pyproject.toml
	$(PIP) -c constraints.txt -r requirements-test.txt -e shared/testing
	@touch $@

# Command-line tools the deployment tests run for real: docker-compose (config validation), promtool
# and prometheus (rules, and a real scrape of the platform), wrk (bench), chromium and its driver (the
# operator console's browser tests, driven by Playwright). kubectl is on the machine.
TOOLS := docker-compose:docker-compose promtool:prometheus prometheus:prometheus wrk:wrk chromium:chromium \
         chromedriver:chromium-driver
test-tools:
	@missing=""; for t in $(TOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "missing tools:$$missing (their tests are skipped outside CI)"; fi; \
	fi

install: $(VENV)/.installed

$(VENV)/.lint-installed: $(VENV)/.test-installed requirements-lint.txt
	$(PIP) -c constraints.txt -r requirements-lint.txt
	@touch $@

# Ruff's rules, mypy's strictness per package and the layering contracts are in pyproject.toml.
lint: $(VENV)/.lint-installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/mypy --explicit-package-bases conftest.py tests deploy
	$(BIN)/lint-imports

migrate: install
	$(BIN)/bio-platform migrate

run: install
	$(BIN)/bio-platform run --host $(HOST) --port $(PORT)

create-admin: install
	$(BIN)/bio-platform create-admin --email "$(EMAIL)" $(if $(PASSWORD),--password "$(PASSWORD)")

test: $(VENV)/.test-installed test-tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

up: install
	$(BIN)/python deploy/local/launch.py up

down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python deploy/local/launch.py down; else echo "nothing to stop"; fi

status: install
	$(BIN)/python deploy/local/launch.py status

bench: $(VENV)/.test-installed test-tools
	$(PIP) -c constraints.txt -e "services/fingerprint[bench]"  # NBIS baseline next to our matcher
	$(BIN)/python tests/bench/gateway_overhead.py --out reports/gateway_overhead
	$(BIN)/bio-fingerprint bench-decisions --json reports/fingerprint_decisions.json --cache var/bench-cache
	$(BIN)/bio-fingerprint bench-threshold --json reports/fingerprint_threshold.json --cache var/bench-cache
	@for cli in $(SERVICE_CLIS); do \
	  if $(BIN)/$$cli bench --help >/dev/null 2>&1; then \
	    echo "== $$cli bench"; $(BIN)/$$cli bench --out reports/$${cli#bio-} || exit 1; \
	  fi; \
	done
	# 1:N at scale (issue 14): approximate face index, two-stage sharded fingerprint search
	for n in 10000 100000 1000000; do \
	  $(BIN)/bio-face-recognition bench-search --size $$n --json reports/search/faces-$$n.json || exit 1; \
	done
	$(BIN)/bio-fingerprint bench-search --size 10000 --shards 2 --json reports/search/fingerprint-10000.json
	$(BIN)/bio-fingerprint bench-search --size 100000 --shards 1 --probes 100 --json reports/search/fingerprint-100000.json
	# the same gallery with half-size re-acquired probes: the prefilter's losses on partial prints
	$(BIN)/bio-fingerprint bench-search --size 10000 --shards 1 --probe-keep 0.5 --json reports/search/fingerprint-10000-partial.json

clean:
	rm -rf $(VENV) var reports .pytest_cache .mypy_cache

services:  # the platform's services, from $(CATALOGUE)
	@echo "packages: $(PACKAGES)"; echo "clis:     $(SERVICE_CLIS)"
