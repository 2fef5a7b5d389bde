"""History and the change feed (SPEC §14) through the Python module: exactly which
events every write appends, who the actor is, processes writing one file while a
follower reads the feed, paging, filtering and waiting on ``events``, ``task_history``
after a delete, ``prune_events``, and ``list_agents``.

Expiry is real time (one-second leases and one sleep past them); nothing else asserts
how long anything took beyond generous bounds that only a hang or a missed wake-up
would break.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import threading
import time
from collections import Counter
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any, Optional

import pytest

from agent_backlog import ConflictError, Event, NotFoundError, Store, TransitionError, ValidationError

TIMEOUT = 120.0  # seconds; only ever reached when something hangs

EVENT_KEYS = ["seq", "at", "agent_id", "task_id", "type", "actor", "data"]
AGENT_KEYS = ["agent_id", "prefix", "queued", "in_progress", "complete", "blocked", "total"]
AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

# (agent_id, task_id, type, actor, data): an event without its seq and time.
Expected = tuple[str, Optional[str], str, Optional[str], dict[str, Any]]


def outlive_lease() -> None:
    time.sleep(1.2)


def shape(e: Event) -> Expected:
    return (e["agent_id"], e["task_id"], e["type"], e["actor"], e["data"])


def whole_feed(store: Store, agent_id: Optional[str] = None) -> list[Event]:
    """Every event, read page by page."""
    events: list[Event] = []
    after = 0
    while True:
        page = store.events(after=after, limit=1000, agent_id=agent_id)
        if not page["events"]:
            assert page["next"] == after
            return events
        events += page["events"]
        after = page["next"]


class Feed:
    """Reads the change feed on from where it last stopped."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.last = 0

    def new(self) -> list[Event]:
        page = self.store.events(after=self.last, limit=1000)
        events = page["events"]
        seqs = [e["seq"] for e in events]
        # One writer: the new events follow the last one without a gap.
        assert seqs == list(range(self.last + 1, self.last + 1 + len(events)))
        assert page["next"] == (seqs[-1] if seqs else self.last)
        for e in events:
            assert list(e) == EVENT_KEYS
            assert AT.match(e["at"]), e["at"]
        self.last = page["next"]
        return events

    def expect(self, *expected: Expected) -> None:
        assert [shape(e) for e in self.new()] == list(expected)


# --- 1. every write appends exactly its events -------------------------------------


