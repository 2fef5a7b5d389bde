"""Every Rust, Python and C example of README.md runs as written, twice.

The blocks are read from the README itself, so an example can never drift from what
the library does. The Rust example is built as the README says: a new project of its
own beside a clone of this repository (here, a link to it), with the README's
`[dependencies]`. The C example is compiled against include/ and the shared library
in target/release/, the Python example run with this interpreter (which has the
module, built by `make python-dev`).

Run by `make test-readme` (part of `make test`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


def blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


def run_twice(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    outputs = []
    for _ in range(2):
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    # The same output but for the clock (two runs may straddle a second).
    first, second = (TIMESTAMP.sub("<time>", out) for out in outputs)
    assert first == second, "a second run printed something else"
    return outputs[0]


def test_the_readme_has_its_examples() -> None:
    # The tour of the API, then the leased worker loop, in Rust and Python; C once.
    assert len(blocks("rust")) == 2
    assert len(blocks("toml")) == 1
    assert len(blocks("python")) == 8
    assert len(blocks("c")) == 1


def test_the_rust_example_in_a_project_of_its_own(tmp_path: Path) -> None:
    cargo = shutil.which("cargo")
    assert cargo, "cargo is needed"
    (tmp_path / "agent-backlog").symlink_to(ROOT)
    project = tmp_path / "my-agent"
    (project / "src").mkdir(parents=True)
    (project / "Cargo.toml").write_text(
        '[package]\nname = "my-agent"\nversion = "0.1.0"\nedition = "2021"\n\n' + blocks("toml")[0]
    )
    (project / "src" / "main.rs").write_text(blocks("rust")[0])
    env = dict(os.environ, CARGO_TARGET_DIR=str(ROOT / "target" / "readme"))
    out = run_twice([cargo, "run", "--quiet"], project, env)
    assert '"id":"MKT-001"' in out and '"status":"complete"' in out, out
    # The worker loop, in the same project (and build directory).
    (project / "src" / "main.rs").write_text(blocks("rust")[1])
    out = run_twice([cargo, "run", "--quiet"], project, env)
    assert out == '{"queued":0,"in_progress":0,"complete":2,"blocked":0,"total":2}\n', out


def test_the_python_example(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(blocks("python")[0])
    out = run_twice([sys.executable, str(script)], tmp_path)
    assert "'complete': 2, 'blocked': 1" in out, out
    assert "invalid_transition" in out and "not_found" in out, out


def test_the_python_worker_loop(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(blocks("python")[1])
    out = run_twice([sys.executable, str(script)], tmp_path)
    assert out == "{'queued': 0, 'in_progress': 0, 'complete': 2, 'blocked': 0, 'total': 2}\n", out


def test_the_python_plan(tmp_path: Path) -> None:
    script = tmp_path / "plan.py"
    script.write_text(blocks("python")[2])
    out = run_twice([sys.executable, str(script)], tmp_path)
    expected = "False ['MKT-002', 'MKT-003']\n['MKT-001', 'MKT-003', 'MKT-002', 'MKT-004', 'MKT-005']\nconflict\n"
    assert out == expected, out


def test_the_python_feed(tmp_path: Path) -> None:
    script = tmp_path / "feed.py"
    script.write_text(blocks("python")[3])
    out = run_twice([sys.executable, str(script)], tmp_path)
    assert out.splitlines() == [
        "('claimed', 'writer-7', {'worker': 'writer-7', 'fence': 1})",
        "('finished', 'writer-7', {'to': 'complete'})",
        "[('created', 'planner'), ('claimed', 'writer-7'), ('finished', 'writer-7'), ('deleted', 'planner')]",
        "{'agent_id': 'marketing-lead', 'prefix': 'MKT', 'queued': 0, 'in_progress': 0, 'complete': 0, 'blocked': 0, 'total': 0}",
    ], out


def test_the_mcp_configuration_starts_a_server(tmp_path: Path) -> None:
    # The coding assistants' entry: the command and arguments as written, the database
    # moved to tmp_path; the official MCP client lists the bound server's tools.
    import json

    import anyio
    from mcp import Client, StdioServerParameters

    (config,) = [b for b in blocks("json") if "mcpServers" in b]
    (entry,) = json.loads(config)["mcpServers"].values()
    args = [str(tmp_path / "backlogs.db") if a.endswith("backlogs.db") else a for a in entry["args"]]
    params = StdioServerParameters(command=str(cli_binary()), args=args)

    async def tools() -> list[str]:
        async with Client(params) as client:
            listed = (await client.list_tools()).tools
            assert all("agent_id" not in (t.input_schema.get("properties") or {}) for t in listed)
            return [t.name for t in listed]

    assert anyio.run(tools) == ["list_tasks", "get_task", "create_task", "update_task",
                                "claim_lease", "finish_lease", "summary"]


def test_the_agent_framework_fragment_connects(tmp_path: Path) -> None:
    # The OpenAI Agents SDK fragment, run inside a coroutine with the binary of this
    # build and a database in tmp_path, listing the tools the agent would see.
    fragment = blocks("python")[4]
    fragment = fragment.replace('"command": "agent-backlog"', f'"command": {str(cli_binary())!r}')
    fragment = fragment.replace('"backlogs.db"', repr(str(tmp_path / "backlogs.db")))
    body = fragment + "    print(sorted(t.name for t in await backlog.list_tools()))\n"
    script = tmp_path / "framework.py"
    script.write_text(
        "import asyncio\n\nasync def main() -> None:\n"
        + "".join("    " + line + "\n" for line in body.splitlines())
        + "\nasyncio.run(main())\n"
    )
    env = dict(os.environ, OPENAI_API_KEY="unused", OPENAI_AGENTS_DISABLE_TRACING="1")
    out = run_twice([sys.executable, str(script)], tmp_path, env)
    assert "'claim_lease'" in out and "'summary'" in out, out


def test_the_python_tools(tmp_path: Path) -> None:
    script = tmp_path / "tools.py"
    script.write_text(blocks("python")[5])
    out = run_twice([sys.executable, str(script)], tmp_path)
    assert out.splitlines() == [
        "('list_tasks', 'get_task', 'create_task', 'update_task', 'claim_lease', 'finish_lease', 'summary')",
        "complete Posted",
        "not_found",
    ], out


def test_the_python_async_workers(tmp_path: Path) -> None:
    script = tmp_path / "async_workers.py"
    script.write_text(blocks("python")[6])
    out = run_twice([sys.executable, str(script)], tmp_path)
    assert out == "{'queued': 0, 'in_progress': 0, 'complete': 6, 'blocked': 0, 'total': 6}\n", out


def test_the_tool_table_of_docs_mcp_is_the_tools() -> None:
    from agent_backlog import tools

    text = (ROOT / "docs" / "MCP.md").read_text(encoding="utf-8")
    documented = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1] in ("read", "write", "destructive"):
            name, kind, idempotent, core, args = cells
            documented[name] = (kind, idempotent == "yes", core == "yes", args)
    actual = {}
    for tool in tools.TOOLS:
        hints = tool["annotations"]
        kind = "read" if hints["readOnlyHint"] else "destructive" if hints["destructiveHint"] else "write"
        args = ", ".join(tool["parameters"]["properties"])
        actual[tool["name"]] = (kind, hints["idempotentHint"], tool["name"] in tools.CORE, args)
    assert documented == actual


def cli_binary() -> Path:
    """The command line of this build (`make test-readme` builds it)."""
    binary = Path(os.environ.get("AGENT_BACKLOG_BIN", ROOT / "target" / "debug" / "agent-backlog"))
    assert binary.exists(), f"{binary} is missing: build it with cargo build -p agent-backlog-cli"
    return binary


def test_the_c_example(tmp_path: Path) -> None:
    cc = shutil.which(os.environ.get("CC", "cc"))
    assert cc, "a C compiler is needed"
    lib = ROOT / "target" / "release"
    if not (lib / "libagent_backlog.so").exists():
        pytest.fail("build the C library first: make c-lib")
    source = tmp_path / "example.c"
    source.write_text(blocks("c")[0])
    program = tmp_path / "example"
    subprocess.run(
        [cc, "-std=c11", "-Wall", "-Wextra", "-pedantic", "-Werror", f"-I{ROOT / 'include'}",
         str(source), f"-L{lib}", "-lagent_backlog", f"-Wl,-rpath,{lib}", "-o", str(program)],
        check=True,
    )
    out = run_twice([str(program)], tmp_path)
    assert out.startswith('0 {"id":"MKT-001"'), out
    assert '0 {"queued":0,"in_progress":0,"complete":1,"blocked":0,"total":1}' in out, out


def test_the_same_program_on_a_file_and_on_postgresql(tmp_path: Path) -> None:
    """The README's two backends, one string apart: the URL is the test server's."""
    server = os.environ.get("AGENT_BACKLOG_TEST_PG")
    if not server:
        pytest.skip("AGENT_BACKLOG_TEST_PG is not set (make test sets it)")
    url = f"{server}{'&' if '?' in server else '?'}options=-csearch_path%3Dreadme_{os.getpid()}"
    block = blocks("python")[7]
    readme_url = "postgresql://agents@db.internal/backlog"
    assert readme_url in block
    script = tmp_path / "two_backends.py"
    script.write_text(block.replace(readme_url, url))
    out = run_twice([sys.executable, str(script)], tmp_path)
    assert out == f"backlog.db Rotate keys in_progress\n{url} Rotate keys in_progress\n", out
