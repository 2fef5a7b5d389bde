# Installing for C hosts and for the command line, under a PREFIX.
#
#   make install PREFIX=/usr/local   bin/agent-backlog, include/agent_backlog.h,
#                                    lib/libagent_backlog.so and .a, and
#                                    lib/pkgconfig/agent_backlog.pc; DESTDIR= for staging
#   make test-install                install under target/install-test/, then build the C
#                                    example through the installed pkg-config file (shared
#                                    and static) and run it, and run the installed binary;
#                                    and `cargo install --path cli` into it
#   make test-wheel                  build the Python wheel, install it into a fresh
#                                    virtualenv, import it and check its metadata; then
#                                    the same after `pip install .`
#   make test-package                `cargo package` of the library crate (built from
#                                    the package)
#
# The Rust library needs no install step: depend on it by path (see the README), and
# `cargo install --path cli` installs the binary into ~/.cargo/bin.

PREFIX ?= /usr/local
DESTDIR ?=
INSTALL ?= install
INSTALL_TEST := $(CURDIR)/target/install-test

.PHONY: install release-bin test-install test-wheel test-package

test-all: test-install test-wheel test-package

# The library crate as it would be published: packaged and built from the package.
test-package:
	$(CARGO) package -p agent-backlog --allow-dirty --quiet

# The C library and the binary, in one release build.
release-bin:
	$(CARGO) build --release -p agent-backlog-clib -p agent-backlog-cli

install: release-bin
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig
	$(INSTALL) -m 755 target/release/agent-backlog $(DESTDIR)$(PREFIX)/bin/
	$(INSTALL) -m 644 include/agent_backlog.h $(DESTDIR)$(PREFIX)/include/
	$(INSTALL) -m 755 target/release/libagent_backlog.so $(DESTDIR)$(PREFIX)/lib/
	$(INSTALL) -m 644 target/release/libagent_backlog.a $(DESTDIR)$(PREFIX)/lib/
	$(call pc_file,$(PREFIX),lib,$(DESTDIR)$(PREFIX)/lib/pkgconfig/agent_backlog.pc)
	@echo "installed under $(DESTDIR)$(PREFIX)"

test-install:
	rm -rf $(INSTALL_TEST)
	$(MAKE) --no-print-directory install PREFIX=$(INSTALL_TEST)
	$(INSTALL_TEST)/bin/agent-backlog --version
	PKG_CONFIG_PATH=$(INSTALL_TEST)/lib/pkgconfig $(CC) $(C_CFLAGS) examples/c/agent.c \
		$$(PKG_CONFIG_PATH=$(INSTALL_TEST)/lib/pkgconfig $(PKG_CONFIG) --cflags --libs agent_backlog) \
		-Wl,-rpath,$(INSTALL_TEST)/lib -o $(INSTALL_TEST)/agent-shared
	$(CC) $(C_CFLAGS) examples/c/agent.c \
		$$(PKG_CONFIG_PATH=$(INSTALL_TEST)/lib/pkgconfig $(PKG_CONFIG) --cflags agent_backlog) \
		$(INSTALL_TEST)/lib/libagent_backlog.a \
		$$(PKG_CONFIG_PATH=$(INSTALL_TEST)/lib/pkgconfig $(PKG_CONFIG) --static --libs-only-l agent_backlog | sed 's/-lagent_backlog//') \
		-o $(INSTALL_TEST)/agent-static
	cd $(INSTALL_TEST) && ./agent-shared shared.db | grep -q '"complete":3,"blocked":0,"total":3'
	cd $(INSTALL_TEST) && ./agent-static static.db | grep -q '"complete":3,"blocked":0,"total":3'
	CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) install --quiet --locked --path cli --root $(INSTALL_TEST)/cargo
	$(INSTALL_TEST)/cargo/bin/agent-backlog --db :memory: create ops "installed by cargo" | grep -q '"id":"OPS-001"'
	@echo 'test-install: ok'

WHEEL_VENV := $(CURDIR)/target/wheel-venv

test-wheel: $(VENV)/bin/pytest
	rm -rf target/wheels $(WHEEL_VENV)
	CARGO_TARGET_DIR=$(PY_CARGO_TARGET) $(VENV)/bin/maturin build --release --quiet --out target/wheels
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-index target/wheels/*.whl
	cd target && $(WHEEL_VENV)/bin/python $(CURDIR)/tests/readme/check_wheel.py $(C_VERSION)
	# `pip install .`, as the README says (with this venv's maturin instead of a fresh
	# download, and the build folder of the wheel above).
	$(WHEEL_VENV)/bin/python -m pip uninstall --quiet --yes agent-backlog
	$(WHEEL_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		$$(grep '^maturin==' tests/python/requirements.txt)
	PATH=$(WHEEL_VENV)/bin:$$PATH CARGO_TARGET_DIR=$(PY_CARGO_TARGET) $(WHEEL_VENV)/bin/python -m pip install --quiet \
		--disable-pip-version-check --no-build-isolation .
	cd target && $(WHEEL_VENV)/bin/python $(CURDIR)/tests/readme/check_wheel.py $(C_VERSION)
