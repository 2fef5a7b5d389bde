#!/usr/bin/env bash
# A private, throwaway PostgreSQL cluster for agent-backlog's tests and benchmarks.
#
#   scripts/pg.sh start     create the cluster on first use, start it, wait until it
#                           answers, make sure database agent_backlog exists, then print
#                           its URL; when it is already running, only print the URL
#   scripts/pg.sh stop      stop it (fast shutdown); nothing to do when it is not running
#   scripts/pg.sh restart   stop it (pg_ctl stop -m fast), then start it again on the same
#                           port and data; used by a test that restarts the server mid-run
#   scripts/pg.sh url       print the URL of the running cluster; exit 1 when not running
#   scripts/pg.sh status    say whether it runs and where; exit 0 running, 3 not running
#   scripts/pg.sh bindir    print the folder of the PostgreSQL programs it runs (pg_dump
#                           and psql of the server's version are there on Debian)
#
# start, restart and url print only the URL on standard output, everything else on
# standard error, so that `url=$(scripts/pg.sh start)` works. The URL is
#
#   postgresql://agent_backlog@127.0.0.1:PORT/agent_backlog
#
# Everything lives under target/pg/ of the project (AGENT_BACKLOG_PG_DIR overrides it):
#
#   data/         the cluster (initdb), with our settings in data/agent_backlog.conf
#   sock/         the unix socket directory
#   log           the server's log (appended to at every start)
#   initdb.log    what initdb said
#   port          the port chosen at the first start, reused by every later start
#   lock          serializes concurrent start/stop/restart
#
# Nothing outside that folder is touched, except that Debian's `postgresql` package is
# installed when no PostgreSQL can be found and we are root with apt-get.
#
# Environment:
#   AGENT_BACKLOG_PG_DIR       where the cluster lives (default: <project>/target/pg)
#   AGENT_BACKLOG_PG_BINDIR    a folder holding initdb, pg_ctl and postgres, to use
#                              instead of searching for them
#   AGENT_BACKLOG_PG_TIMEOUT   seconds to wait for start and stop (default 30)
#
# The cluster is for tests only: no password (trust), listening on 127.0.0.1 only, and
# fsync=off (a crash of the machine, not of PostgreSQL, may lose data). Delete it with
# `scripts/pg.sh stop && rm -rf target/pg`.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# The role that initdb creates (-U, a superuser), and the database the URL names.
PG_ROLE=agent_backlog
PG_DB=agent_backlog
# Debian and Ubuntu keep each major version in /usr/lib/postgresql/N/bin, off PATH.
PG_LIB_ROOT=/usr/lib/postgresql
# The first port tried at the first start (the default 5432 may belong to a system
# cluster; 54329 is unlikely to be taken).
PG_FIRST_PORT=54329
PG_PORT_TRIES=200
PG_TIMEOUT=${AGENT_BACKLOG_PG_TIMEOUT:-30}
# The longest unix socket path the kernel takes (sun_path is 108 bytes with its NUL).
MAX_SOCKET_PATH=107

