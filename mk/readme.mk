# The README's examples: every Rust, Python and C block runs as written, twice.
#
#   make test-readme   build the C library and the Python module, then run
#                      tests/readme/test_readme.py (the Rust example is built as a project
#                      of its own, in target/readme/)

.PHONY: test-readme

test-all: test-readme

test-readme: c-lib python-dev cli-bin | pg-test
	$(WITH_PG) $(VENV)/bin/pytest tests/readme
