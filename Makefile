# Two commands: `make run` (set up + serve on the embedded defaults) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install -q -c constraints.txt
REGISTRY_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
export REGISTRY_TEST_POSTGRES_URL

.PHONY: install install-dev browser run test test-sqlite test-postgres lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e '.[dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# Migrate the embedded SQLite DB under ./var, create the artifact dir, print a first admin token
# (only on the first run: bootstrap refuses once an admin exists), then serve on 127.0.0.1:8000.
run: install
	mkdir -p var/artifacts
	$(BIN)/adapter-registry db upgrade
	@$(BIN)/adapter-registry bootstrap || true
	$(BIN)/adapter-registry serve --host 127.0.0.1 --port 8000

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy registry tests
	$(BIN)/mypy examples/make_examples.py  # alone: examples/adapters/ would shadow the adapters package

# The web console's browser tests drive the system's Chromium (Playwright cannot download its
# own here): Debian's package, installed when missing (CI runs as root).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  apt-get install -y --no-install-recommends chromium || \
	  (apt-get update && apt-get install -y --no-install-recommends chromium)

# The whole suite, once per database dialect. With CI=true an unreachable PostgreSQL fails.
test: install-dev browser lint test-sqlite test-postgres

test-sqlite: install-dev browser
	REGISTRY_TEST_DIALECT=sqlite $(BIN)/pytest -n 2 -q

test-postgres: install-dev browser
	REGISTRY_TEST_DIALECT=postgresql $(BIN)/pytest -n 2 -q

bench: install-dev
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
