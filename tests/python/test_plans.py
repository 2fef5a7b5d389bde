"""Idempotent create and plans (SPEC §12-§13) through the Python module: racing
processes on one key, a waiting worker in another process woken by a completed
dependency, the Python-specific argument handling, cycles, and the ready queue
agreeing with the claims.

Nothing here asserts on wall-clock time beyond generous bounds that only a hang (or a
missed wake-up) would break.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import re
import subprocess
import sys
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any, Union

import pytest

import agent_backlog
from agent_backlog import ConflictError, NewTask, Store, ValidationError

TIMEOUT = 120.0  # seconds; only ever reached when something hangs
RACERS = 4
ROUNDS = 16

PLAN: list[NewTask] = [
    {"title": "Draft"},
    {"title": "Review", "depends_on": [0]},
    {"title": "Publish", "depends_on": [0, 1]},
]


# --- 1. processes racing one idempotency key ---------------------------------------


def _race_child(db: str, barrier: Barrier, out: Queue[Any]) -> None:
    """Runs in a spawned process: every round, all racers call at the same moment."""
    try:
        with Store(db, busy_timeout=60) as store:
            for r in range(ROUNDS):
                barrier.wait(TIMEOUT)
                one = store.create_task("ops", "Rotate keys", idempotency_key=f"race-{r}")
                barrier.wait(TIMEOUT)
                plan = store.create_tasks("plans", PLAN, idempotency_key=f"plan-{r}")
                out.put(("ok", r, one, plan))
    except BaseException as err:  # pragma: no cover - reported by the parent
        out.put(("error", repr(err), None, None))


def test_processes_racing_one_key_create_once(db_path: Path) -> None:
    with Store(db_path):
        pass  # the schema exists before the racers start
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(RACERS)
    out: Queue[Any] = ctx.Queue()
    procs = [ctx.Process(target=_race_child, args=(str(db_path), barrier, out)) for _ in range(RACERS)]
    for p in procs:
        p.start()
    results = [out.get(timeout=TIMEOUT) for _ in range(RACERS * ROUNDS)]
    for p in procs:
        p.join(TIMEOUT)
        assert p.exitcode == 0
    errors = [r for r in results if r[0] != "ok"]
    assert errors == []

    by_round: dict[int, list[tuple[Any, Any]]] = {}
    for _, r, one, plan in results:
        by_round.setdefault(r, []).append((one, plan))
    assert sorted(by_round) == list(range(ROUNDS))

    single_ids: list[str] = []
    plan_ids: list[str] = []
    with Store(db_path) as store:
        for r, got in sorted(by_round.items()):
            assert len(got) == RACERS
            ones = [one for one, _ in got]
            plans = [plan for _, plan in got]
            # Every racer got the same task, and the same plan of three.
            assert all(one == ones[0] for one in ones), (r, ones)
            assert all(plan == plans[0] for plan in plans), (r, plans)
            assert ones[0]["title"] == "Rotate keys"
            single_ids.append(ones[0]["id"])
            tasks = plans[0]["tasks"]
            assert [t["title"] for t in tasks] == ["Draft", "Review", "Publish"]
            ids = [t["id"] for t in tasks]
            plan_ids += ids
            # One set of edges, not one per racer.
            deps = store.get_dependencies("plans", ids[2])
            assert [d["id"] for d in deps["depends_on"]] == ids[:2]
            assert [d["id"] for d in store.get_dependencies("plans", ids[0])["dependents"]] == ids[1:]

        assert len(set(single_ids)) == ROUNDS
        assert store.summary("ops")["total"] == ROUNDS
        assert sorted(t["id"] for t in store.list_tasks("ops")["tasks"]) == sorted(single_ids)
        assert len(set(plan_ids)) == 3 * ROUNDS
        assert store.summary("plans")["total"] == 3 * ROUNDS
        assert sorted(t["id"] for t in store.list_tasks("plans")["tasks"]) == sorted(plan_ids)


# --- 2. a waiting worker in another process, woken by a completed dependency -------

WAITER = """
import json, sys, agent_backlog
with agent_backlog.Store(sys.argv[1]) as store:
    print("waiting", flush=True)
    claim = store.wait_for_task("ops", "w2", 20)
    print(json.dumps(claim), flush=True)