say() { printf 'pg.sh: %s\n' "$@" >&2; }
die() {
	say "error: $1"
	shift
	if (($# > 0)); then printf '    %s\n' "$@" >&2; fi
	exit 1
}

# --- where things are -----------------------------------------------------------------

# Sets PG_DIR (absolute) and the paths under it. Creates PG_DIR only when asked to
# ($1 = create), so that `url` and `status` leave no trace.
set_paths() {
	PG_DIR=${AGENT_BACKLOG_PG_DIR:-$ROOT/target/pg}
	if [[ ${1:-} == create && ! -d $PG_DIR ]]; then
		# 755 whatever the umask: as root, `nobody` must enter it (see check_reachable).
		mkdir -p "$PG_DIR"
		chmod 755 "$PG_DIR"
	fi
	if [[ -d $PG_DIR ]]; then
		PG_DIR=$(cd "$PG_DIR" && pwd -P)
	elif [[ $PG_DIR != /* ]]; then
		PG_DIR=$PWD/$PG_DIR
	fi
	DATA=$PG_DIR/data
	SOCK=$PG_DIR/sock
	LOG=$PG_DIR/log
	PORT_FILE=$PG_DIR/port
	# The account the server runs as. PostgreSQL refuses to run as root (initdb, pg_ctl
	# and postgres all check), and CI runs as root: then it runs as `nobody`, which
	# owns data/, sock/ and log. Anyone else runs it as themselves.
	if ((EUID == 0)); then
		PG_OS_USER=nobody
		id -u "$PG_OS_USER" >/dev/null 2>&1 ||
			die "we are root, and PostgreSQL must run as another user, but there is no user '$PG_OS_USER'"
	else
		PG_OS_USER=$(id -un)
	fi
}

has_cluster() { [[ -f $DATA/PG_VERSION ]]; }

# Runs a command as the server's account: as `nobody` when we are root, else as is.
# From inside PG_DIR, so that the command does not start in a folder `nobody` cannot
# enter (root's home, say), which initdb and postgres complain about.
run_as_pg() {
	# fd 9 is the lock (take_lock): a server started with it open would hold the lock
	# for as long as it runs.
	if ((EUID != 0)); then
		"$@" 9>&-
		return
	fi
	(
		exec 9>&-
		cd "$PG_DIR"
		if command -v runuser >/dev/null 2>&1; then
			exec runuser -u "$PG_OS_USER" -- "$@"
		else
			# su runs a command line through a shell: quote every word for bash.
			exec su -s /bin/bash "$PG_OS_USER" -c "$(printf '%q ' "$@")"
		fi
	)
}

# --- the PostgreSQL programs ----------------------------------------------------------

bindir_ok() { [[ -x $1/initdb && -x $1/pg_ctl && -x $1/postgres ]]; }

# Sets BINDIR to a folder with initdb, pg_ctl and postgres of one version: the one
# AGENT_BACKLOG_PG_BINDIR names, else pg_ctl's on PATH (the folder it links to first,
# where Debian also keeps psql and pg_isready of the same version), else the highest
# version under /usr/lib/postgresql/. Returns 1 when there is none.
find_bindir() {
	local pg_ctl dir dirs
	if [[ -n ${AGENT_BACKLOG_PG_BINDIR:-} ]]; then
		bindir_ok "$AGENT_BACKLOG_PG_BINDIR" ||
			die "AGENT_BACKLOG_PG_BINDIR=$AGENT_BACKLOG_PG_BINDIR has no initdb, pg_ctl and postgres"
		BINDIR=$AGENT_BACKLOG_PG_BINDIR
		return 0
	fi
	if pg_ctl=$(command -v pg_ctl 2>/dev/null); then
		for dir in "$(dirname "$(readlink -f "$pg_ctl")")" "$(dirname "$pg_ctl")"; do
			if bindir_ok "$dir"; then
				BINDIR=$dir
				return 0
			fi
		done
	fi
	# An unmatched glob stays as it is and fails bindir_ok.
	mapfile -t dirs < <(printf '%s\n' "$PG_LIB_ROOT"/*/bin | sort -rV)
	for dir in "${dirs[@]}"; do
		if bindir_ok "$dir"; then
			BINDIR=$dir
			return 0
		fi
	done
	return 1
}

# Debian's server package (it brings the client too). Installing it may create and try
# to start Debian's own cluster "main" on port 5432; ours is separate and unaffected.
install_postgresql() {
	if ((EUID != 0)) || ! command -v apt-get >/dev/null 2>&1; then
		return 1
	fi
	say "PostgreSQL not found: installing Debian's postgresql package (apt-get)"
	local install=(apt-get install -y -q --no-install-recommends postgresql)
	# The package lists may be missing or stale on a fresh machine: update and retry.
	DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2 ||
		{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2; }
}

# Sets INITDB, PG_CTL, PSQL and PG_ISREADY (empty when missing: psql is used instead).
# With $1 = install, installs PostgreSQL when it cannot be found (see above).
find_programs() {
	if ! find_bindir; then
		if [[ ${1:-} == install ]] && install_postgresql && find_bindir; then
			:
		else
			die "PostgreSQL not found: no initdb, pg_ctl and postgres on PATH nor in $PG_LIB_ROOT/*/bin" \
				"install it (Debian/Ubuntu: apt-get install postgresql), or set AGENT_BACKLOG_PG_BINDIR"
		fi
	fi
	INITDB=$BINDIR/initdb
	PG_CTL=$BINDIR/pg_ctl
	PSQL=$BINDIR/psql
	[[ -x $PSQL ]] || PSQL=$(command -v psql 2>/dev/null) ||
		die "psql not found (in $BINDIR nor on PATH); install the PostgreSQL client"
	PG_ISREADY=$BINDIR/pg_isready
	[[ -x $PG_ISREADY ]] || PG_ISREADY=$(command -v pg_isready 2>/dev/null) || PG_ISREADY=
}

# The major version of the programs, as data/PG_VERSION spells it: 15, or 9.6 before 10.
programs_major() {
	local version
	version=$("$PG_CTL" --version) # "pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
	version=${version#*) }
	[[ $version =~ ^([0-9]+)\.?([0-9]*) ]] || die "cannot read the version of $PG_CTL: $version"
	if ((BASH_REMATCH[1] >= 10)); then
		printf '%s\n' "${BASH_REMATCH[1]}"
	else
		printf '%s.%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
	fi
}

# --- state of the cluster -------------------------------------------------------------

# The port of the running server, from line 4 of postmaster.pid (root reads it too,
# although data/ is nobody's and mode 0700).
running_port() { sed -n 4p "$DATA/postmaster.pid"; }
running_pid() { sed -n 1p "$DATA/postmaster.pid"; }

# 0 when the process postmaster.pid names has died but is not reaped yet (a zombie).
# A server killed outright (kill -9, the OOM killer) leaves postmaster.pid behind; its
# parent is PID 1 (pg_ctl has exited), and some container inits reap such orphans only
# much later. Until then pg_ctl takes it for a running server, and postgres refuses to
# start ("lock file postmaster.pid already exists"), since both only ask `kill -0`.
postmaster_zombie() {
	local pid stat
	pid=$(running_pid 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] && read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
	stat=${stat##*) } # after "pid (comm) ": the state
	[[ ${stat%% *} == Z ]]
}

# pg_ctl status: 0 when a postmaster runs on data/ (3 when not, 4 without data/).
is_running() {
	has_cluster && run_as_pg "$PG_CTL" status -D "$DATA" >/dev/null 2>&1 && ! postmaster_zombie
}

# Before a start: wait for a zombie server to be reaped (see postmaster_zombie).
wait_for_reaping() {
	postmaster_zombie || return 0
	local pid deadline=$((SECONDS + PG_TIMEOUT))
	pid=$(running_pid)
	say "the previous server (pid $pid) died and is not reaped yet (a zombie): waiting"
	while postmaster_zombie; do
		((SECONDS < deadline)) ||
			die "pid $pid, the previous server, is still a zombie after ${PG_TIMEOUT}s (its parent does not reap it)" \
				"PostgreSQL will not start while it exists; try again later"
		sleep 0.5
	done
}

url_for() { printf 'postgresql://%s@127.0.0.1:%s/%s\n' "$PG_ROLE" "$1" "$PG_DB"; }

# --- the port -------------------------------------------------------------------------

# 0 when a server could listen on 127.0.0.1:$1 now. With python3: bind it (with
# SO_REUSEADDR, as PostgreSQL does, so that connections of a previous run still in
# TIME_WAIT do not count). Without: nobody answers a connection there.
port_free() {
	if command -v python3 >/dev/null 2>&1; then
		python3 - "$1" 2>/dev/null <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
EOF
	else
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 1
		fi
	fi
}

# Prints the port for this start: the one in the port file; at the first start, the
# first free one from PG_FIRST_PORT up, then recorded. Not an ephemeral port from
# binding port 0: the kernel hands those to outgoing connections too, so one could be
# taken while the cluster is stopped; a fixed range above them stays ours.
choose_port() {
	local port
	if [[ -s $PORT_FILE ]]; then
		port=$(<"$PORT_FILE")
		[[ $port =~ ^[0-9]+$ ]] || die "$PORT_FILE does not hold a port: '$port'" \
			"delete it to choose a new one"
		port_free "$port" || die "port $port (recorded in $PORT_FILE) is in use by another program" \
			"stop that program, or delete $PORT_FILE to choose a new port"
	else
		for ((port = PG_FIRST_PORT; port < PG_FIRST_PORT + PG_PORT_TRIES; port++)); do
			port_free "$port" && break
		done
		((port < PG_FIRST_PORT + PG_PORT_TRIES)) ||
			die "no free port on 127.0.0.1 in $PG_FIRST_PORT..$((PG_FIRST_PORT + PG_PORT_TRIES - 1))"
		printf '%s\n' "$port" >"$PORT_FILE.tmp"
		mv "$PORT_FILE.tmp" "$PORT_FILE"
		say "chose port $port (recorded in $PORT_FILE)"
	fi
	printf '%s\n' "$port"
}

# --- preparing the folder -------------------------------------------------------------

# As root: `nobody` must be able to enter every folder from / down to PG_DIR, or initdb
# and postgres fail with a bare "Permission denied". Checked here, once, with a clear
# message naming the folder (a checkout under /root, mode 0700, is the usual case).
check_reachable() {
	((EUID == 0)) || return 0
	run_as_pg test -x "$PG_DIR" && return 0
	local dir=/ part
	local -a parts
	IFS=/ read -ra parts <<<"${PG_DIR#/}"
	for part in "" "${parts[@]}"; do
		[[ -n $part ]] && dir=${dir%/}/$part
		if ! run_as_pg test -x "$dir"; then
			die "PostgreSQL refuses to run as root, so this script runs it as user '$PG_OS_USER'," \
				"who cannot enter $dir ($(stat -c '%A, owner %U' "$dir"))." \
				"Either let it in:  chmod o+x $dir" \
				"or put the cluster elsewhere:  AGENT_BACKLOG_PG_DIR=/tmp/agent-backlog-pg $0 start"
		fi
	done
	die "user '$PG_OS_USER' cannot enter $PG_DIR"
}

# Makes sure the server's account owns data/, sock/ and log. PG_DIR itself stays the
# caller's: nothing else in it is chowned (it may be a folder the caller chose).
prepare_dir() {
	if ((EUID == 0)); then
		mkdir -p "$SOCK"
		touch "$LOG"
		chown "$PG_OS_USER": "$SOCK" "$LOG"
		if [[ -d $DATA && $(stat -c %U "$DATA") != "$PG_OS_USER" ]]; then
			say "data/ was made by $(stat -c %U "$DATA"): giving it to $PG_OS_USER"
			chown -R "$PG_OS_USER": "$DATA"
		fi
		check_reachable
	else
		local path
		for path in "$DATA" "$SOCK" "$LOG"; do
			if [[ -e $path && ! -O $path ]]; then
				die "$path belongs to $(stat -c %U "$path"), not to you ($PG_OS_USER): made by a run as root?" \
					"start it as root, or remove the cluster:  sudo rm -rf $PG_DIR"
			fi
		done
		mkdir -p "$SOCK"
		touch "$LOG"
	fi
}

# initdb, the first time: role agent_backlog (superuser), no passwords, UTF-8, C locale
# (the same sort order on every machine). --no-sync: the cluster is throwaway.
init_cluster() {
	if [[ -d $DATA ]] && [[ -n $(ls -A "$DATA") ]]; then
		die "$DATA is neither empty nor a cluster (no PG_VERSION): an interrupted initdb?" \
			"remove it:  rm -rf $DATA"
	fi
	say "creating the cluster in $DATA (log: $PG_DIR/initdb.log)"
	# As root, `nobody` cannot create data/ in PG_DIR (root's): create it, give it away.
	mkdir -p "$DATA"
	chmod 700 "$DATA"
	if ((EUID == 0)); then chown "$PG_OS_USER": "$DATA"; fi
	if ! run_as_pg "$INITDB" -D "$DATA" -U "$PG_ROLE" --auth=trust -E UTF8 --locale=C \
		--no-sync >"$PG_DIR/initdb.log" 2>&1; then
		cat "$PG_DIR/initdb.log" >&2
		die "initdb failed (output above, also in $PG_DIR/initdb.log)"
	fi
	# TLS, for the tests of sslmode=require: a self-signed certificate for 127.0.0.1,
	# whose copy in $PG_DIR/server.crt the tests trust (the URL's sslrootcert).
	if command -v openssl >/dev/null; then
		if openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=127.0.0.1" \
			-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
			-addext "basicConstraints=critical,CA:FALSE" \
			-addext "extendedKeyUsage=serverAuth" \
			-keyout "$DATA/server.key" -out "$DATA/server.crt" >>"$PG_DIR/initdb.log" 2>&1; then
			chmod 600 "$DATA/server.key"
			cp "$DATA/server.crt" "$PG_DIR/server.crt"
			if ((EUID == 0)); then chown "$PG_OS_USER": "$DATA/server.key" "$DATA/server.crt"; fi
		else
			say "warning: openssl could not make a certificate: the server runs without TLS"
		fi
	else
		say "warning: no openssl: the server runs without TLS (its tests are skipped)"
	fi
	# Our settings live in a file of their own, rewritten at every start (see
	# write_settings); postgresql.conf only includes it, last, so that it wins.
	printf '\n# Added by scripts/pg.sh\ninclude = '\''agent_backlog.conf'\''\n' >>"$DATA/postgresql.conf"
}

# A string for postgresql.conf: in single quotes, a quote doubled.
conf_string() { printf "'%s'" "${1//\'/\'\'}"; }

# data/agent_backlog.conf, rewritten at every start, so that the port file and the
# folder's place (the socket path) are the truth even when they change.
write_settings() {
	local port=$1 sockets=$SOCK
	if ((${#SOCK} + ${#port} + 10 > MAX_SOCKET_PATH)); then
		say "warning: $SOCK/.s.PGSQL.$port is too long for a unix socket: TCP only"
		sockets=
	fi
	cat >"$DATA/agent_backlog.conf" <<EOF
# Written by scripts/pg.sh at every start: edits here are lost.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = $(conf_string "$sockets")
# The tests open many connections at once (pools, racing workers).
max_connections = 300
shared_buffers = 128MB
# A throwaway cluster: no flush to disk. A crash of PostgreSQL (or a restart, fast or
# immediate) loses nothing that was committed, since commits still reach the kernel;
# only a crash of the machine would. synchronous_commit stays on (the default), so a
# commit that returned is in the WAL, which the restart tests rely on.
fsync = off
full_page_writes = off
# TLS when initdb time made a certificate (server.crt, server.key in data/).
ssl = $(if [[ -f $DATA/server.crt ]]; then echo on; else echo off; fi)
EOF
	if ((EUID == 0)); then chown "$PG_OS_USER": "$DATA/agent_backlog.conf"; fi
}

# --- talking to the server ------------------------------------------------------------

# psql -c SQL on database $2 of the server on port $1, over TCP like the URL. -X: no
# ~/.psqlrc; -tA: bare values.
psql_on() {
	"$PSQL" -X -q -tA -v ON_ERROR_STOP=1 \
		-d "host=127.0.0.1 port=$1 user=$PG_ROLE dbname=$2 connect_timeout=5 sslmode=disable" \
		-c "$3"
}

# 0 when the server on port $1 accepts connections.
answers() {
	if [[ -n $PG_ISREADY ]]; then
		"$PG_ISREADY" -q -h 127.0.0.1 -p "$1" -U "$PG_ROLE" -d postgres -t 5
	else
		psql_on "$1" postgres 'select 1' >/dev/null 2>&1
	fi
}

# Remembers where the log ends, so that fail_with_log shows only what this run added.
mark_log() { LOG_MARK=$(stat -c %s "$LOG" 2>/dev/null || echo 0); }

fail_with_log() {
	say "error: $1" "${@:2}" "what $LOG says since (last 40 lines at most):"
	tail -c +$((${LOG_MARK:-0} + 1)) "$LOG" | tail -n 40 | sed 's/^/    /' >&2
	exit 1
}

# --- the commands ---------------------------------------------------------------------

do_start() {
	if is_running; then
		url_for "$(running_port)"
		return 0
	fi
	if has_cluster; then
		local made want
		made=$(<"$DATA/PG_VERSION")
		want=$(programs_major)
		[[ $made == "$want" ]] || die "$DATA was made by PostgreSQL $made, but $BINDIR is PostgreSQL $want" \
			"remove the cluster (rm -rf $PG_DIR), or set AGENT_BACKLOG_PG_BINDIR to PostgreSQL $made's programs"
	fi
	wait_for_reaping
	prepare_dir
	local port
	port=$(choose_port)
	has_cluster || init_cluster
	write_settings "$port"

	say "starting PostgreSQL ($BINDIR) on 127.0.0.1:$port, log: $LOG"
	# -w: pg_ctl waits until the server says it is ready, and notices when it exits
	# early (a bad setting, a port taken meanwhile). The server gets /dev/null as input
	# and the log as output, so it holds no pipe of ours: `$(pg.sh start)` returns.
	mark_log
	run_as_pg "$PG_CTL" start -D "$DATA" -l "$LOG" -w -t "$PG_TIMEOUT" >&2 ||
		fail_with_log "PostgreSQL did not start, or was not ready within ${PG_TIMEOUT}s" \
			"(if it is still starting, \`$0 stop\` stops it)"

	# Then the way the tests will come in: TCP on 127.0.0.1.
	local deadline=$((SECONDS + PG_TIMEOUT))
	until answers "$port"; do
		((SECONDS < deadline)) ||
			fail_with_log "PostgreSQL does not answer on 127.0.0.1:$port after ${PG_TIMEOUT}s"
		sleep 0.2
	done

	if [[ $(psql_on "$port" postgres "select 1 from pg_database where datname = '$PG_DB'") != 1 ]]; then
		say "creating database $PG_DB"
		psql_on "$port" postgres "create database $PG_DB owner $PG_ROLE" >/dev/null
	fi
	url_for "$port"
}

do_stop() {
	if ! is_running; then
		say "not running"
		return 0
	fi
	say "stopping PostgreSQL (pid $(running_pid), port $(running_port))"
	# fast: roll back open transactions and disconnect clients, then a clean shutdown.
	mark_log
	run_as_pg "$PG_CTL" stop -D "$DATA" -m fast -w -t "$PG_TIMEOUT" >&2 ||
		fail_with_log "PostgreSQL did not stop within ${PG_TIMEOUT}s"
}

# start, stop and restart hold $PG_DIR/lock, so that two of them at once (parallel
# make jobs, two test runs) neither initdb twice nor start two servers.
take_lock() {
	command -v flock >/dev/null 2>&1 || return 0
	touch "$PG_DIR/lock" 2>/dev/null ||
		die "cannot write $PG_DIR/lock: $PG_DIR belongs to $(stat -c %U "$PG_DIR")" \
			"run as that user (root runs the server as nobody), or remove the cluster:  sudo rm -rf $PG_DIR"
	exec 9>"$PG_DIR/lock"
	flock -w $((PG_TIMEOUT * 4)) 9 || die "another scripts/pg.sh still holds $PG_DIR/lock"
}

# The commands, from the comment at the top of this file.
usage() {
	awk 'NR > 1 && /^# start, restart and url/ { exit }
		NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}" >&2
	exit "$1"
}

main() {
	(($# == 1)) || usage 2
	[[ $PG_TIMEOUT =~ ^[1-9][0-9]*$ ]] ||
		die "AGENT_BACKLOG_PG_TIMEOUT must be a number of seconds, not '$PG_TIMEOUT'"
	case $1 in
	start)
		set_paths create
		take_lock
		find_programs install
		do_start
		;;
	restart)
		set_paths create
		take_lock
		find_programs install
		do_stop
		do_start
		;;
	stop)
		set_paths
		if ! has_cluster; then
			say "no cluster in $PG_DIR: nothing to stop"
			return 0
		fi
		take_lock
		find_programs
		do_stop
		;;
	url)
		set_paths
		has_cluster || die "not running (no cluster yet): scripts/pg.sh start"
		find_programs
		is_running || die "not running: scripts/pg.sh start"
		url_for "$(running_port)"
		;;
	bindir)
		find_programs
		printf '%s\n' "$BINDIR"
		;;
	status)
		set_paths
		if ! has_cluster; then
			printf 'no cluster yet (scripts/pg.sh start creates one in %s)\n' "$PG_DIR"
			return 3
		fi
		find_programs
		if is_running; then
			printf '%s\n' "running: $(url_for "$(running_port)")" \
				"  pid $(running_pid) as $PG_OS_USER, PostgreSQL $(programs_major) from $BINDIR" \
				"  data: $DATA" "  log: $LOG"
		else
			printf 'stopped (data: %s, port: %s)\n' "$DATA" "$(cat "$PORT_FILE" 2>/dev/null || echo none)"
			return 3
		fi
		;;
	-h | --help | help) usage 0 ;;
	*) usage 2 ;;
	esac
}

# Run when executed; when sourced (to test a function), only define.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
