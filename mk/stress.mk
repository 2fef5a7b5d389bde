# Issue 5, reliability (docs/RELIABILITY.md): no double claim, no lost write, busy is a
# bounded error, storage faults are errors.
#
#   make test-reliability   the C variant of the claim race (bounded sizes); `make test`
#                           runs it, and runs the Rust tests (tests/reliability_*.rs,
#                           through `cargo test`) and the Python race
#                           (tests/python/test_reliability.py, through pytest) with the
#                           same bounded sizes
#   make stress             every reliability test at the full sizes of issue 5
#                           (AGENT_BACKLOG_STRESS=1): 5,000 tasks claimed by 8 processes
#                           x 2 threads through Rust, C and Python, 300 kills, ...,
#                           and 100,000 agents sharing one derived prefix base; the
#                           lease kill loop (600 tasks, ~150 SIGKILLed leased workers)
#                           and the SIGSTOPped worker resumed after its lease expired;
#                           and on PostgreSQL (tests/python/test_postgres.py, on the
#                           server of mk/postgres.mk, started if need be): two `serve`
#                           processes on one schema with 8 REST client processes x 2
#                           threads claiming 5,000 tasks, the lease kill loop through
#                           Store(url), and workers carrying on across a restart of the
#                           server (scripts/pg.sh restart; only here, never in `make test`,
#                           which runs the first two at small sizes)
#
# Nothing here passes or fails by time; loops are bounded by counts, children by a
# generous deadline. Set AGENT_BACKLOG_SEED to repeat a run's random choices.

RELIABILITY_TESTS := reliability_claims reliability_kill reliability_busy reliability_faults \
	threads_forks_fleets

.PHONY: test-reliability stress stress-rust stress-c stress-python

test-all: test-reliability

$(C_OUT)/race.o: tests/c/race.c $(C_TEST_HEADERS) | $(C_OUT)
	$(CC) $(C_CFLAGS) -pthread -c $< -o $@

$(C_OUT)/race: $(C_OUT)/race.o c-lib
	$(CC) -pthread $< $(C_LINK_SHARED) -o $@

# The race through the C ABI, in a scratch folder removed afterwards.
define run-race-c
	@set -e; scratch=$$(mktemp -d "$${TMPDIR:-/tmp}/agent-backlog-race-c.XXXXXX"); \
	trap 'rm -rf "$$scratch"' EXIT; \
	$(1) $(C_OUT)/race "$$scratch"
endef

test-reliability: $(C_OUT)/race
	$(call run-race-c,)

stress: stress-rust stress-c stress-python | pg-start
	@echo 'stress: ok'

stress-rust:
	AGENT_BACKLOG_STRESS=1 $(CARGO) test $(addprefix --test ,$(RELIABILITY_TESTS)) -- --nocapture

stress-c: $(C_OUT)/race
	$(call run-race-c,AGENT_BACKLOG_STRESS=1)

stress-python: python-dev cli-bin | pg-start
	AGENT_BACKLOG_STRESS=1 $(WITH_PG) $(VENV)/bin/pytest -s tests/python/test_reliability.py \
		tests/python/test_lease_kills.py tests/python/test_leases.py \
		tests/python/test_postgres.py
