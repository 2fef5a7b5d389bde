"""``AsyncStore``: every method of ``Store`` as a coroutine, for programs on an event
loop (SPEC §18).

A call that cannot wait — a read, or a write when no other connection holds the lock
— is tens of microseconds of SQLite work, less than a hop to a thread costs, so it
runs right on the loop. Only a call that would wait leaves it: the native module
first tries the call in a mode where every place that would wait (a lock held by
another process, this store's writer busy in another thread, a FULL-durability
fsync, a wait for work) gives up at once having done nothing; then the call is made
again on a thread, where it may wait while the loop runs on. A long run of calls that
never wait still lets other coroutines in every few milliseconds.

Cancelling a coroutine that awaits ``wait_for_task`` or a waiting ``events`` ends the
native wait at once; a task the wait had already claimed goes straight back to the
queue, its attempt not counted. The same holds for any call that claims with a
lease (``claim_lease``, ``finish_and_claim``) and was waiting on a thread when it was
cancelled. A cancelled write that was already running on a thread may still
complete, as with any I/O that was under way.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from time import monotonic
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ._native import Store, WouldWait

__all__ = ["AsyncStore"]

# How long calls that never wait may hold the loop, one after another, before one of
# them lets other coroutines run; and the pause between two calls after which the
# loop is taken to have been free in between.
_SLICE = 0.002
_GAP = 0.0005

# The methods that wait for work and take a Waiter that ends them at once.
_WAITS = frozenset({"wait_for_task", "events", "_call_tool"})

# Threads for the calls that would wait for a lock; waits for work get one each.
_WRITE_THREADS = 8


class _Handover:
    """Between a thread that runs a call and the coroutine awaiting it: whether the
    coroutine was cancelled, and the token of a claim made but not handed over."""

    __slots__ = ("lock", "dropped", "token")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.dropped = False
        self.token: Optional[str] = None


def _claimed_token(result: Any) -> Optional[str]:
    """The lease token of a claim in a call's result (a claim, a finish_and_claim's
    next, or a tool's result of either), if there is one."""
    if isinstance(result, dict) and set(result) == {"result"}:
        result = result["result"]  # a tool's null result: nothing was claimed
    if not isinstance(result, dict):
        return None
    claim = result.get("next", result)
    if isinstance(claim, dict):
        lease = claim.get("lease")
        if isinstance(lease, dict) and isinstance(lease.get("token"), str):
            return lease["token"]
    return None


def _settle(future: "asyncio.Future[Any]", result: Any, error: Optional[BaseException]) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _give_back(store: Store, token: str) -> None:
    """Undoes a claim that never reached its caller (its attempt not counted)."""
    try:
        store._return_lease(token)
    except Exception:
        # Closed meanwhile, or finished by someone: the lease then expires as any.
        pass


