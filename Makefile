# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv, installs torch==2.13.0 first (the CPU wheel; a bare `torch` pulls CUDA),
# then capcast with its test extras. The installer is uv (from PyPI into the venv: several times
# faster than pip, benchmarks/demo_time.txt); where uv cannot be had or fails, pip does it all.
# uv reads no pip.conf: pip's find-links and index from the environment are handed over. uv compiles
# bytecode only when asked (pip always does): with PYTHONDONTWRITEBYTECODE=1, as on CI, every test
# process would otherwise compile torch and transformers from source (the suite took 1,047 s, not 570).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_SOURCES := $(foreach link,$(PIP_FIND_LINKS),--find-links $(link)) $(if $(PIP_INDEX_URL),--index-url $(PIP_INDEX_URL))
UV := $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python $(UV_SOURCES)
PIP := $(BIN)/python -m pip install -q

$(BIN)/capcast: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	( $(PIP) uv && $(UV) torch==2.13.0 && $(UV) -e '.[test]' ) || \
	( echo "uv unavailable: installing with pip" && $(PIP) -U pip && $(PIP) torch==2.13.0 && $(PIP) -e '.[test]' )
	touch $@

install: $(BIN)/capcast

# capcast's own modules are an editable install, which no installer compiles: with
# PYTHONDONTWRITEBYTECODE=1 every process would compile them anew (about 0.1 s of each start-up)
COMPILE := $(BIN)/python -m compileall -q capcast

demo: install
	$(COMPILE)
	$(BIN)/capcast demo

# Two pytest-xdist workers, one test file each at a time (a file's fixtures built once): the suite's
# processes wait on imports and subprocesses much of the time, so two fill a 2-core machine (on this
# project's 2-core machines 381-866 s from a fresh clone; three workers took longer, 897 s). More cores:
# TEST_WORKERS=N.
TEST_WORKERS ?= 2

test: install
	$(COMPILE)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# Regenerate the published leaderboards in leaderboards/ (Pythia and OpenLM need ../shared/data).
leaderboards: install
	$(BIN)/python -m capcast.leaderboard.published leaderboards

.PHONY: install demo test leaderboards
