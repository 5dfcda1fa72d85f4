# trapscope: set-up, serve, test.
#
#   make run    set up (venv, pip, npm) if needed, then serve http://127.0.0.1:8000
#   make test   set up (with test extras and Debian's chromium), then ruff, lint-imports and the whole pytest suite
#
# Every set-up step is guarded by a file, so a second run does no set-up work:
#   .venv/bin/python                 the virtualenv            (python3 -m venv)
#   .venv/.stamp-install-run         pip install -e .          (redone when pyproject.toml changes)
#   .venv/.stamp-install-test        pip install -e '.[test]'  (redone when pyproject.toml changes)
#   node_modules/.stamp-npm-ci       npm ci                    (redone when package-lock.json changes)
#   /usr/bin/chromium                apt-get install chromium  (only when missing)
#   /usr/bin/redis-server            apt-get install redis-server (only when missing; the rooms' Redis test)
#   /usr/sbin/nginx                  apt-get install nginx-light openssl (only when missing; `nginx -t` of deploy/)
#   /usr/bin/wrk                     apt-get install wrk (only when missing; make bench's HTTP load)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.NOTPARALLEL:

PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
CHROMIUM ?= /usr/bin/chromium
REDIS_SERVER ?= /usr/bin/redis-server
NGINX ?= /usr/sbin/nginx
WRK ?= /usr/bin/wrk
# Extra arguments for pytest, e.g. make test PYTEST_ARGS='-m "not browser" -x'
PYTEST_ARGS ?=
# DTrace's own test suite and its runner (make conformance), beside the project as in the issue's set-up
CONFORMANCE ?= ../shared/conformance/dtrace/run.py
CONFORMANCE_ARGS ?=

BIN := $(VENV)/bin
VPY := $(BIN)/python
STAMP_RUN := $(VENV)/.stamp-install-run
STAMP_TEST := $(VENV)/.stamp-install-test
NPM_STAMP := node_modules/.stamp-npm-ci

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1
export NPM_CONFIG_UPDATE_NOTIFIER := false
export NPM_CONFIG_FUND := false
export NPM_CONFIG_AUDIT := false
ifdef CI
export PIP_PROGRESS_BAR := off
export NPM_CONFIG_PROGRESS := false
endif

# $(call apt_install,PACKAGES): apt-get as root, or through sudo when not root.
define apt_install
if [ "$$(id -u)" -eq 0 ]; then SUDO=""; \
elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; \
else echo "make: need root or sudo to apt-get install $(1)" >&2; exit 1; fi; \
echo "apt-get install $(1)"; \
$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update; \
$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 \
	install --no-install-recommends $(1)
endef

.PHONY: help setup setup-test run test lint format bench conformance clean distclean

help:
	@echo "make run        serve trapscope on http://$(HOST):$(PORT) (sets everything up first)"
	@echo "make test       ruff check + ruff format --check + lint-imports + pytest, browser tests included"
	@echo "make lint       ruff check + ruff format --check + lint-imports (the layers, in pyproject.toml)"
	@echo "make format     ruff format + ruff check --fix"
	@echo "make bench      run every benchmark under bench/"
	@echo "make conformance run DTrace's own test suite's D cases (~5 min of two cores; make test runs a subset)"
	@echo "make setup      venv + pip install -e . + npm ci"
	@echo "make setup-test venv + pip install -e '.[test]' + npm ci + Debian's chromium, redis-server and nginx-light"
	@echo "make clean      remove caches and test output; make distclean also removes .venv and node_modules"

# ---------------------------------------------------------------- set-up

$(VPY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "make: trapscope needs Python >= 3.11; $(PYTHON) is $$($(PYTHON) -V 2>&1)" >&2; exit 1; }
	@# Debian's own python3 has no ensurepip until python3-venv is installed.
	$(PYTHON) -m venv $(VENV) || { \
	  rm -rf $(VENV); $(call apt_install,python3-venv); $(PYTHON) -m venv $(VENV); }

$(STAMP_RUN): pyproject.toml | $(VPY)
	$(VPY) -m pip install -e .
	@touch $@

$(STAMP_TEST): pyproject.toml | $(VPY)
	$(VPY) -m pip install -e '.[test]'
	@touch $@ $(STAMP_RUN)

# Only when the lock file is missing (it is committed, so normally never).
package-lock.json:
	npm install --package-lock-only

$(NPM_STAMP): package-lock.json package.json
	@command -v npm >/dev/null 2>&1 || { $(call apt_install,nodejs npm); }
	npm ci
	@touch $@

# Only when the browser is missing. Never `playwright install`: tests drive Debian's chromium.
$(CHROMIUM):
	@$(call apt_install,chromium fonts-liberation)

setup: $(STAMP_RUN) $(NPM_STAMP)

# Only when missing. The test that shares live rooms between two app processes starts its own redis-server on a
# free loopback port (never the system's service).
$(REDIS_SERVER):
	@$(call apt_install,redis-server)

# Only when missing: tests/test_deploy.py checks deploy/'s nginx configuration with `nginx -t` (never started).
$(NGINX):
	@$(call apt_install,nginx-light openssl)

setup-test: $(STAMP_TEST) $(NPM_STAMP) $(CHROMIUM) $(REDIS_SERVER) $(NGINX)

# ---------------------------------------------------------------- use

run: setup
	exec $(BIN)/trapscope serve --host $(HOST) --port $(PORT)

# Runs all three checks even when one fails, so CI shows every problem; exits non-zero if any failed.
# On success pytest's summary line is the last line printed (CI reads it).
test: setup-test
	@failed=""; \
	echo "== ruff check ."; $(BIN)/ruff check . || failed="$$failed ruff-check"; \
	echo "== ruff format --check ."; $(BIN)/ruff format --check . || failed="$$failed ruff-format"; \
	echo "== lint-imports"; $(BIN)/lint-imports --no-cache || failed="$$failed lint-imports"; \
	echo "== pytest"; $(VPY) -m pytest $(PYTEST_ARGS) || failed="$$failed pytest"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed" >&2; exit 1; fi

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(STAMP_TEST)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Only when missing: bench/step_throughput.py and bench/lecture_load.py load the servers with wrk (and
# lecture_load --workers N starts a redis-server of its own).
$(WRK):
	@$(call apt_install,wrk)

bench: $(STAMP_TEST) $(NPM_STAMP) $(WRK) $(REDIS_SERVER)
	$(VPY) -m bench

# The whole suite: every case as dtrace's driver runs it, scored, with what blocks the rest (CONFORMANCE_ARGS, e.g.
# '--only aggs/ -v'). Its results go to $(TMPDIR)/dtrace_conformance; tests/sim/test_d_conformance.py runs a
# few cases of each directory in make test.
conformance: $(STAMP_RUN)
	$(VPY) $(CONFORMANCE) . --out $${TMPDIR:-/tmp}/dtrace_conformance $(CONFORMANCE_ARGS)

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis test-results tests/artifacts
	find . -path ./.venv -prune -o -path ./node_modules -prune -o -name __pycache__ -type d -print0 \
	  | xargs -0r rm -rf

distclean: clean
	rm -rf $(VENV) node_modules *.egg-info
