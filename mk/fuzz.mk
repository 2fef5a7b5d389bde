# Robustness: the catalogue of bad inputs from C, and the cargo-fuzz targets in fuzz/.
#
#   make test-catalogue-c   build tests/c/test_catalogue.c (C11, strict warnings), link it
#                           against the shared and the static library, run both under
#                           valgrind (part of `make test`)
#   make fuzz               run every fuzz target for FUZZ_SECONDS seconds each (default
#                           60), one after the other; not part of `make test`
#   make fuzz-tools         install cargo-fuzz (pinned) into target/tools/, nothing global
#
# The catalogue tests of the Rust API, the C ABI from Rust and the Python module are
# tests/catalogue.rs and tests/python/test_catalogue.py, run by `cargo test` and pytest.
# The fuzz crate is its own workspace (fuzz/Cargo.toml) with its own target dir
# (fuzz/target/), so a plain `cargo build` never sees it.

CARGO_FUZZ_VERSION := 0.13.2
FUZZ_TOOLS := $(CURDIR)/target/tools
CARGO_FUZZ := $(FUZZ_TOOLS)/bin/cargo-fuzz
FUZZ_SECONDS ?= 60
# Extra libFuzzer flags, e.g. FUZZ_FLAGS=-max_len=65536
FUZZ_FLAGS ?=
FUZZ_TARGETS := create_task create_tasks update_task list_query query_query open_options operations call

.PHONY: test-catalogue-c fuzz fuzz-tools fuzz-build

test-all: test-catalogue-c

# --- the C catalogue -----------------------------------------------------------------

CAT_PROGRAMS := $(C_OUT)/test_catalogue-shared $(C_OUT)/test_catalogue-static

$(C_OUT)/test_catalogue.o: tests/c/test_catalogue.c $(C_TEST_HEADERS) | $(C_OUT)
	$(CC) $(C_CFLAGS) -c $< -o $@

$(C_OUT)/test_catalogue-shared: $(C_OUT)/test_catalogue.o c-lib
	$(CC) -pthread $< $(C_LINK_SHARED) -o $@

$(C_OUT)/test_catalogue-static: $(C_OUT)/test_catalogue.o c-lib
	$(CC) -pthread $< $(C_LINK_STATIC) -o $@

test-catalogue-c: $(CAT_PROGRAMS)
	@set -e; for t in $(CAT_PROGRAMS); do \
		scratch=$$t.scratch; rm -rf $$scratch; mkdir -p $$scratch; \
		echo "$(C_RUN) $$t $$scratch"; \
		(cd $$scratch && $(C_RUN) "$(CURDIR)/$$t" "$(CURDIR)/$$scratch"); \
		rm -rf $$scratch; \
	done
	@echo 'test-catalogue-c: ok'

# --- fuzzing -------------------------------------------------------------------------

$(CARGO_FUZZ):
	$(CARGO) install --locked --root $(FUZZ_TOOLS) cargo-fuzz --version $(CARGO_FUZZ_VERSION)

fuzz-tools: $(CARGO_FUZZ)

# Stable Rust without a sanitizer: coverage-guided, and every target checks its own
# invariants (a broken one panics, which libFuzzer reports as a crash).
FUZZ_RUN = cd fuzz && $(CARGO_FUZZ) fuzz
FUZZ_BUILD_FLAGS := --sanitizer none --release --debug-assertions

fuzz-build: $(CARGO_FUZZ)
	$(FUZZ_RUN) build $(FUZZ_BUILD_FLAGS)

# Every target runs even when one finds a crash (its input is saved under
# fuzz/artifacts/<target>/); the run fails at the end if any did.
fuzz: fuzz-build
	@failed=''; for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t for $(FUZZ_SECONDS)s"; \
		mkdir -p fuzz/corpus/$$t fuzz/artifacts/$$t; \
		(cd fuzz && $(CARGO_FUZZ) fuzz run $(FUZZ_BUILD_FLAGS) $$t -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(FUZZ_FLAGS)) \
			|| failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in:$$failed"; exit 1; fi; \
	echo 'fuzz: no crash'
