# Everyday commands. The README shows the same ones.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install test test-fast container-test lint up down bootstrap bench bench-compare clean

install: $(VENV)/.installed

# requirements-dev.txt includes requirements.txt (the runtime, all the image installs).
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not integration and not faults and not containers"

# The image built with podman and the compose stack run by podman-compose (root; skips, saying why, without podman).
container-test: install
	$(BIN)/python -m pytest -m containers tests/deploy/test_containers.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

up: install
	$(BIN)/python -m stack

down: install
	$(BIN)/python -m stack down

bootstrap: install
	$(BIN)/python -m training bootstrap

bench: install
	$(BIN)/python -m bench.transform

bench-compare: install
	$(BIN)/python -m bench.compare

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
