# The command line and the REST server: the cli/ crate, binary `agent-backlog`.
#
#   make test-cli      format check, then every test of the crate: the server over real
#                      HTTP on a free loopback port, the command line run as a process
#   make cli-bin       build the binary the Python and README tests start (MCP)
#   make demo-server   start the server on a free port with a temporary database and
#                      show one curl request per route (examples/serve_demo.sh)
#
# clippy for this crate runs in the top-level `lint` (--workspace).

.PHONY: lint-cli test-cli demo-server cli-bin

test-all: test-cli

lint-cli:
	$(CARGO) fmt -p agent-backlog-cli --check

test-cli: lint-cli | pg-test
	$(WITH_PG) $(CARGO) test -p agent-backlog-cli

# The debug binary, for the Python and README tests that start it (the MCP server with
# the official client); they find it through AGENT_BACKLOG_BIN.
cli-bin:
	$(CARGO) build -p agent-backlog-cli

export AGENT_BACKLOG_BIN := $(CURDIR)/target/debug/agent-backlog

demo-server:
	CARGO="$(CARGO)" bash examples/serve_demo.sh
