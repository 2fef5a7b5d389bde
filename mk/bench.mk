# Benchmarks (not part of `make test`): `make bench` runs all three.
#
#   make bench-rust     criterion: every operation at 10k, 100k and 1M tasks, on a file
#                       and in memory, next to the bare-rusqlite floor; prints ratios
#                       (AB_BENCH_SIZES=10000 for one size)
#   make bench-python   the Python surface against a hand-written stdlib-sqlite3
#                       version and litequeue; writes docs/bench-latency.svg; then
#                       leases: the finish_and_claim loop, claim_lease vs claim_next,
#                       wake latency across processes and the CPU of a waiting worker;
#                       then AsyncStore against Store, asyncio.to_thread and aiosqlite,
#                       the event loop's lag, and how fast a cancelled wait ends
#                       (BENCH_ARGS=--quick for a smoke run)
#   make bench-postgres the same store on PostgreSQL (bench/python/pg_bench.py), on the
#                       private server of mk/postgres.mk (started if need be): claim +
#                       complete with 1, 4 and 8 processes through claim_next +
#                       update_task and through finish_and_claim, against hand-written
#                       psycopg 3 and agent_backlog on an SQLite file; first page and
#                       summary latency at 10k and 100k tasks (`make bench-postgres
#                       BENCH_ARGS=--full`: at 1M too); then the same with the
#                       server's fsync on (--fsync), each commit waiting for its flush

BENCH_ARGS ?=
# (also set in mk/python.mk, which is read after this file)
VENV ?= .venv
VENV_PY ?= $(VENV)/bin/python

.PHONY: bench bench-rust bench-python bench-postgres

bench: bench-rust bench-python bench-postgres

bench-rust:
	$(CARGO) bench --bench ops
	$(CARGO) bench --bench cycle

# Redone when this file (and so the pins) changes.
$(VENV)/bin/bench-deps-installed: $(VENV)/bin/pytest mk/bench.mk
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check litequeue==0.9 aiosqlite==0.22.1 \
		"psycopg[binary]==3.3.9"
	touch $@

bench-python: python-dev $(VENV)/bin/bench-deps-installed
	$(VENV_PY) bench/python/bench.py $(BENCH_ARGS)
	$(VENV_PY) bench/python/leases.py $(BENCH_ARGS)
	$(VENV_PY) bench/python/async_bench.py $(BENCH_ARGS)

bench-postgres: python-dev $(VENV)/bin/bench-deps-installed | pg-start
	$(WITH_PG) $(VENV_PY) bench/python/pg_bench.py $(BENCH_ARGS)
	$(WITH_PG) $(VENV_PY) bench/python/pg_bench.py --fsync --json target/bench/pg-fsync.json \
		$(BENCH_ARGS)