def test_every_write_appends_exactly_its_events(db_path: Path) -> None:
    P = "planner"
    with Store(db_path, actor=P) as store:
        feed = Feed(store)
        feed.expect()

        # create_task, without and with depends_on; no prefix_set for a derived prefix.
        a = store.create_task("ops", "Draft", priority=3)["id"]
        feed.expect(("ops", a, "created", P, {"title": "Draft", "priority": 3}))
        b = store.create_task("ops", "  Review ", depends_on=[a])["id"]
        feed.expect(
            ("ops", b, "created", P, {"title": "Review", "priority": 5}),
            ("ops", b, "dependency_added", P, {"depends_on": a}),
        )
        # create_tasks: each item's created, then one dependency_added per dependency.
        batch = store.create_tasks("ops", [
            {"title": "Publish", "priority": 2, "depends_on": [a]},
            {"title": "Announce", "depends_on": [0, b]},
            {"title": "Archive", "priority": 9},
        ])
        c, d, e = (t["id"] for t in batch["tasks"])
        feed.expect(
            ("ops", c, "created", P, {"title": "Publish", "priority": 2}),
            ("ops", c, "dependency_added", P, {"depends_on": a}),
            ("ops", d, "created", P, {"title": "Announce", "priority": 5}),
            ("ops", d, "dependency_added", P, {"depends_on": c}),
            ("ops", d, "dependency_added", P, {"depends_on": b}),
            ("ops", e, "created", P, {"title": "Archive", "priority": 9}),
        )
        m = store.create_task("marketing-lead", "Post", depends_on=[c])["id"]
        feed.expect(
            ("marketing-lead", m, "created", P, {"title": "Post", "priority": 5}),
            ("marketing-lead", m, "dependency_added", P, {"depends_on": c}),
        )
        # An idempotent replay writes nothing.
        k = store.create_task("ops", "Keyed", priority=10, idempotency_key="k-1")
        feed.expect(("ops", k["id"], "created", P, {"title": "Keyed", "priority": 10}))
        assert store.create_task("ops", "Keyed", priority=10, idempotency_key="k-1") == k
        feed.expect()
        store.delete_task("ops", k["id"])
        feed.expect(("ops", k["id"], "deleted", P, {}))

        # update_task: changed lists the fields in the task's key order, whatever the
        # order of the keywords; from/to only when the status moved.
        store.update_task("ops", a, priority=1, description="longer", title="Draft v2")
        feed.expect(("ops", a, "updated", P, {"changed": ["title", "description", "priority"]}))
        store.update_task("ops", a, blocker="waiting on legal", status="blocked")
        feed.expect(("ops", a, "updated", P,
                     {"changed": ["status", "blocker"], "from": "queued", "to": "blocked"}))
        # Nothing changed: no event.
        store.update_task("ops", a, title="Draft v2", priority=1, description="longer")
        feed.expect()
        store.update_task("ops", a)
        feed.expect()
        # A refused write: no event.
        with pytest.raises(TransitionError):
            store.update_task("ops", e, status="complete")
        feed.expect()
        # Leaving blocked clears the blocker, which is a change too.
        store.update_task("ops", a, status="queued")
        feed.expect(("ops", a, "updated", P,
                     {"changed": ["status", "blocker"], "from": "blocked", "to": "queued"}))

        # claim_next: no worker, no fence.
        claimed = store.claim_next("ops")
        assert claimed is not None and claimed["id"] == a
        feed.expect(("ops", a, "claimed", P, {"worker": None, "fence": None}))
        store.update_task("ops", a, status="complete", result="drafted")
        feed.expect(("ops", a, "updated", P,
                     {"changed": ["status", "result"], "from": "in_progress", "to": "complete"}))

        # claim_lease, a renewal (no event), finish_lease: the worker is the actor.
        lease1 = store.claim_lease("ops", "w1")
        assert lease1 is not None and lease1["task"]["id"] == c
        feed.expect(("ops", c, "claimed", "w1", {"worker": "w1", "fence": 1}))
        store.renew_lease(lease1["lease"]["token"], lease_seconds=120)
        feed.expect()
        store.finish_lease(lease1["lease"]["token"], "complete", result="published")
        feed.expect(("ops", c, "finished", "w1", {"to": "complete"}))

        # finish_and_claim: the finish, then the next claim, both by the worker.
        lease2 = store.claim_lease("ops", "w2")
        assert lease2 is not None and lease2["task"]["id"] == b
        feed.expect(("ops", b, "claimed", "w2", {"worker": "w2", "fence": 1}))
        step = store.finish_and_claim(lease2["lease"]["token"], "complete", result="reviewed",
                                      lease_seconds=1)
        assert step["next"] is not None and step["next"]["task"]["id"] == d
        feed.expect(
            ("ops", b, "finished", "w2", {"to": "complete"}),
            ("ops", d, "claimed", "w2", {"worker": "w2", "fence": 1}),
        )

        # Two leases that expire: one taken over by a claim, one reaped.
        short = store.claim_lease("marketing-lead", "w3", lease_seconds=1, max_attempts=1)
        assert short is not None and short["task"]["id"] == m
        feed.expect(("marketing-lead", m, "claimed", "w3", {"worker": "w3", "fence": 1}))
        outlive_lease()
        lease4 = store.claim_lease("ops", "w4")
        assert lease4 is not None and lease4["task"]["id"] == d
        assert lease4["lease"]["attempt"] == 2 and lease4["lease"]["fence"] > 1
        # The expiry found by w4's claim is w4's doing; the reaped one the store's actor's.
        feed.expect(
            ("ops", d, "lease_expired", "w4", {"worker": "w2", "attempt": 1, "to": "queued"}),
            ("ops", d, "claimed", "w4", {"worker": "w4", "fence": lease4["lease"]["fence"]}),
        )
        assert store.reap_expired("marketing-lead") == {"requeued": [], "blocked": [m]}
        feed.expect(("marketing-lead", m, "lease_expired", P,
                     {"worker": "w3", "attempt": 1, "to": "blocked"}))
        assert store.reap_expired() == {"requeued": [], "blocked": []}
        feed.expect()

        # wait_for_task is a leased claim by its worker.
        waited = store.wait_for_task("ops", "w5", 0)
        assert waited is not None and waited["task"]["id"] == e
        feed.expect(("ops", e, "claimed", "w5", {"worker": "w5", "fence": 1}))
        store.finish_lease(lease4["lease"]["token"], "queued")
        feed.expect(("ops", d, "finished", "w4", {"to": "queued"}))

        # Dependencies: only real changes are events.
        store.add_dependency("ops", d, e)
        feed.expect(("ops", d, "dependency_added", P, {"depends_on": e}))
        store.add_dependency("ops", d, e)
        feed.expect()
        with pytest.raises(ConflictError):
            store.add_dependency("ops", e, d)
        feed.expect()
        store.remove_dependency("ops", d, e)
        feed.expect(("ops", d, "dependency_removed", P, {"depends_on": e}))
        store.remove_dependency("ops", d, e)
        feed.expect()

        store.delete_task("ops", d)
        feed.expect(("ops", d, "deleted", P, {}))

        # set_prefix on a fresh agent; a refused prefix change writes nothing.
        store.set_prefix("fresh-agent", "FRS")
        feed.expect(("fresh-agent", None, "prefix_set", P, {"prefix": "FRS"}))
        with pytest.raises(ConflictError):
            store.set_prefix("ops", "XYZ")
        feed.expect()
        assert store.create_task("fresh-agent", "first")["id"] == "FRS-001"
        feed.expect(("fresh-agent", "FRS-001", "created", P, {"title": "first", "priority": 5}))

        # Every read agrees with the feed: history per task, the feed per agent.
        everything = whole_feed(store)
        assert [ev["seq"] for ev in everything] == list(range(1, feed.last + 1))
        for tid in (a, b, c, d, e, k["id"]):
            history = store.task_history("ops", tid)
            assert history == {"task_id": tid, "events": [ev for ev in everything if ev["task_id"] == tid]}
        assert [ev["type"] for ev in store.task_history("ops", d)["events"]] == [
            "created", "dependency_added", "dependency_added", "claimed", "lease_expired",
            "claimed", "finished", "dependency_added", "dependency_removed", "deleted",
        ]
        for agent in ("ops", "marketing-lead", "fresh-agent"):
            assert whole_feed(store, agent) == [ev for ev in everything if ev["agent_id"] == agent]


