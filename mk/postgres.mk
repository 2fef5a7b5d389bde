# A private, throwaway PostgreSQL cluster for the tests and benchmarks that need one
# (scripts/pg.sh). It lives in target/pg/ (AGENT_BACKLOG_PG_DIR elsewhere), listens on
# 127.0.0.1 only, on a free port chosen at the first start and kept in target/pg/port.
#
#   make pg-start   create the cluster on first use (initdb; as root, it runs as user
#                   nobody, since PostgreSQL refuses root), start it, wait until it
#                   answers, create database agent_backlog, and print its URL:
#                   postgresql://agent_backlog@127.0.0.1:PORT/agent_backlog
#                   (does nothing but print the URL when it is already running)
#   make pg-stop    stop it (fast shutdown); nothing to do when it is not running
#   make pg-test    a fresh cluster for `make test`: the old one (and every schema the
#                   last run left) is thrown away, a new one started. The tests that
#                   need it run with $(WITH_PG), which names it in AGENT_BACKLOG_TEST_PG;
#                   `make test` stops it at the end.
#
# scripts/pg.sh has more: `url` prints the URL of the running cluster (for
# `psql "$(scripts/pg.sh url)"`), `restart` and `status`. PostgreSQL is taken from PATH
# or /usr/lib/postgresql/*/bin, and installed as Debian's package when missing (root).
# `make pg-stop && rm -rf target/pg` throws the cluster away.

PG_SH := scripts/pg.sh

.PHONY: pg-start pg-stop pg-test

# The environment of a test command that runs its PostgreSQL half too.
WITH_PG = AGENT_BACKLOG_TEST_PG="$$(bash $(PG_SH) url)" \
	AGENT_BACKLOG_TEST_PG_CA="$${AGENT_BACKLOG_PG_DIR:-$(CURDIR)/target/pg}/server.crt"

pg-start:
	bash $(PG_SH) start

pg-stop:
	bash $(PG_SH) stop

pg-test:
	bash $(PG_SH) stop
	rm -rf target/pg
	bash $(PG_SH) start
