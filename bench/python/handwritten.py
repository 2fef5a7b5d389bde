"""A careful hand-written version of the backlog API on Python's stdlib sqlite3.

This is the baseline of the benchmark: what a user who knows SQLite would write by
hand for the same operations, with the same durability (WAL, synchronous=NORMAL),
one transaction per call, a per-agent counter for IDs, the index a claim and a
listing need, statements cached by the sqlite3 module, and plain dicts as results.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Optional

COLUMNS = (
    "id", "title", "description", "priority", "status",
    "created", "started", "completed", "result", "blocker",
)
SELECT = ", ".join(COLUMNS)

SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY, prefix TEXT NOT NULL UNIQUE, next_number INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, agent_id TEXT NOT NULL,
    title TEXT NOT NULL, description TEXT, priority INTEGER NOT NULL,
    status TEXT NOT NULL, created TEXT NOT NULL, started TEXT, completed TEXT,
    result TEXT, blocker TEXT
);
CREATE INDEX IF NOT EXISTS tasks_by_agent ON tasks (agent_id, status, priority);
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class HandwrittenBacklog:
    """create_task, create_tasks, claim_next, complete, list_tasks, summary."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                  cached_statements=64)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute("PRAGMA busy_timeout = 5000")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def _next_numbers(self, agent_id: str, count: int) -> tuple[str, int]:
        row = self.db.execute(
            "UPDATE agents SET next_number = next_number + ? WHERE agent_id = ? "
            "RETURNING prefix, next_number - ?", (count, agent_id, count)).fetchone()
        if row is None:
            base = "".join(c for c in agent_id if c.isalpha())[:3].upper() or "AGT"
            n = 1
            while True:
                prefix = base if n == 1 else f"{base}{n}"
                if self.db.execute("INSERT INTO agents VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                                   (agent_id, prefix, 1 + count)).rowcount == 1:
                    return prefix, 1
                n += 1
        return row[0], row[1]

    @staticmethod
    def _check(title: Any, priority: Any) -> None:
        if not isinstance(title, str) or not 1 <= len(title.strip()) <= 500:
            raise ValueError("title must be 1 to 500 characters")
        if type(priority) is not int or not 1 <= priority <= 10:
            raise ValueError("priority must be an integer from 1 to 10")

    def _insert(self, agent_id: str, number: int, prefix: str, title: str,
                description: Optional[str], priority: int, now: str) -> dict[str, Any]:
        task_id = f"{prefix}-{number:03d}"
        self.db.execute(
            "INSERT INTO tasks (id, agent_id, title, description, priority, status, created) "
            "VALUES (?, ?, ?, ?, ?, 'queued', ?)",
            (task_id, agent_id, title.strip(), description, priority, now))
        return {"id": task_id, "title": title.strip(), "description": description,
                "priority": priority, "status": "queued", "created": now, "started": None,
                "completed": None, "result": None, "blocker": None}

    def create_task(self, agent_id: str, title: str, description: Optional[str] = None,
                    priority: int = 5) -> dict[str, Any]:
        self._check(title, priority)
        now = _now()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            prefix, number = self._next_numbers(agent_id, 1)
            task = self._insert(agent_id, number, prefix, title, description, priority, now)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return task

    def create_tasks(self, agent_id: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
        for t in tasks:
            self._check(t["title"], t.get("priority", 5))
        now = _now()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            prefix, first = self._next_numbers(agent_id, len(tasks))
            made = [self._insert(agent_id, first + i, prefix, t["title"], t.get("description"),
                                 t.get("priority", 5), now) for i, t in enumerate(tasks)]
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return {"agent_id": agent_id, "tasks": made, "total": len(made)}

    def claim_next(self, agent_id: str) -> Optional[dict[str, Any]]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute(
                "UPDATE tasks SET status = 'in_progress', started = ? WHERE seq = ("
                " SELECT seq FROM tasks WHERE agent_id = ? AND status = 'queued'"
                " ORDER BY priority, seq LIMIT 1) RETURNING " + SELECT,
                (_now(), agent_id)).fetchone()
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return None if row is None else dict(zip(COLUMNS, row))

    def complete(self, agent_id: str, task_id: str, result: str) -> dict[str, Any]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute(
                "UPDATE tasks SET status = 'complete', completed = ?, result = ? "
                "WHERE id = ? AND agent_id = ? AND status = 'in_progress' RETURNING " + SELECT,
                (_now(), result, task_id, agent_id)).fetchone()
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        if row is None:
            raise LookupError(f"{task_id} is not in progress in the backlog of {agent_id}")
        return dict(zip(COLUMNS, row))

    def list_tasks(self, agent_id: str, status: Optional[str] = None,
                   limit: int = -1, offset: int = 0, with_total: bool = True) -> dict[str, Any]:
        """The page and, unless `with_total` is false, the number of matches (which
        costs a count over the agent's index range)."""
        total = None
        if status is None:
            rows = self.db.execute(
                "SELECT " + SELECT + " FROM tasks WHERE agent_id = ? "
                "ORDER BY priority, seq LIMIT ? OFFSET ?", (agent_id, limit, offset)).fetchall()
            if with_total:
                total = self.db.execute("SELECT count(*) FROM tasks WHERE agent_id = ?",
                                        (agent_id,)).fetchone()[0]
        else:
            rows = self.db.execute(
                "SELECT " + SELECT + " FROM tasks WHERE agent_id = ? AND status = ? "
                "ORDER BY priority, seq LIMIT ? OFFSET ?",
                (agent_id, status, limit, offset)).fetchall()
            if with_total:
                total = self.db.execute(
                    "SELECT count(*) FROM tasks WHERE agent_id = ? AND status = ?",
                    (agent_id, status)).fetchone()[0]
        return {"agent_id": agent_id, "tasks": [dict(zip(COLUMNS, r)) for r in rows],
                "total": total}

    def summary(self, agent_id: str) -> dict[str, int]:
        counts = {"queued": 0, "in_progress": 0, "complete": 0, "blocked": 0}
        for status, n in self.db.execute(
                "SELECT status, count(*) FROM tasks WHERE agent_id = ? GROUP BY status",
                (agent_id,)):
            counts[status] = n
        return {**counts, "total": sum(counts.values())}