# --- 2. the actor ---------------------------------------------------------------------


def test_the_actor_is_the_lease_worker_else_the_store_option_else_none(db_path: Path) -> None:
    with Store(db_path, actor="alice") as alice, Store(db_path) as anonymous:
        alice.create_task("ops", "a")
        anonymous.create_task("ops", "b")
        lease = anonymous.claim_lease("ops", "bob")
        assert lease is not None
        # Finished through alice's store, but the lease is bob's.
        alice.finish_lease(lease["lease"]["token"], "complete", result="done")
        anonymous.update_task("ops", "OPS-002", priority=1)
        alice.claim_next("ops")
        alice.delete_task("ops", "OPS-001")
        assert [(ev["type"], ev["task_id"], ev["actor"]) for ev in whole_feed(anonymous)] == [
            ("created", "OPS-001", "alice"),
            ("created", "OPS-002", None),
            ("claimed", "OPS-001", "bob"),
            ("finished", "OPS-001", "bob"),
            ("updated", "OPS-002", None),
            ("claimed", "OPS-002", "alice"),
            ("deleted", "OPS-001", "alice"),
        ]
    longest = "r" * 128
    with Store(db_path, actor=longest) as store:
        store.create_task("ops", "c")
        assert whole_feed(store)[-1]["actor"] == longest


@pytest.mark.parametrize("bad", ["", "\n", "tab\there", "r" * 129, 5])
def test_a_bad_actor_is_refused(db_path: Path, bad: Any) -> None:
    with pytest.raises(ValidationError, match="actor") as info:
        Store(db_path, actor=bad)
    assert info.value.code == "invalid_argument"
    with Store(db_path) as store:
        assert store.events() == {"events": [], "next": 0}


# --- 3. processes writing one file while a follower reads the feed ----------------

WRITERS = 4
ROUNDS = 100


def _writer(db: str, n: int, barrier: Barrier, out: Queue[Any]) -> None:
    """Runs in a spawned process: creates, claims and finishes ROUNDS tasks, claiming
    with claim_next and with a lease in turn; reports how many events of each type it
    wrote."""
    try:
        name = f"writer-{n}"
        did: Counter[str] = Counter()
        with Store(db, busy_timeout=60, actor=name) as store:
            barrier.wait(TIMEOUT)
            for r in range(ROUNDS):
                store.create_task("ops", f"{name} #{r}", priority=r % 10 + 1)
                did["created"] += 1
                # This process has created one more task than it claimed, so one is queued.
                if r % 2 == 0:
                    task = store.claim_next("ops")
                    assert task is not None
                    did["claimed"] += 1
                    store.update_task("ops", task["id"], status="complete", result=name)
                    did["updated"] += 1
                else:
                    claim = store.claim_lease("ops", name)
                    assert claim is not None
                    did["claimed"] += 1
                    store.finish_lease(claim["lease"]["token"], "complete", result=name)
                    did["finished"] += 1
        out.put(("ok", name, dict(did)))
    except BaseException as err:  # pragma: no cover - reported by the parent
        out.put(("error", repr(err), None))


