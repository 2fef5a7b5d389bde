# agent-backlog: `make demo` shows it working, `make test` checks everything.
# Every tool it needs is installed under the project (.venv/); nothing global.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: demo test test-all lint test-rust clean

# One release build (no dev-dependencies), then the library and the server at work.
demo:
	@echo "==> building agent-backlog (release; the first build compiles SQLite: about a minute and a half on two cores)"
	$(CARGO) build --release -p agent-backlog-quickstart -p agent-backlog-cli
	@echo
	@echo "==> part 1 of 2: the embedded library — the Rust API on target/demo.db, no server"
	@rm -f target/demo.db target/demo.db-wal target/demo.db-shm
	target/release/agent-backlog-quickstart target/demo.db
	@echo "==> part 2 of 2: the HTTP server — agent-backlog serve, one request per route"
	AGENT_BACKLOG_BIN=target/release/agent-backlog bash examples/serve_demo.sh

# Every prerequisite of `test-all` (here and in mk/*.mk) runs; then the test server of
# PostgreSQL (mk/postgres.mk) is stopped, whether they passed or not, and the status is
# theirs.
test:
	@status=0; $(MAKE) --no-print-directory test-all || status=$$?; \
		bash scripts/pg.sh stop; exit $$status

test-all: lint test-rust

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --workspace --all-targets --features agent-backlog/tokio -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --quiet -p agent-backlog --features tokio

test-rust: | pg-test
	$(WITH_PG) $(CARGO) test -p agent-backlog -p agent-backlog-capi --features agent-backlog/tokio

clean: pg-stop
	$(CARGO) clean
	rm -rf .venv

# Each surface adds its own targets (and its prerequisites of `test-all`) here.
include $(wildcard mk/*.mk)
