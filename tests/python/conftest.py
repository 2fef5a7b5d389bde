"""Shared fixtures for the tests of the Python module."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

import agent_backlog

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "python"

TASK_KEYS = [
    "id",
    "title",
    "description",
    "priority",
    "status",
    "created",
    "started",
    "completed",
    "result",
    "blocker",
]
AGENT_TASK_KEYS = ["agent_id"] + TASK_KEYS
SUMMARY_KEYS = ["queued", "in_progress", "complete", "blocked", "total"]
TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "backlogs.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[agent_backlog.Store]:
    with agent_backlog.Store(db_path) as s:
        yield s


@pytest.fixture
def ctrl_c() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt during the test, as in an interactive Python. A
    process started in the background by a shell without job control (`make test &` in
    a script) inherits SIGINT ignored, and Python then installs no handler of its own."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def run_example(name: str, *args: str) -> list[str]:
    """The command line that runs examples/python/<name> with this interpreter."""
    return [sys.executable, str(EXAMPLES / name), *args]


def agent_backlog_bin() -> str:
    """The `agent-backlog` program (the cli/ crate): $AGENT_BACKLOG_BIN, as for
    examples/serve_demo.sh (`make test-python` builds target/debug/agent-backlog with
    `make cli-bin` and sets it), else the newer of target/release/ and target/debug/
    (under $CARGO_TARGET_DIR when set)."""
    given = os.environ.get("AGENT_BACKLOG_BIN")
    if given:
        return given
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    if not target.is_absolute():
        target = ROOT / target
    built = [p for p in (target / "release" / "agent-backlog", target / "debug" / "agent-backlog") if p.is_file()]
    if not built:
        pytest.fail("no agent-backlog program: build it (cargo build -p agent-backlog-cli) or set AGENT_BACKLOG_BIN")
    return str(max(built, key=lambda p: p.stat().st_mtime))


#: How long a server may take to start or to stop.
SERVER_TIMEOUT = 20.0


@contextlib.contextmanager
def serving(
    db: Path | str, *options: str, log: Optional[Path] = None
) -> Iterator[tuple[str, "subprocess.Popen[bytes]"]]:
    """`agent-backlog serve --port 0 OPTIONS...` on db (a file, its log beside it unless
    `log` names one; or a PostgreSQL URL and `log`): yields the server's base URL
    (http://127.0.0.1:PORT) and its process, and stops it (SIGTERM; a server that does
    not stop fails the test)."""
    if log is None:
        assert isinstance(db, Path), "a server on a URL needs a log file"
        log = db.with_name(db.name + ".serve.log")
    with log.open("w") as stderr:
        server = subprocess.Popen(
            [agent_backlog_bin(), "--db", str(db), "serve", "--host", "127.0.0.1", "--port", "0", *options],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT
        while not (found := re.search(r"listening on (http://\S+)", log.read_text())):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not start: {log.read_text()}")
            time.sleep(0.01)
        yield found.group(1), server
    finally:
        stop(server)


def stop(server: "subprocess.Popen[bytes]") -> None:
    """Stops a server with SIGTERM; fails the test if it does not stop in time."""
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(SERVER_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        pytest.fail("the server did not stop on SIGTERM")
