"""The layers stay apart: the Python extension carries the core, not the C ABI."""

from __future__ import annotations

import ctypes

import agent_backlog
from agent_backlog import _native


def test_the_extension_exports_no_c_function() -> None:
    lib = ctypes.CDLL(_native.__file__)
    for name in ("backlog_open", "backlog_call", "backlog_close", "backlog_string_free"):
        assert not hasattr(lib, name), name
    # The module itself is there and works.
    assert agent_backlog.__version__
    with agent_backlog.Store(":memory:") as store:
        assert store.create_task("ops", "t")["id"] == "OPS-001"


def test_help_shows_each_signature_once() -> None:
    import pydoc

    text = pydoc.plain(pydoc.render_doc(agent_backlog.Store))
    for method in ("list_tasks", "create_task", "update_task", "claim_next", "close"):
        # The signature line pydoc draws, and no second one from the docstring.
        assert text.count(f"|  {method}(self, /") == 1, (method, text)
        assert text.count(f"{method}(agent_id") == 0, (method, text)
    assert text.count("Store(path_or_url, *, busy_timeout=None, durability=None, actor=None)") == 1, text
    # Every method still says what it does.
    for method in ("get_task", "summary", "set_prefix"):
        assert getattr(agent_backlog.Store, method).__doc__.strip(), method
