# agent-backlog: `make demo` shows it working, `make test` checks everything.
# Every tool it needs is installed under the project (.venv/); nothing global.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: demo test lint test-rust clean

demo:
	rm -f target/demo.db target/demo.db-wal target/demo.db-shm
	$(CARGO) run --quiet --release --example quickstart -- target/demo.db

test: lint test-rust

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --quiet -p agent-backlog

test-rust:
	$(CARGO) test -p agent-backlog -p agent-backlog-capi

clean:
	$(CARGO) clean
	rm -rf .venv

# Each surface adds its own targets (and its prerequisites of `test`) here.
include $(wildcard mk/*.mk)