class AsyncStore:
    """A backlog store for asyncio programs: ``Store``'s methods as coroutines, with
    the same arguments, results and errors (see the module docs for what runs where).

    ``AsyncStore(path_or_url, *, busy_timeout=None, durability=None, actor=None)`` opens
    the store as ``Store`` does. Use ``async with AsyncStore(path) as store:`` or
    ``await store.aclose()``. One AsyncStore may serve any number of coroutines.
    """

    def __init__(
        self,
        path_or_url: Any,
        *,
        busy_timeout: Any = None,
        durability: Any = None,
        actor: Any = None,
    ) -> None:
        self._store = Store(
            path_or_url, busy_timeout=busy_timeout, durability=durability, actor=actor
        )
        self._executor: Optional[ThreadPoolExecutor] = None
        self._executor_lock = threading.Lock()
        self._closed = False
        # How long the calls since the loop last had a turn for others held it, and
        # when the last of them ended.
        self._held = 0.0
        self._last_end = 0.0

    @property
    def store(self) -> Store:
        """The blocking ``Store`` underneath (the same file, the same connections)."""
        return self._store

    async def _call(self, name: str, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        start = monotonic()
        if start - self._last_end > _GAP:
            # Time passed since the last call: the loop was free to run others.
            self._held = 0.0
        elif self._held > _SLICE:
            # The calls since the last pause all ran on the loop without waiting: let
            # the others run. A coroutine woken by a timer or a socket needs a few turns
            # of the loop (the wake-up, then its step), so this one steps back three.
            # The count starts again first: the coroutines of this store that run
            # meanwhile are the others, and need not step back in turn.
            self._held = 0.0
            for _ in range(3):
                await asyncio.sleep(0)
            start = monotonic()
        try:
            return self._store._now(name, args, kwargs)
        except WouldWait:
            pass
        finally:
            self._last_end = monotonic()
            self._held += self._last_end - start
        return await self._on_thread(name, args, kwargs)

    async def _on_thread(self, name: str, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: "asyncio.Future[Any]" = loop.create_future()
        handover = _Handover()
        waiter = None
        if name in _WAITS:
            waiter = self._store._waiter()
            kwargs = {**kwargs, "_waiter": waiter}
        method = getattr(self._store, name)
        store = self._store

        def run() -> None:
            result: Any = None
            error: Optional[BaseException] = None
            token: Optional[str] = None
            with handover.lock:
                if handover.dropped:
                    return  # cancelled before it began: do nothing at all
            try:
                result = method(*args, **kwargs)
                token = _claimed_token(result)
                if token is not None:
                    with handover.lock:
                        if handover.dropped:
                            store._return_lease(token)
                            token = None
                        else:
                            handover.token = token
            except BaseException as e:  # handed to the awaiting coroutine
                error = e
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:
                # The loop is closed: nobody will receive the answer. A claim in it
                # goes back to the queue.
                if token is not None:
                    _give_back(store, token)

        queued = None
        if waiter is not None:
            threading.Thread(target=run, name=f"agent-backlog {name}", daemon=True).start()
        else:
            queued = self._submit(run)
        try:
            return await future
        except asyncio.CancelledError:
            with handover.lock:
                handover.dropped = True
                token, handover.token = handover.token, None
            if queued is not None:
                queued.cancel()
            if waiter is not None:
                waiter.cancel()
            if token is not None:
                self._submit(_give_back, store, token)
            raise

    def _submit(self, fn: Callable[..., None], *args: Any) -> "Optional[Future[None]]":
        """Runs fn on one of the store's threads (on a thread of its own once the
        store is closed, when the pool is gone)."""
        with self._executor_lock:
            if self._closed:
                threading.Thread(target=fn, args=args, name="agent-backlog", daemon=True).start()
                return None
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=_WRITE_THREADS, thread_name_prefix="agent-backlog"
                )
            return self._executor.submit(fn, *args)

    async def aclose(self) -> None:
        """Closes the store: waits under way end (with ``StorageError``), later calls
        raise ``StorageError``. Closing twice is fine."""
        with self._executor_lock:
            self._closed = True
        loop = asyncio.get_running_loop()
        future: "asyncio.Future[Any]" = loop.create_future()

        def run() -> None:
            error: Optional[BaseException] = None
            try:
                self._store.close()
            except BaseException as e:
                error = e
            try:
                loop.call_soon_threadsafe(_settle, future, None, error)
            except RuntimeError:
                pass

        try:
            threading.Thread(target=run, name="agent-backlog close", daemon=True).start()
            await future
        finally:
            with self._executor_lock:
                executor, self._executor = self._executor, None
            if executor is not None:
                executor.shutdown(wait=False)

    async def __aenter__(self) -> "AsyncStore":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return repr(self._store).replace("agent_backlog.Store", "agent_backlog.AsyncStore", 1)


def _method(name: str) -> Callable[..., Any]:
    blocking = getattr(Store, name)

    async def method(self: AsyncStore, *args: Any, **kwargs: Any) -> Any:
        return await self._call(name, args, kwargs)

    method.__name__ = method.__qualname__ = name
    method.__qualname__ = f"AsyncStore.{name}"
    method.__doc__ = blocking.__doc__
    try:
        method.__signature__ = inspect.signature(blocking)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        pass
    return method


# Every public method of Store but the ones AsyncStore has its own form of.
_OWN = frozenset({"close"})
METHODS: Tuple[str, ...] = tuple(
    name
    for name in dir(Store)
    if not name.startswith("_") and name not in _OWN and callable(getattr(Store, name))
)
for _name in METHODS:
    setattr(AsyncStore, _name, _method(_name))
del _name


async def _call_tool(
    store: AsyncStore, name: str, arguments: Mapping[str, Any], agent_id: Optional[str]
) -> Dict[str, Any]:
    """The async form of ``Store._call_tool``, for ``tools.acall``."""
    result: Dict[str, Any] = await store._call(
        "_call_tool", (name, arguments), {"agent_id": agent_id}
    )
    return result
