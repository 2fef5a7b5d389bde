# The Python module (the crate in python/, and python/agent_backlog/): build it into the project's
# own virtualenv .venv/ and test it there. Nothing is installed outside the project but
# Debian's chromium package for the dashboard's browser test (`make chromium`).
#
#   make test-python   build the module (release) into .venv, then mypy --strict,
#                      stubtest (the .pyi matches the module) and pytest
#   make lint-python   clippy on the crate with the `python` feature
#   make python-dev    only (re)build the module into .venv

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
# A separate target dir, so that the Python build (other features, other env) does
# not invalidate the default build in target/.
PY_CARGO_TARGET := $(CURDIR)/target/python

.PHONY: test-python lint-python python-dev chromium

# Debian's Chromium, for the dashboard's browser test (tests/python/test_dashboard.py):
# the one thing installed outside the project, as a Debian package, when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

test-all: test-python lint-python

# The virtualenv and the pinned tools; redone when the pins change.
$(VENV)/bin/pytest: tests/python/requirements.txt
	test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

python-dev: $(VENV)/bin/pytest
	CARGO_TARGET_DIR=$(PY_CARGO_TARGET) VIRTUAL_ENV=$(CURDIR)/$(VENV) \
		$(VENV)/bin/maturin develop --release --quiet

test-python: python-dev cli-bin chromium | pg-test
	$(VENV)/bin/mypy --strict python/agent_backlog examples/python tests/python tests/readme
	$(VENV_PY) -m mypy.stubtest agent_backlog._native
	REQUIRE_BROWSER=1 $(WITH_PG) $(VENV)/bin/pytest tests/python
	$(VENV_PY) examples/python/plan.py
	$(VENV_PY) examples/python/agent_tools.py
	$(VENV_PY) examples/python/pydantic_ai_tools.py
	$(VENV_PY) examples/python/langchain_tools.py

lint-python:
	CARGO_TARGET_DIR=$(PY_CARGO_TARGET) $(CARGO) clippy -p agent-backlog-python -- -D warnings