"""


def test_completing_the_last_dependency_wakes_a_waiter_in_another_process(db_path: Path) -> None:
    with Store(db_path) as store:
        plan = store.create_tasks("ops", [{"title": "a"}, {"title": "b", "depends_on": [0]}])
        a, b = (t["id"] for t in plan["tasks"])
        assert (a, b) == ("OPS-001", "OPS-002")
        claimed = store.claim_next("ops")
        assert claimed is not None and claimed["id"] == a

        child = subprocess.Popen(
            [sys.executable, "-c", WAITER, str(db_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "waiting"
            time.sleep(0.5)  # into its wait: nothing is ready yet
            assert child.poll() is None
            assert store.get_task("ops", b)["status"] == "queued"
            assert store.get_dependencies("ops", b)["ready"] is False

            started = time.monotonic()
            store.update_task("ops", a, status="complete", result="done")
            line = child.stdout.readline()
            elapsed = time.monotonic() - started
            _, err = child.communicate(timeout=TIMEOUT)
        finally:
            if child.poll() is None:  # pragma: no cover - only on a failure above
                child.kill()
                child.communicate()
        assert child.returncode == 0, err
        claim = json.loads(line)
        assert claim is not None, "the waiter timed out instead of taking the ready task"
        assert claim["task"]["id"] == b and claim["task"]["status"] == "in_progress"
        assert claim["lease"]["worker"] == "w2" and claim["lease"]["task_id"] == b
        # Far below the 20 s the wait would take had the commit not woken it.
        assert elapsed < 15, elapsed
        assert store.get_lease("ops", b) == claim["lease"]


# --- 3. the Python surface of depends_on and idempotency_key -----------------------


def test_depends_on_takes_a_list_or_a_tuple(store: Store) -> None:
    first = store.create_task("ops", "first")["id"]
    second = store.create_task("ops", "second")["id"]
    by_tuple = store.create_task("ops", "by tuple", depends_on=(first,))
    by_list = store.create_task("ops", "by list", depends_on=[first, second])
    assert [d["id"] for d in store.get_dependencies("ops", by_tuple["id"])["depends_on"]] == [first]
    assert [d["id"] for d in store.get_dependencies("ops", by_list["id"])["depends_on"]] == [first, second]
    # In a batch: IDs and indices, in a list or a tuple.
    items: list[Any] = [
        {"title": "x", "depends_on": (first,)},
        {"title": "y", "depends_on": [second, 0]},
    ]
    batch = store.create_tasks("ops", items)
    x, y = (t["id"] for t in batch["tasks"])
    assert [d["id"] for d in store.get_dependencies("ops", x)["depends_on"]] == [first]
    assert [d["id"] for d in store.get_dependencies("ops", y)["depends_on"]] == [second, x]
    assert [t["id"] for t in store.ready_tasks("ops")["tasks"]] == [first, second]


@pytest.mark.parametrize("bad", [5, ["MKT-001", 3.5], "OPS-001", [True], [b"OPS-001"], {"OPS-001": 1}])
def test_depends_on_of_a_wrong_type_is_refused_and_writes_nothing(store: Store, bad: Any) -> None:
    store.create_task("ops", "already here")
    before = store.summary("ops")
    with pytest.raises(ValidationError, match="depends_on") as info:
        store.create_task("ops", "never written", depends_on=bad)
    assert isinstance(info.value, ValueError)
    assert info.value.code == "invalid_argument"
    with pytest.raises(ValidationError, match="depends_on"):
        store.create_tasks("ops", [{"title": "fine"}, {"title": "never written", "depends_on": bad}])
    assert store.summary("ops") == before
    assert store.get_dependencies("ops", "OPS-001")["dependents"] == []


def test_an_index_outside_create_tasks_or_not_earlier_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match="depends_on"):
        store.create_task("ops", "x", depends_on=[0])  # type: ignore[list-item]
    for items in (
        [{"title": "x", "depends_on": [0]}],
        [{"title": "x", "depends_on": [1]}, {"title": "y"}],
        [{"title": "x"}, {"title": "y", "depends_on": [1]}],
        [{"title": "x"}, {"title": "y", "depends_on": [-1]}],
    ):
        with pytest.raises(ValidationError, match="depends_on"):
            store.create_tasks("ops", items)  # type: ignore[arg-type]
    with pytest.raises(agent_backlog.NotFoundError, match="OPS-404"):
        store.create_tasks("ops", [{"title": "x"}, {"title": "y", "depends_on": ["OPS-404"]}])
    assert store.summary("ops")["total"] == 0


@pytest.mark.parametrize("bad", [b"key", 5, 1.5, ["key"]])
def test_an_idempotency_key_of_a_wrong_type_is_refused(store: Store, bad: Any) -> None:
    with pytest.raises(ValidationError, match="idempotency_key") as info:
        store.create_task("ops", "never written", idempotency_key=bad)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValidationError, match="idempotency_key"):
        store.create_tasks("ops", [{"title": "never written"}], idempotency_key=bad)
    assert store.summary("ops")["total"] == 0


@pytest.mark.parametrize("bad", ["", "x" * 256, "tab\there", "caf\u00e9"])
def test_an_idempotency_key_out_of_range_is_refused(store: Store, bad: str) -> None:
    with pytest.raises(ValidationError, match="idempotency_key"):
        store.create_task("ops", "never written", idempotency_key=bad)
    assert store.summary("ops")["total"] == 0


def test_a_replay_returns_the_first_result_as_the_task_is_now(store: Store) -> None:
    first = store.create_task("ops", "  Rotate keys ", idempotency_key="k-1")
    assert first["title"] == "Rotate keys"
    # The same body after trimming and defaults is a replay: nothing new.
    for replay in (
        store.create_task("ops", "Rotate keys", idempotency_key="k-1"),
        store.create_task("ops", "Rotate keys", None, 5, idempotency_key="k-1"),
        store.create_task("ops", " Rotate keys", description=None, priority=None, idempotency_key="k-1"),
    ):
        assert replay == first
    assert store.summary("ops")["total"] == 1
    # As the task is now, not as it was.
    store.update_task("ops", first["id"], priority=2, description="changed since")
    store.claim_next("ops")
    now = store.get_task("ops", first["id"])
    assert now["status"] == "in_progress" and now["priority"] == 2
    assert store.create_task("ops", "Rotate keys", idempotency_key="k-1") == now
    assert store.summary("ops")["total"] == 1


def test_another_body_with_the_key_is_a_conflict_naming_the_key(store: Store) -> None:
    store.create_task("ops", "Rotate keys", priority=3, idempotency_key="deploy-42")
    for kwargs in ({"priority": 4}, {"description": "more"}, {"depends_on": ["OPS-001"]}):
        with pytest.raises(ConflictError, match="deploy-42") as info:
            store.create_task("ops", "Rotate keys", idempotency_key="deploy-42", **kwargs)
        assert info.value.code == "conflict"
        assert not isinstance(info.value, agent_backlog.LeaseLostError)
    with pytest.raises(ConflictError, match="deploy-42"):
        store.create_task("ops", "Another title", priority=3, idempotency_key="deploy-42")
    # A key used by create_task is not a key for a batch with the same task either.
    with pytest.raises(ConflictError, match="deploy-42"):
        store.create_tasks("ops", [{"title": "Rotate keys", "priority": 3}], idempotency_key="deploy-42")
    assert store.summary("ops")["total"] == 1


def test_keys_are_per_agent(store: Store) -> None:
    ops = store.create_task("ops", "Rotate keys", idempotency_key="shared")
    mkt = store.create_task("marketing-lead", "Rotate keys", idempotency_key="shared")
    assert (ops["id"], mkt["id"]) == ("OPS-001", "MKT-001")
    # Another body under the other agent's key is not a conflict either.
    other = store.create_task("sales", "Something else", idempotency_key="shared")
    assert other["id"] == "SLS-001"
    assert store.create_task("ops", "Rotate keys", idempotency_key="shared") == ops
    assert store.create_task("marketing-lead", "Rotate keys", idempotency_key="shared") == mkt
    assert store.query_tasks()["total"] == 3


def test_a_batch_replay_lists_what_is_left_and_deleting_all_frees_the_key(store: Store) -> None:
    first = store.create_tasks("ops", PLAN, idempotency_key="plan")
    ids = [t["id"] for t in first["tasks"]]
    assert ids == ["OPS-001", "OPS-002", "OPS-003"]
    assert store.create_tasks("ops", PLAN, idempotency_key="plan") == first

    store.delete_task("ops", ids[1])
    replay = store.create_tasks("ops", PLAN, idempotency_key="plan")
    assert [t["id"] for t in replay["tasks"]] == [ids[0], ids[2]]
    assert replay["total"] == 2
    assert replay["tasks"] == [store.get_task("ops", ids[0]), store.get_task("ops", ids[2])]
    store.delete_task("ops", ids[0])
    replay = store.create_tasks("ops", PLAN, idempotency_key="plan")
    assert replay == {"agent_id": "ops", "tasks": [store.get_task("ops", ids[2])], "total": 1}
    assert store.summary("ops")["total"] == 1

    store.delete_task("ops", ids[2])
    anew = store.create_tasks("ops", PLAN, idempotency_key="plan")
    assert [t["id"] for t in anew["tasks"]] == ["OPS-004", "OPS-005", "OPS-006"]
    assert [d["id"] for d in store.get_dependencies("ops", "OPS-006")["depends_on"]] == ["OPS-004", "OPS-005"]
    assert store.summary("ops")["total"] == 3
    # And the freed key now belongs to the new plan.
    assert store.create_tasks("ops", PLAN, idempotency_key="plan") == anew


def test_deleting_the_task_of_a_single_create_frees_its_key(store: Store) -> None:
    first = store.create_task("ops", "Rotate keys", idempotency_key="once")
    store.delete_task("ops", first["id"])
    again = store.create_task("ops", "Rotate keys", idempotency_key="once")
    assert again["id"] == "OPS-002"
    # Freed, the key may even carry another body.
    store.delete_task("ops", again["id"])
    assert store.create_task("ops", "Another", idempotency_key="once")["id"] == "OPS-003"


# --- 4. cycles ----------------------------------------------------------------------


CYCLE = re.compile(r"[A-Z][A-Z0-9]*-\d+(?: → [A-Z][A-Z0-9]*-\d+)+")


def graph(store: Store, agent: str) -> list[Any]:
    return [store.get_dependencies(agent, t["id"]) for t in store.list_tasks(agent)["tasks"]]


def test_a_cycle_is_refused_naming_it_and_nothing_changes(store: Store) -> None:
    # OPS-003 -> OPS-002 -> OPS-001 (each waits for the one before).
    store.create_tasks(
        "ops", [{"title": "a"}, {"title": "b", "depends_on": [0]}, {"title": "c", "depends_on": [1]}]
    )
    before = graph(store, "ops")
    listed = store.list_tasks("ops")
    with pytest.raises(ConflictError) as info:
        store.add_dependency("ops", "OPS-001", "OPS-003")
    assert info.value.code == "conflict"
    assert "OPS-001 → OPS-003 → OPS-002 → OPS-001" in str(info.value)
    assert graph(store, "ops") == before
    assert store.list_tasks("ops") == listed
    assert [t["id"] for t in store.ready_tasks("ops")["tasks"]] == ["OPS-001"]
    # A dependency on itself is a validation error, not a cycle.
    with pytest.raises(ValidationError):
        store.add_dependency("ops", "OPS-002", "OPS-002")
    assert graph(store, "ops") == before


def test_a_cycle_through_a_diamond_and_another_agent_names_a_real_cycle(store: Store) -> None:
    top = store.create_task("ops", "top")["id"]
    left = store.create_task("ops", "left", depends_on=[top])["id"]
    right = store.create_task("marketing-lead", "right", depends_on=[top])["id"]
    bottom = store.create_task("ops", "bottom", depends_on=[left, right])["id"]
    before = graph(store, "ops") + graph(store, "marketing-lead")
    with pytest.raises(ConflictError) as info:
        store.add_dependency("ops", top, bottom)
    message = str(info.value)
    found = CYCLE.search(message)
    assert found is not None, message
    # The path starts at the task, follows the new edge and existing ones, and closes.
    cycle = found.group(0).split(" → ")
    assert cycle[0] == cycle[-1] == top, message
    assert cycle[1] == bottom, message
    assert cycle[2] in (left, right) and len(cycle) == 4, message
    assert graph(store, "ops") + graph(store, "marketing-lead") == before


# --- 5. the ready queue agrees with the claims ------------------------------------


def test_ready_tasks_is_the_order_claims_take(store: Store) -> None:
    rng = random.Random(1312)
    count = 30
    items: list[NewTask] = []
    deps: list[set[int]] = []
    for n in range(count):
        picked = sorted(rng.sample(range(n), k=min(n, rng.choice([0, 0, 1, 1, 2, 3]))))
        depends_on: list[Union[str, int]] = list(picked)
        items.append({"title": f"step {n}", "priority": rng.randint(1, 10), "depends_on": depends_on})
        deps.append(set(picked))
    created = store.create_tasks("ops", items)["tasks"]
    ids = [t["id"] for t in created]
    index = {tid: n for n, tid in enumerate(ids)}
    priority = [t["priority"] for t in created]

    completed: set[int] = set()
    claimed_order: list[int] = []
    waiting_steps = 0  # steps where the most urgent queued task was not ready
    for step in range(count + 1):
        queued = [n for n in range(count) if n not in completed]
        expected = sorted((n for n in queued if deps[n] <= completed), key=lambda n: (priority[n], n))
        ready = store.ready_tasks("ops")
        assert [index[t["id"]] for t in ready["tasks"]] == expected
        assert ready["total"] == len(expected)
        if queued and min(queued, key=lambda n: (priority[n], n)) not in expected:
            waiting_steps += 1
        # Three ways to claim, one predicate.
        tid: Union[str, None]
        if step % 3 == 0:
            task = store.claim_next("ops")
            tid = None if task is None else task["id"]
        elif step % 3 == 1:
            claim = store.claim_lease("ops", "w")
            tid = None if claim is None else claim["task"]["id"]
        else:
            claim = store.wait_for_task("ops", "w", 0)
            tid = None if claim is None else claim["task"]["id"]
        if not expected:
            assert tid is None
            break
        assert tid == ready["tasks"][0]["id"]
        n = index[tid]
        assert deps[n] <= completed
        assert all(d["status"] == "complete" for d in store.get_dependencies("ops", tid)["depends_on"])
        store.update_task("ops", tid, status="complete", result=f"done {n}")
        completed.add(n)
        claimed_order.append(n)

    assert sorted(claimed_order) == list(range(count))
    assert store.summary("ops") == {
        "queued": 0, "in_progress": 0, "complete": count, "blocked": 0, "total": count,
    }
    assert store.ready_tasks("ops") == {"agent_id": "ops", "tasks": [], "total": 0}
    assert store.claim_next("ops") is None
    # The plan did make the claims wait on dependencies, not only on priority.
    assert waiting_steps > 0
    assert sum(len(d) for d in deps) > count // 2
