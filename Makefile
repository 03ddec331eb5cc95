# Two commands: `make run` and `make test`. Each sets up what is missing first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run run-cluster test test-fast lint setup bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

static/build/.built: node_modules/.installed $(wildcard static/src/*.js) $(wildcard games/*/browser.js) static/build.mjs
	node static/build.mjs
	touch static/build/.built

setup: $(STAMP) static/build/.built

run: setup
	$(PY) run.py

# Lobby (2 uvicorn workers, PostgreSQL), Redis-backed shared state and events, 2 game nodes.
run-cluster: setup
	$(PY) cluster.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

PG_URL ?= postgres://postgres@127.0.0.1:5432/test

test: setup lint
	$(PY) -m pytest -q -p no:cacheprovider
	@echo "--- lobby tests again on PostgreSQL ($(PG_URL))"
	DATABASE_URL=$(PG_URL) $(PY) -m pytest -q -p no:cacheprovider tests/lobby

# The inner loop: no browser, scale or slow tests (pytest markers; tests/conftest.py marks
# tests/browser and tests/scale by folder), no PostgreSQL pass.
test-fast: setup
	$(PY) -m pytest -q -p no:cacheprovider -m "not browser and not scale and not slow"

bench: $(STAMP)
	$(PY) -m engine.bench

clean:
	rm -rf $(VENV) node_modules static/build var