def test_processes_writing_at_once_make_one_gapless_feed(db_path: Path) -> None:
    with Store(db_path) as store:  # the schema exists before the writers start
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(WRITERS)
        out: Queue[Any] = ctx.Queue()
        procs = [ctx.Process(target=_writer, args=(str(db_path), n, barrier, out)) for n in range(WRITERS)]
        for p in procs:
            p.start()
        total = WRITERS * ROUNDS * 3

        # Follow the feed while they write, in small pages, waiting when it is dry.
        followed: list[Event] = []
        after = 0
        deadline = time.monotonic() + TIMEOUT
        while len(followed) < total and time.monotonic() < deadline:
            page = store.events(after=after, limit=50, wait_seconds=10)
            if page["events"]:
                assert page["next"] == page["events"][-1]["seq"]
            else:
                assert page["next"] == after
            followed += page["events"]
            after = page["next"]

        results = [out.get(timeout=TIMEOUT) for _ in range(WRITERS)]
        for p in procs:
            p.join(TIMEOUT)
            assert p.exitcode == 0
        assert [r for r in results if r[0] != "ok"] == []

        feed = whole_feed(store)
        seqs = [ev["seq"] for ev in feed]
        # Strictly increasing, consecutive from the first, no duplicate.
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert len(set(seqs)) == len(seqs) == total
        # Every writer's events are all there, by its name.
        by_actor: dict[Optional[str], Counter[str]] = {}
        for ev in feed:
            by_actor.setdefault(ev["actor"], Counter())[ev["type"]] += 1
        assert {name: dict(counts) for name, counts in by_actor.items()} == {
            name: did for _, name, did in results
        }
        for _, _, did in results:
            assert did == {"created": ROUNDS, "claimed": ROUNDS,
                           "updated": ROUNDS // 2, "finished": ROUNDS // 2}
        # Each task's events are in the order its life went: commit order is seq order.
        per_task: dict[Optional[str], list[str]] = {}
        for ev in feed:
            per_task.setdefault(ev["task_id"], []).append(ev["type"])
        assert len(per_task) == WRITERS * ROUNDS
        for types in per_task.values():
            assert types in (["created", "claimed", "updated"], ["created", "claimed", "finished"])
        # The follower saw every event exactly once, in order, while they were written.
        assert followed == feed
        assert store.events(after=after) == {"events": [], "next": after}


# --- 4. events: paging, filtering, waiting ----------------------------------------------


def test_events_pages_with_limit_and_next_and_filters_by_agent(store: Store) -> None:
    for n in range(7):
        store.create_task("ops" if n % 3 else "mkt", f"t{n}")
    pages: list[list[int]] = []
    after = 0
    while True:
        page = store.events(after=after, limit=3)
        if not page["events"]:
            assert page == {"events": [], "next": after}
            break
        pages.append([ev["seq"] for ev in page["events"]])
        assert page["next"] == pages[-1][-1]
        after = page["next"]
    assert pages == [[1, 2, 3], [4, 5, 6], [7]]
    assert [ev["seq"] for ev in store.events()["events"]] == list(range(1, 8))
    assert store.events(after=5)["next"] == 7
    assert store.events(after=1000) == {"events": [], "next": 1000}

    # Filtered: next is the last matching event's seq, skipping the others.
    mkt = store.events(agent_id="mkt")
    assert [ev["seq"] for ev in mkt["events"]] == [1, 4, 7]
    assert all(ev["agent_id"] == "mkt" for ev in mkt["events"])
    first = store.events(agent_id="ops", limit=2)
    assert [ev["seq"] for ev in first["events"]] == [2, 3] and first["next"] == 3
    rest = store.events(agent_id="ops", after=3)
    assert [ev["seq"] for ev in rest["events"]] == [5, 6] and rest["next"] == 6
    assert store.events(agent_id="nobody") == {"events": [], "next": 0}
    assert store.events(agent_id="mkt", after=7) == {"events": [], "next": 7}


def test_a_wait_wakes_on_a_write_from_another_thread(db_path: Path) -> None:
    with Store(db_path) as store:
        store.create_task("ops", "before")
        after = store.events()["next"]

        def produce() -> None:
            time.sleep(0.2)
            with Store(db_path, actor="other") as other:
                other.create_task("mkt", "not for the follower")
                time.sleep(0.3)
                other.create_task("ops", "wake up")

        t = threading.Thread(target=produce)
        t.start()
        started = time.monotonic()
        page = store.events(after=after, agent_id="ops", wait_seconds=60)
        elapsed = time.monotonic() - started
        t.join(TIMEOUT)
        # Not ended by the other agent's write: it returned the ops event, and far
        # below the 60 s it would otherwise wait.
        assert [shape(ev) for ev in page["events"]] == [
            ("ops", "OPS-002", "created", "other", {"title": "wake up", "priority": 5}),
        ]
        assert page["next"] == page["events"][0]["seq"] == after + 2
        assert elapsed < 30, elapsed


def test_a_wait_that_times_out_returns_an_empty_page(store: Store) -> None:
    store.create_task("ops", "only")
    started = time.monotonic()
    assert store.events(after=1, wait_seconds=0.3) == {"events": [], "next": 1}
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 30, elapsed
    # With something to return, no wait.
    assert [ev["seq"] for ev in store.events(after=0, wait_seconds=60)["events"]] == [1]


@pytest.mark.usefixtures("ctrl_c")
def test_ctrl_c_interrupts_a_wait_for_events(db_path: Path) -> None:
    with Store(db_path) as store:
        timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            store.events(after=0, wait_seconds=60)
        elapsed = time.monotonic() - started
        timer.join()
        # Far below the 60 s it would otherwise wait.
        assert elapsed < 10, elapsed
        # The store is still usable.
        store.create_task("ops", "after the interrupt")
        assert len(store.events()["events"]) == 1


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": True}, "limit"),
        ({"after": -1}, "after"),
        ({"after": "1"}, "after"),
        ({"wait_seconds": 61}, "wait_seconds"),
        ({"wait_seconds": -1}, "wait_seconds"),
        ({"wait_seconds": float("nan")}, "wait_seconds"),
        ({"agent_id": "-x"}, "agent_id"),
        ({"agent_id": ""}, "agent_id"),
    ],
)
def test_bad_events_arguments_are_refused(store: Store, kwargs: dict[str, Any], named: str) -> None:
    store.create_task("ops", "x")
    with pytest.raises(ValidationError, match=named) as info:
        store.events(**kwargs)
    assert info.value.code == "invalid_argument"


