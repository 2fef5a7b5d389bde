# The C ABI: libagent_backlog.so and .a (cargo build --release), the generated
# header, a pkg-config file, the C and C++ examples, and the C tests, which run under
# valgrind. Objects and programs go to target/c/.
#
#   make test-c       build the library, check the header, build and run every C test
#   make header       regenerate include/agent_backlog.h (cbindgen, pinned in Cargo.toml)
#   make pkgconfig    write target/release/agent_backlog.pc (points into this tree)
#   make examples-c   build and run examples/c/agent.c, examples/c/worker.c (the leased
#                     worker loop) and examples/cpp/agent.cpp

# cc and c++ unless given on the command line or in the environment.
ifeq ($(origin CC),default)
CC := cc
endif
ifeq ($(origin CXX),default)
CXX := c++
endif
PKG_CONFIG ?= pkg-config
VALGRIND ?= valgrind

C_LIBDIR := target/release
C_OUT := target/c
C_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
C_STRICT := -Wall -Wextra -pedantic -Werror
C_CFLAGS := -std=c11 $(C_STRICT) -g -Iinclude
C_CXXFLAGS := -std=c++17 $(C_STRICT) -g -Iinclude
# What `rustc --print native-static-libs` lists for the static library (libc aside).
C_STATIC_DEPS := -lgcc_s -lutil -lrt -lpthread -lm -ldl
C_LINK_SHARED := -L$(C_LIBDIR) -lagent_backlog -Wl,-rpath,$(abspath $(C_LIBDIR))
C_LINK_STATIC := $(C_LIBDIR)/libagent_backlog.a $(C_STATIC_DEPS)
C_VALGRIND_FLAGS := --quiet --error-exitcode=1 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect
# Leak and memory checks when valgrind is installed; see test-c for the fallback.
C_HAVE_VALGRIND := $(shell command -v $(VALGRIND) 2>/dev/null)
C_RUN := $(if $(C_HAVE_VALGRIND),$(VALGRIND) $(C_VALGRIND_FLAGS))

C_TEST_HEADERS := tests/c/check.h include/agent_backlog.h
C_TEST_PROGRAMS := $(foreach t,test_api test_threads test_header,\
	$(C_OUT)/$(t)-shared $(C_OUT)/$(t)-static)

.PHONY: c-lib header header-check pkgconfig examples-c test-c

test-all: test-c

# Cargo decides what to rebuild; the programs below are relinked every time (cheap).
c-lib:
	$(CARGO) build --release -p agent-backlog-clib

header:
	UPDATE_HEADER=1 $(CARGO) test --quiet -p agent-backlog-capi --test header

header-check:
	$(CARGO) test --quiet -p agent-backlog-capi --test header

# pc_file(PREFIX, LIBDIR under the prefix, OUTPUT): writes a pkg-config file.
pc_file = printf '%s\n' \
		'prefix=$(1)' \
		'libdir=$${prefix}/$(2)' \
		'includedir=$${prefix}/include' \
		'' \
		'Name: agent_backlog' \
		'Description: A prioritized task backlog for AI agents, in one SQLite file' \
		'Version: $(C_VERSION)' \
		'Libs: -L$${libdir} -lagent_backlog' \
		'Libs.private: $(C_STATIC_DEPS)' \
		'Cflags: -I$${includedir}' \
		> $(3)

pkgconfig: c-lib
	@mkdir -p $(C_LIBDIR)
	$(call pc_file,$(CURDIR),$(C_LIBDIR),$(C_LIBDIR)/agent_backlog.pc)

$(C_OUT):
	mkdir -p $@

# Every test source is compiled once and linked twice: against the shared library
# and against the static one.
$(C_OUT)/test_api.o: tests/c/test_api.c $(C_TEST_HEADERS) | $(C_OUT)
	$(CC) $(C_CFLAGS) -DEXPECTED_VERSION='"$(C_VERSION)"' -c $< -o $@

