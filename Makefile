# Two commands for a newcomer: `make run` and `make test`. See README.md.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEV_STAMP := $(VENV)/.installed-dev-stamp
# uv (a PyPI wheel) installs in seconds; plain pip is the fallback when it cannot be had.
PIP_INSTALL = { $(BIN)/python -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1 && \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python $(1); } || \
	$(BIN)/pip install --quiet --disable-pip-version-check $(1)
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# The suite runs in two pytest-xdist processes by default (each with its own database and Redis db: see
# tests/xdist_resources.py), which keeps .ci/run (both databases) well under 30 minutes; TEST_WORKERS=0 runs one.
TEST_WORKERS ?= 2

.PHONY: install install-dev run test lint browser-deps bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required (python3.11 or newer on PATH)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(call PIP_INSTALL,-c constraints.txt -e .)
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(call PIP_INSTALL,-c constraints.txt -e '.[dev]')
	@touch $(DEV_STAMP)

install: $(STAMP)
install-dev: $(DEV_STAMP)

# Embedded default: SQLite under var/, tasks in-process, WeCom simulator, demo data.
run: install
	@mkdir -p var
	$(BIN)/scrm init-secrets
	$(BIN)/scrm db upgrade
	$(BIN)/scrm seed-demo
	$(BIN)/scrm serve --host $(HOST) --port $(PORT)

# The browser tests drive Debian's chromium; install it (and CJK fonts) when missing.
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium and fonts-noto-cjk (Debian packages) for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else \
	    echo "WARNING: /usr/bin/chromium missing and cannot be installed here: browser tests will be skipped"; \
	  fi; \
	fi

test: install-dev browser-deps
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