def test_the_bounds_of_events_arguments_are_accepted(store: Store) -> None:
    store.create_task("ops", "x")
    assert store.events(limit=1000)["next"] == 1
    assert store.events(limit=1)["next"] == 1
    assert store.events(wait_seconds=60)["next"] == 1  # something to return: no wait
    assert store.events(after=1, wait_seconds=0) == {"events": [], "next": 1}


# --- 5. task_history and prune_events ---------------------------------------------------


def test_task_history_outlives_the_task(store: Store) -> None:
    a = store.create_task("ops", "a")["id"]
    b = store.create_task("ops", "b", depends_on=[a])["id"]
    store.update_task("ops", a, status="in_progress")
    store.delete_task("ops", a)
    history = store.task_history("ops", a)
    assert list(history) == ["task_id", "events"]
    assert history["task_id"] == a
    assert [(ev["type"], ev["data"]) for ev in history["events"]] == [
        ("created", {"title": "a", "priority": 5}),
        ("updated", {"changed": ["status"], "from": "queued", "to": "in_progress"}),
        ("deleted", {}),
    ]
    seqs = [ev["seq"] for ev in history["events"]]
    assert seqs == sorted(seqs)
    # b's dependency on a is b's event, not a's.
    assert [ev["type"] for ev in store.task_history("ops", b)["events"]] == ["created", "dependency_added"]

    with pytest.raises(NotFoundError):
        store.task_history("ops", "OPS-999")
    with pytest.raises(NotFoundError):
        store.task_history("mkt", a)  # the events are ops's
    with pytest.raises(ValidationError):
        store.task_history("ops", "nope")


