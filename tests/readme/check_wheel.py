"""Checks an installed agent_backlog wheel: it imports outside the source tree, works,
and carries its metadata. Run by `make test-wheel` with the version it must have."""

from __future__ import annotations

import sys
from importlib import metadata

import agent_backlog


def main() -> None:
    version = sys.argv[1]
    assert "site-packages" in agent_backlog.__file__, agent_backlog.__file__
    assert agent_backlog.__version__ == version, agent_backlog.__version__
    meta = metadata.metadata("agent-backlog")
    assert meta["Version"] == version, meta["Version"]
    assert meta["Requires-Python"] == ">=3.9", meta["Requires-Python"]
    assert meta["License-Expression"] == "MIT OR Apache-2.0" or "MIT" in (meta["License"] or ""), meta
    assert "backlog" in (meta["Summary"] or "").lower(), meta["Summary"]
    assert (meta["Description-Content-Type"] or "").startswith("text/markdown"), meta["Description-Content-Type"]
    files = [str(f) for f in metadata.files("agent-backlog") or []]
    assert any(f.endswith("py.typed") for f in files), files
    assert any(f.endswith(".pyi") for f in files), files
    with agent_backlog.Store(":memory:") as store:
        assert store.create_task("ops", "from the wheel")["id"] == "OPS-001"
    print(f"wheel ok: agent-backlog {version}, {len(files)} files")


if __name__ == "__main__":
    main()
