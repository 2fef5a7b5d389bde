# The Python module (the crate in python/, and python/agent_backlog/): build it into the project's
# own virtualenv .venv/ and test it there. Nothing is installed outside the project.
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

.PHONY: test-python lint-python python-dev

test: test-python lint-python

# The virtualenv and the pinned tools; redone when the pins change.
$(VENV)/bin/pytest: tests/python/requirements.txt
	test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

python-dev: $(VENV)/bin/pytest
	CARGO_TARGET_DIR=$(PY_CARGO_TARGET) VIRTUAL_ENV=$(CURDIR)/$(VENV) \
		$(VENV)/bin/maturin develop --release --quiet

test-python: python-dev cli-bin
	$(VENV)/bin/mypy --strict python/agent_backlog examples/python tests/python tests/readme
	$(VENV_PY) -m mypy.stubtest agent_backlog._native
	$(VENV)/bin/pytest tests/python
	$(VENV_PY) examples/python/plan.py
	$(VENV_PY) examples/python/agent_tools.py

lint-python:
	CARGO_TARGET_DIR=$(PY_CARGO_TARGET) $(CARGO) clippy -p agent-backlog-python -- -D warnings