def test_prune_events_keeps_the_newest_and_seqs_are_never_reused(db_path: Path) -> None:
    with Store(db_path) as store:
        assert store.prune_events(10) == {"pruned": 0}
        for n in range(5):
            store.create_task("ops", f"t{n}")  # seqs 1..5
        assert store.prune_events(0) == {"pruned": 0}
        assert store.prune_events(1) == {"pruned": 0}
        assert store.prune_events(3) == {"pruned": 2}
        assert [ev["seq"] for ev in whole_feed(store)] == [3, 4, 5]
        assert store.prune_events(3) == {"pruned": 0}
        # Past the end: all but the newest.
        assert store.prune_events(1_000_000) == {"pruned": 2}
        assert [ev["seq"] for ev in whole_feed(store)] == [5]
        assert store.prune_events(1_000_000) == {"pruned": 0}
        with pytest.raises(ValidationError, match="before"):
            store.prune_events(-1)

        # A task that still exists but lost its events has an empty history, and so has
        # one that was deleted and lost them all (it had events: SPEC §14); a task that
        # never was is not found.
        kept = store.task_history("ops", "OPS-001")
        assert (kept["task_id"], kept["events"]) == ("OPS-001", [])
        store.delete_task("ops", "OPS-002")  # seq 6
        store.create_task("ops", "t5")  # seq 7
        assert [ev["seq"] for ev in whole_feed(store)] == [5, 6, 7]
        assert store.prune_events(7) == {"pruned": 2}
        gone = store.task_history("ops", "OPS-002")
        assert (gone["task_id"], gone["events"]) == ("OPS-002", [])
        with pytest.raises(NotFoundError):
            store.task_history("ops", "OPS-099")
        assert [ev["seq"] for ev in store.task_history("ops", "OPS-006")["events"]] == [7]

    # Reopened, the next event still follows the newest ever.
    with Store(db_path) as store:
        store.create_task("ops", "after reopening")
        assert [ev["seq"] for ev in whole_feed(store)] == [7, 8]
        assert store.prune_events(9) == {"pruned": 1}
        store.delete_task("ops", "OPS-007")
        assert [ev["seq"] for ev in whole_feed(store)] == [8, 9]


# --- 6. list_agents ------------------------------------------------------------------------


def test_list_agents_lists_every_agent_with_its_counts(store: Store) -> None:
    assert store.list_agents() == {"agents": [], "total": 0}
    store.create_tasks("ops", [{"title": f"o{n}"} for n in range(5)])
    store.claim_next("ops")
    store.update_task("ops", "OPS-002", status="blocked", blocker="why")
    store.update_task("ops", "OPS-001", status="complete", result="done")
    store.create_task("marketing-lead", "m")
    store.set_prefix("zeta", "ZZ")  # no task
    store.set_prefix("beta", "BET")
    store.create_task("beta", "b")
    store.create_task("alpha", "gone")
    store.delete_task("alpha", "ALP-001")  # its prefix stays fixed

    listed = store.list_agents()
    ids = ["alpha", "beta", "marketing-lead", "ops", "zeta"]
    assert list(listed) == ["agents", "total"]
    assert [ag["agent_id"] for ag in listed["agents"]] == ids
    assert listed["total"] == len(ids)
    prefixes = {ag["agent_id"]: ag["prefix"] for ag in listed["agents"]}
    assert prefixes == {"alpha": "ALP", "beta": "BET", "marketing-lead": "MKT", "ops": "OPS", "zeta": "ZZ"}
    for ag in listed["agents"]:
        assert list(ag) == AGENT_KEYS
        counts = {key: ag[key] for key in AGENT_KEYS[2:]}  # type: ignore[literal-required]
        assert counts == store.summary(ag["agent_id"])
    assert listed["agents"][3] == {
        "agent_id": "ops", "prefix": "OPS", "queued": 3, "in_progress": 0, "complete": 1,
        "blocked": 1, "total": 5,
    }
    assert listed["agents"][4] == {
        "agent_id": "zeta", "prefix": "ZZ", "queued": 0, "in_progress": 0, "complete": 0,
        "blocked": 0, "total": 0,
    }

    # Paging: a slice of the whole, total unchanged.
    assert store.list_agents(limit=2) == {"agents": listed["agents"][:2], "total": 5}
    assert store.list_agents(limit=2, offset=2) == {"agents": listed["agents"][2:4], "total": 5}
    assert store.list_agents(offset=4) == {"agents": listed["agents"][4:], "total": 5}
    assert store.list_agents(limit=10, offset=5) == {"agents": [], "total": 5}
    with pytest.raises(ValidationError, match="offset"):
        store.list_agents(offset=-1)
