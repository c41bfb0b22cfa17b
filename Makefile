# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv, installs torch==2.13.0 first (the CPU wheel; a bare `torch` pulls CUDA),
# then capcast with its test extras.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/capcast: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(BIN)/capcast

demo: install
	$(BIN)/capcast demo

test: install
	$(BIN)/python -m pytest -q

# Regenerate the published leaderboards in leaderboards/ (Pythia and OpenLM need ../shared/data).
leaderboards: install
	$(BIN)/python -m capcast.leaderboard.published leaderboards

.PHONY: install demo test leaderboards
