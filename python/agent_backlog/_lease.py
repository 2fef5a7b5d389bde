"""Holding a lease while the work runs: ``hold_lease`` and ``HeldLease``.

A worker that claims with a lease must renew it before it expires, finish it when
the work is done, and give the task back when the work fails — and it must learn,
before it reports a result, that it lost the lease (it stalled past the expiry and
another worker took the task). ``hold_lease`` does all four::

    claim = store.wait_for_task("writer", "w1", 30, lease_seconds=60)
    if claim is not None:
        with agent_backlog.hold_lease(store, claim) as held:
            for part in parts_of(held.task):
                held.check()            # LeaseLostError once another worker has it
                work_on(part)
            held.complete("3 posts")    # or held.block("why"), or let it return

- A background thread renews the lease every third of its duration.
- Leaving the block normally completes the task (with ``held.result``) unless it was
  finished already; leaving it with an exception releases the task to the queue and
  lets the exception go on.
- A lost lease is visible: ``held.lost`` turns true, ``held.check()`` raises
  ``LeaseLostError``, and finishing raises it (the other worker's result stands).
- The work may also finish the lease itself with the store (``finish_lease``,
  ``finish_and_claim`` or ``return_lease`` with ``held.token``): the lease is then not
  lost, renewing stops, and leaving the block normally raises nothing
  (``held.finished`` is the task as it is then). A finish through the helper after
  that raises ``LeaseLostError``, the lease being over, though ``held.lost`` is false.
- A finish that fails for another reason (a bad blocker, a busy database) leaves the
  lease held and renewed, so the work may try again.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Optional, Type

from ._native import BacklogError, LeaseLostError, Store
from ._types import Claim, FinishStatus, Lease, Task

if TYPE_CHECKING:
    from ._async import AsyncStore

__all__ = ["AsyncHeldLease", "HeldLease", "hold_lease", "hold_lease_async"]

# What the core's lease_lost message says when the token's own finish ended the lease
# (src/rules/lease.rs; tests/leases.rs pins it), as opposed to another worker, an
# expiry, an update or a delete.
_FINISHED_BY_ITS_TOKEN = "(the lease was already finished)"


def _finished_already(lost: LeaseLostError) -> bool:
    """Whether the lease ended by a finish with its own token (the work called
    ``finish_lease`` or ``finish_and_claim`` itself), not lost to anyone."""
    return _FINISHED_BY_ITS_TOKEN in str(lost)


class _Held:
    """What both forms of a held lease keep and show: the task, the lease, the result,
    how it was finished or lost, and how often it is renewed."""

    def __init__(self, claim: Claim, renew_every: Optional[float]) -> None:
        self.task: Task = claim["task"]
        self.lease: Lease = claim["lease"]
        self.result: Optional[str] = None
        """The result a normal exit completes the task with."""
        self.finished: Optional[Task] = None
        """The task as the finish left it, once finished."""
        self.lost_error: Optional[LeaseLostError] = None
        """Why the lease was lost, once it was."""
        self._ended_by_the_work = False
        if renew_every is None:
            renew_every = _duration(self.lease) / 3
        if not renew_every > 0:
            raise ValueError(f"renew_every must be a positive number of seconds, got {renew_every}")
        self._renew_every = renew_every

    @property
    def token(self) -> str:
        """The lease's token."""
        return self.lease["token"]

    @property
    def lost(self) -> bool:
        """Whether the lease was lost (seen by a renewal or a finish)."""
        return self.lost_error is not None

    def check(self) -> None:
        """Raises ``LeaseLostError`` if the lease was lost: call it between steps of
        long work, so that a worker that stalled stops early."""
        if self.lost_error is not None:
            raise self.lost_error


def _lease_ended(held: "_Held", lost: LeaseLostError) -> None:
    """Records how a lease ended that a call was told is no longer held: by the
    work's own finish, or lost."""
    if _finished_already(lost):
        held._ended_by_the_work = True
    else:
        held.lost_error = lost


class HeldLease(_Held):
    """A lease held while the work runs; see the module docs. Make one with
    ``hold_lease``; use it as a context manager."""

    def __init__(self, store: Store, claim: Claim, *, renew_every: Optional[float] = None) -> None:
        super().__init__(claim, renew_every)
        self.store = store
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._renewer = threading.Thread(
            target=self._renew, name=f"renew {self.lease['task_id']}", daemon=True
        )

    def complete(self, result: Optional[str] = None) -> Task:
        """Completes the task (with ``result``) and ends the lease."""
        return self.finish("complete", result=result)

    def block(self, blocker: str) -> Task:
        """Blocks the task for this reason and ends the lease."""
        return self.finish("blocked", blocker=blocker)

    def release(self) -> Task:
        """Gives the task back to the queue for another worker and ends the lease."""
        return self.finish("queued")

    def finish(
        self,
        status: FinishStatus,
        *,
        result: Optional[str] = None,
        blocker: Optional[str] = None,
    ) -> Task:
        """Ends the lease as ``Store.finish_lease`` does; ``LeaseLostError`` when it
        was lost. Any other error leaves the lease held and renewed."""
        with self._lock:
            if self.finished is not None:
                raise ValueError(f"the lease on {self.lease['task_id']} is already finished")
            self.check()
            try:
                task = self.store.finish_lease(self.token, status, result=result, blocker=blocker)
            except LeaseLostError as lost:
                _lease_ended(self, lost)
                raise
            self.finished = task
        self._stop.set()
        return task

    def _renew(self) -> None:
        while not self._stop.wait(self._renew_every):
            with self._lock:
                if self.finished is not None or self._stop.is_set():
                    return
                try:
                    self.lease = self.store.renew_lease(self.token)
                except LeaseLostError as lost:
                    _lease_ended(self, lost)
                    return
                except BacklogError:
                    # Busy or briefly unavailable: the next tick tries again, well
                    # before the lease runs out.
                    continue

    def _as_left(self) -> Task:
        """The task as the work's own finish left it."""
        return self.store.get_task(self.lease["agent_id"], self.lease["task_id"])

    def __enter__(self) -> HeldLease:
        self._renewer.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self._stop.set()
        self._renewer.join()
        if self.finished is not None:
            return
        if self._ended_by_the_work:
            self.finished = self._as_left()
            return
        if exc_type is None:
            try:
                self.complete(self.result)
            except LeaseLostError:
                if not self._ended_by_the_work:
                    raise
                self.finished = self._as_left()
            return
        if self.lost_error is None:
            try:
                self.release()
            except BacklogError:
                # The work's own exception matters more; the lease then expires.
                pass


