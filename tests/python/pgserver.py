"""The PostgreSQL server of the tests (SPEC §16), when there is one.

`make test` starts a private server (scripts/pg.sh) and names it in
AGENT_BACKLOG_TEST_PG. Each store a test opens there lives in a schema of its own,
so that tests start empty and run side by side; the whole test cluster is made
afresh by `make test`.
"""

from __future__ import annotations

import os
import uuid
from typing import Optional

URL: Optional[str] = os.environ.get("AGENT_BACKLOG_TEST_PG") or None


def fresh_url() -> str:
    """The URL of a new, empty store on the test server."""
    assert URL is not None, "AGENT_BACKLOG_TEST_PG is not set"
    sep = "&" if "?" in URL else "?"
    return f"{URL}{sep}options=-csearch_path%3Dt_{uuid.uuid4().hex[:16]}"
