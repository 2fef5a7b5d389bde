# Benchmarks (not part of `make test`): `make bench` runs both.
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

BENCH_ARGS ?=
# (also set in mk/python.mk, which is read after this file)
VENV ?= .venv
VENV_PY ?= $(VENV)/bin/python

.PHONY: bench bench-rust bench-python

bench: bench-rust bench-python

bench-rust:
	$(CARGO) bench --bench ops

$(VENV)/bin/bench-deps-installed: $(VENV)/bin/pytest
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check litequeue==0.9 aiosqlite==0.22.1
	touch $@

bench-python: python-dev $(VENV)/bin/bench-deps-installed
	$(VENV_PY) bench/python/bench.py $(BENCH_ARGS)
	$(VENV_PY) bench/python/leases.py $(BENCH_ARGS)
	$(VENV_PY) bench/python/async_bench.py $(BENCH_ARGS)