def _duration(lease: Lease) -> float:
    granted = datetime.fromisoformat(lease["granted"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(lease["expires"].replace("Z", "+00:00"))
    return max((expires - granted).total_seconds(), 0.003)


def hold_lease(store: Store, claim: Claim, *, renew_every: Optional[float] = None) -> HeldLease:
    """Holds the lease of ``claim`` while the work runs: renewed in the background
    every ``renew_every`` seconds (default: a third of the lease), completed when the
    ``with`` block ends normally, released when it raises. See ``HeldLease``."""
    return HeldLease(store, claim, renew_every=renew_every)


class AsyncHeldLease(_Held):
    """``HeldLease`` for an ``AsyncStore``: a task on the event loop renews the lease
    every third of its duration, and the finishing methods are coroutines. Make one
    with ``hold_lease_async``; use it with ``async with``::

        claim = await store.wait_for_task("writer", "w1", 30, lease_seconds=60)
        if claim is not None:
            async with agent_backlog.hold_lease_async(store, claim) as held:
                held.check()                 # LeaseLostError once another worker has it
                await held.complete(await write_posts(held.task))
    """

    def __init__(self, store: "AsyncStore", claim: Claim, *, renew_every: Optional[float] = None) -> None:
        super().__init__(claim, renew_every)
        self.store = store
        self._renewer: Optional["asyncio.Task[None]"] = None
        self._lock = asyncio.Lock()

    async def complete(self, result: Optional[str] = None) -> Task:
        """Completes the task (with ``result``) and ends the lease."""
        return await self.finish("complete", result=result)

    async def block(self, blocker: str) -> Task:
        """Blocks the task for this reason and ends the lease."""
        return await self.finish("blocked", blocker=blocker)

    async def release(self) -> Task:
        """Gives the task back to the queue for another worker and ends the lease."""
        return await self.finish("queued")

    async def finish(
        self,
        status: FinishStatus,
        *,
        result: Optional[str] = None,
        blocker: Optional[str] = None,
    ) -> Task:
        """Ends the lease as ``finish_lease`` does; ``LeaseLostError`` when it was
        lost. Any other error leaves the lease held and renewed."""
        async with self._lock:
            if self.finished is not None:
                raise ValueError(f"the lease on {self.lease['task_id']} is already finished")
            self.check()
            try:
                task = await self.store.finish_lease(self.token, status, result=result, blocker=blocker)
            except LeaseLostError as lost:
                _lease_ended(self, lost)
                raise
            self.finished = task
        await self._stop_renewing()
        return task

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._renew_every)
            async with self._lock:
                if self.finished is not None:
                    return
                try:
                    self.lease = await self.store.renew_lease(self.token)
                except LeaseLostError as lost:
                    _lease_ended(self, lost)
                    return
                except BacklogError:
                    continue  # busy: the next tick tries again, well before expiry

    async def _as_left(self) -> Task:
        """The task as the work's own finish left it."""
        return await self.store.get_task(self.lease["agent_id"], self.lease["task_id"])

    async def _stop_renewing(self) -> None:
        renewer, self._renewer = self._renewer, None
        if renewer is not None and renewer is not asyncio.current_task():
            renewer.cancel()
            # Waits for it to end; raises CancelledError only when this task itself
            # is being cancelled.
            await asyncio.wait([renewer])

    async def __aenter__(self) -> "AsyncHeldLease":
        self._renewer = asyncio.get_running_loop().create_task(
            self._renew(), name=f"renew {self.lease['task_id']}"
        )
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        await self._stop_renewing()
        if self.finished is not None:
            return
        if self._ended_by_the_work:
            self.finished = await self._as_left()
            return
        if exc_type is None:
            try:
                await self.complete(self.result)
            except LeaseLostError:
                if not self._ended_by_the_work:
                    raise
                self.finished = await self._as_left()
            return
        if self.lost_error is None:
            try:
                await self.release()
            except BacklogError:
                pass  # the work's own exception matters more; the lease then expires


def hold_lease_async(
    store: "AsyncStore", claim: Claim, *, renew_every: Optional[float] = None
) -> AsyncHeldLease:
    """``hold_lease`` for an ``AsyncStore``: renewed by a task on the loop, completed
    when the ``async with`` block ends normally, released when it raises. See
    ``AsyncHeldLease``."""
    return AsyncHeldLease(store, claim, renew_every=renew_every)