$(C_OUT)/test_threads.o: tests/c/test_threads.c $(C_TEST_HEADERS) | $(C_OUT)
	$(CC) $(C_CFLAGS) -pthread -c $< -o $@

$(C_OUT)/test_header.o: tests/c/test_header.cpp include/agent_backlog.h | $(C_OUT)
	$(CXX) $(C_CXXFLAGS) -c $< -o $@

$(C_OUT)/test_api-shared $(C_OUT)/test_threads-shared: $(C_OUT)/%-shared: $(C_OUT)/%.o c-lib
	$(CC) -pthread $< $(C_LINK_SHARED) -o $@

$(C_OUT)/test_api-static $(C_OUT)/test_threads-static: $(C_OUT)/%-static: $(C_OUT)/%.o c-lib
	$(CC) -pthread $< $(C_LINK_STATIC) -o $@

$(C_OUT)/test_header-shared: $(C_OUT)/test_header.o c-lib
	$(CXX) $< $(C_LINK_SHARED) -o $@

$(C_OUT)/test_header-static: $(C_OUT)/test_header.o c-lib
	$(CXX) $< $(C_LINK_STATIC) -o $@

# The C example is built through the pkg-config file, as a user would.
$(C_OUT)/agent-c: examples/c/agent.c include/agent_backlog.h pkgconfig | $(C_OUT)
	$(CC) $(C_CFLAGS) $< \
		$$(PKG_CONFIG_PATH=$(C_LIBDIR) $(PKG_CONFIG) --cflags --libs agent_backlog) \
		-Wl,-rpath,$(abspath $(C_LIBDIR)) -o $@

$(C_OUT)/worker-c: examples/c/worker.c include/agent_backlog.h c-lib | $(C_OUT)
	$(CC) $(C_CFLAGS) $< $(C_LINK_SHARED) -o $@

$(C_OUT)/agent-cpp: examples/cpp/agent.cpp include/agent_backlog.h c-lib | $(C_OUT)
	$(CXX) $(C_CXXFLAGS) $< $(C_LINK_SHARED) -o $@

examples-c: $(C_OUT)/agent-c $(C_OUT)/worker-c $(C_OUT)/agent-cpp
	$(C_OUT)/agent-c
	$(C_OUT)/worker-c
	$(C_OUT)/agent-cpp

test-c: header-check $(C_TEST_PROGRAMS) $(C_OUT)/agent-c $(C_OUT)/worker-c $(C_OUT)/agent-cpp
ifeq ($(C_HAVE_VALGRIND),)
	@echo '*** valgrind is not installed: the C tests run WITHOUT leak and memory checks.'
	@echo '*** Install it (Debian/Ubuntu: apt-get install valgrind) to run them fully.'
endif
	@set -e; for t in $(C_TEST_PROGRAMS); do \
		scratch=$$t.scratch; rm -rf $$scratch; mkdir -p $$scratch; \
		echo "$(C_RUN) $$t"; \
		$(C_RUN) $$t $$scratch; \
		rm -rf $$scratch; \
	done
	$(C_RUN) $(C_OUT)/agent-c $(C_OUT)/agent-c.db > $(C_OUT)/agent-c.log
	grep -q '"complete":3,"blocked":0,"total":3' $(C_OUT)/agent-c.log
	rm -f $(C_OUT)/agent-c.db $(C_OUT)/agent-c.db-wal $(C_OUT)/agent-c.db-shm
	$(C_RUN) $(C_OUT)/worker-c $(C_OUT)/worker-c.db > $(C_OUT)/worker-c.log
	grep -q '"complete":3,"blocked":0,"total":3' $(C_OUT)/worker-c.log
	rm -f $(C_OUT)/worker-c.db $(C_OUT)/worker-c.db-wal $(C_OUT)/worker-c.db-shm
	$(C_RUN) $(C_OUT)/agent-cpp > $(C_OUT)/agent-cpp.log
	grep -q '"complete":2,"blocked":0,"total":2' $(C_OUT)/agent-cpp.log
	@echo 'test-c: ok'
