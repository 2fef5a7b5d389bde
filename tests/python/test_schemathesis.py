"""Schemathesis, the property-based OpenAPI tester, against a live `agent-backlog serve`.

It loads the server's own GET /openapi.json and runs every check (`--checks all`) in
every phase: the schema's examples, coverage (boundary and invalid values), fuzzing
(positive and negative data) and the stateful phase, which chains calls through the
links it infers from what the server answers (the `Location` of a 201, such as
/api/backlogs/alpha/ALP-001 after POST /api/backlogs/alpha). The seed is fixed and the
examples per operation bounded, so a run takes well under a minute on two cores.

A failure prints schemathesis's report: per finding the check, the operation, a curl
command that reproduces it and the server's answer. The run's working directory is the
test's tmp_path, so its caches (.schemathesis/ with the crash files for `st replay`,
.hypothesis/) stay there and no report file is written into the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import serving

SEED = 20261203
MAX_EXAMPLES = 30
# A hard stop for a run that hangs; a normal run takes 20 to 35 s on two cores.
RUN_TIMEOUT = 240.0

# schemathesis.toml. [checks] turns on every check, as `--checks all` does (with its 10 s
# for max_response_time); it is said here rather than on the command line because a check
# named there overrides the file's per-operation settings, and so would undo the
# task_history exception. Each exception has a reason in the API's contract or in how
# schemathesis sends requests; none hides a finding.
CONFIG = """\
[checks]
enabled = true
max_response_time = 10

# Long polls: a schema-valid wait (up to 60 s) only makes the request time out.
[parameters]
"query.wait_seconds" = 0
"body.wait_seconds" = 0

# The coverage phase does not apply body overrides: it would send wait_seconds 59 and 60.
# With the override, fuzzing and the stateful phase send POST .../leases as wait_for_task
# with wait_seconds 0, which claims as claim_lease does; a body without wait_seconds
# (claim_lease itself) is left to the server tests and the conformance cases.
[[operations]]
include-operation-id = "claim_lease"
phases.coverage.enabled = false

# The event stream ends only when the server stops: schemathesis reads it until the
# request timeout or this many events, then checks what it read. A read of a stream
# with no event takes the whole timeout (the headers come at once), so the timeout is
# short and the operation gets fewer examples: this halves the run.
[[operations]]
include-operation-id = "events_stream"
request-timeout = 0.5
max-stream-events = 3
generation.max-examples = 10

# A task's history outlives the task (the operation's description says so), so it is
# still 200 after DELETE of the task.
[[operations]]
include-operation-id = "task_history"
checks.use_after_free.enabled = false
"""


def schemathesis_command(config: Path, schema_url: str) -> list[str]:
    return [
        sys.executable, "-m", "schemathesis.cli",
        "--config-file", str(config),
        "--no-color",
        "run", schema_url,
        "--phases", "examples,coverage,fuzzing,stateful",
        "--mode", "all",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "2",
        "--request-timeout", "10",
        "--generation-database", "none",
        "--output-sanitize", "false",
        "--continue-on-failure",
    ]


def environment() -> dict[str, str]:
    """schemathesis's environment: the hooks of schemathesis_hooks.py (what the
    document's JSON Schema cannot say about the contract), found beside this file."""
    here = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONUTF8": "1", "PYTHONPATH": path, "SCHEMATHESIS_HOOKS": "schemathesis_hooks"}


def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    with serving(tmp_path / "b.db") as (base, _):
        config = tmp_path / "schemathesis.toml"
        config.write_text(CONFIG)
        command = schemathesis_command(config, base + "/openapi.json")
        output = tmp_path / "schemathesis.out"
        started = time.monotonic()
        status: int | None
        with output.open("w", encoding="utf-8") as out:
            try:
                status = subprocess.run(
                    command, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, env=environment(),
                    timeout=RUN_TIMEOUT,
                ).returncode
            except subprocess.TimeoutExpired:
                status = None
        elapsed = time.monotonic() - started
        report = output.read_text(encoding="utf-8", errors="replace")
        if status != 0:
            what = "was stopped (RUN_TIMEOUT)" if status is None else f"exited {status}"
            pytest.fail(
                f"schemathesis {what} after {elapsed:.1f} s (its files: {tmp_path})\n"
                f"$ {' '.join(command)}\n{report}",
                pytrace=False,
            )
