"""``with_cache``: answer a repeated request from a store; only successful responses are kept.

The key is a SHA-256 of the canonical JSON of what decides the answer (model, provider,
base URL, messages, options, tool schemas): never object identity or dict order. ``with_cache``
adds the *tenant*, a digest of the credentials the request is sent with, so one shared store
never answers one API key with another's response; :func:`cache_key` alone (what replay
cassettes use) leaves it out. Identical calls in flight at once share one provider call. A
store that fails (Redis down, a corrupt row) counts as a miss, logged once per store. Stores:
an in-memory LRU with TTL (the default), a SQLite file, and Redis (``conduit.redis_backend``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from conduit._data import freeze_map, reveal, thaw
from conduit._drive import Effect, time_left
from conduit._options import Builder, configure, number
from conduit._types import Flow, Request
from conduit.errors import ConduitError, ValidationError
from conduit.middleware import Middleware, middleware
from conduit.registry import PROVIDERS

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "CacheStore",
    "MemoryCache",
    "SQLiteCache",
    "cache_flow",
    "cache_key",
    "tenant",
    "tenant_cache_key",
    "with_cache",
]

log = logging.getLogger("conduit")


class CacheStore(Protocol):
    """What a cache store does: ``get`` a stored response map (or None) and ``set`` one."""

    def get(self, key: str) -> Mapping[str, Any] | None: ...

    def set(self, key: str, value: Mapping[str, Any], ttl: float | None) -> None: ...


def _tool_schema(tool: Mapping[str, Any]) -> dict[str, Any]:
    return {k: thaw(tool.get(k)) for k in ("name", "description", "parameters")}


def cache_key(req: Mapping[str, Any]) -> str:
    """Return the cache key of *req*: the same for equal requests, whatever their key order.

    >>> import conduit as c
    >>> a = c.request("m", "hi", temperature=0, top_p=1)
    >>> b = c.request("m", "hi", top_p=1, temperature=0, api_key="sk-other")
    >>> cache_key(a) == cache_key(b), cache_key(a) == cache_key(c.request("m", "hi"))
    (True, False)
    """
    material = {
        "model": req.get("model"),
        "provider": req.get("provider"),
        "base_url": req.get("base_url"),
        "messages": thaw(req.get("messages") or ()),
        "options": thaw(req.get("options") or {}),
        "tools": [_tool_schema(t) for t in req.get("tools") or ()],
    }
    if req.get("input") is not None:  # an embedding request: the texts are the question
        material["input"] = thaw(req["input"])
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


_KEY_VARIABLES = tuple(sorted({v for p in PROVIDERS for v in (p.env_key, *p.credential_env) if v}))


def tenant(req: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str | None:
    """Return a digest of the credentials *req* is sent with, or None if it has none.

    What is hashed: the request's API key, else the providers' credential variables set in
    *environ* (keys, AWS credentials and profiles: the flow cannot know which provider's
    handler will run), and every header (a header may carry a
    credential or an organisation). A SHA-256 digest: it names a tenant, it never reveals a key.

    >>> import conduit as c
    >>> a, b = c.request("m", "hi", api_key="sk-A"), c.request("m", "bye", api_key="sk-B")
    >>> tenant(a) == tenant(b), tenant(a) == tenant(b.set("api_key", a["api_key"]))
    (False, True)
    >>> tenant(c.request("m", "hi"), environ={}) is None  # no credentials: a local server
    True
    """
    material: dict[str, Any] = {}
    key = reveal(req.get("api_key"))
    if key:
        material["api_key"] = key
    elif environ:
        found = {name: environ[name] for name in _KEY_VARIABLES if environ.get(name)}
        material.update({"environment": found} if found else {})
    provider = req.get("token_provider")
    if provider is not None:  # tokens change; the function that makes them names the tenant
        name = getattr(provider, "__qualname__", type(provider).__qualname__)
        material["token_provider"] = f"{getattr(provider, '__module__', '')}.{name}#{id(provider)}"
    headers = req.get("headers") or {}
    if headers:
        material["headers"] = {str(k).lower(): str(reveal(v)) for k, v in headers.items()}
    if not material:
        return None
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(b"conduit tenant\0" + canonical.encode()).hexdigest()


def tenant_cache_key(req: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str:
    """Return the key ``with_cache`` stores *req* under: :func:`cache_key` plus its
    :func:`tenant`, so two API keys never share an entry; requests without credentials do.

    >>> import conduit as c
    >>> a, b = c.request("m", "hi", api_key="sk-A"), c.request("m", "hi", api_key="sk-B")
    >>> tenant_cache_key(a) == tenant_cache_key(b), cache_key(a) == cache_key(b)
    (False, True)
    >>> tenant_cache_key(c.request("m", "hi"), environ={}) == cache_key(c.request("m", "hi"))
    True
    """
    key, who = cache_key(req), tenant(req, environ)
    return key if who is None else hashlib.sha256(f"{key}:{who}".encode()).hexdigest()


class MemoryCache:
    """An in-process LRU cache with an optional TTL per entry; thread-safe."""

    def __init__(self, maxsize: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.maxsize: int = number("MemoryCache", "maxsize", maxsize, whole=True)
        self.clock = clock
        self._lock = threading.Lock()
        self._data: OrderedDict[str, tuple[float | None, Mapping[str, Any]]] = OrderedDict()

    def get(self, key: str) -> Mapping[str, Any] | None:
        """Return the live entry for *key*, or None."""
        with self._lock:
            found = self._data.get(key)
            if found is None:
                return None
            expires, value = found
            if expires is not None and self.clock() >= expires:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value

    def set(self, key: str, value: Mapping[str, Any], ttl: float | None) -> None:
        """Store *value* under *key* for *ttl* seconds (None: until evicted)."""
        expires = None if ttl is None else self.clock() + ttl
        with self._lock:
            self._data[key] = (expires, value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"MemoryCache(maxsize={self.maxsize}, entries={len(self._data)})"


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS conduit_cache "
    "(key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL)"
)


def _prepare(db: sqlite3.Connection) -> None:
    if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        db.execute("PRAGMA journal_mode=WAL")
    db.execute(_SCHEMA)


def _retried(step: Callable[[], None], seconds: float = 30.0) -> None:
    """Run *step*, again while another connection holds the lock it needs: switching a new
    file to WAL takes an exclusive lock, and SQLite's busy timeout does not wait for it."""
    deadline, pause = time.monotonic() + seconds, 0.005
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
        time.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 0.2)


def _connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
    try:
        _retried(partial(_prepare, db))
    except sqlite3.DatabaseError as exc:
        db.close()
        raise ConduitError(
            f"{path} cannot be opened as a SQLite cache ({exc}): it holds only cached answers, "
            "so delete it (or pick another path) and the cache starts empty",
            data={"path": path},
        ) from None
    return db


class SQLiteCache:
    """A cache in one SQLite file, shared by every process on the machine that opens it.

    Many processes may open a new file at once. A file that is not a SQLite database is a
    ``ConduitError`` naming it; a row that cannot be read is a miss (see :func:`cache_flow`).
    """

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self.clock = clock
        self._lock = threading.Lock()
        self._db = _connect(self.path)

    def get(self, key: str) -> Mapping[str, Any] | None:
        """Return the live entry for *key*, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT value, expires FROM conduit_cache WHERE key = ?", (key,)
            ).fetchone()
        if row is None or (row[1] is not None and self.clock() >= row[1]):
            return None
        value: Mapping[str, Any] = json.loads(row[0])
        return value

    def set(self, key: str, value: Mapping[str, Any], ttl: float | None) -> None:
        """Store *value* under *key* for *ttl* seconds (None: forever)."""
        expires = None if ttl is None else self.clock() + ttl
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO conduit_cache (key, value, expires) VALUES (?, ?, ?)",
                (key, json.dumps(thaw(value)), expires),
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteCache({self.path!r})"


DEFAULT_CACHE = MemoryCache()

_WARNED: weakref.WeakSet[Any] = weakref.WeakSet()
_WARNED_IDS: set[int] = set()  # stores that cannot be weakly referenced
_WARN_LOCK = threading.Lock()


def _first_fault(store: Any) -> bool:
    with _WARN_LOCK:
        try:
            seen = store in _WARNED
            _WARNED.add(store)
        except TypeError:
            seen = id(store) in _WARNED_IDS
            _WARNED_IDS.add(id(store))
    return not seen


def _fault(store: Any, doing: str, exc: BaseException) -> None:
    if _first_fault(store):
        log.warning(
            "cache store %r failed to %s (%s: %.200s); with_cache counts a failed read as a "
            "miss and a failed write as done, so calls go on; logged once per store",
            store,
            doing,
            type(exc).__name__,
            exc,
        )


def _fetch(store: CacheStore, key: str) -> Mapping[str, Any] | None:
    """Return the stored response for *key*; a store fault or a corrupt entry is a miss."""
    try:
        found = store.get(key)
    except Exception as exc:
        _fault(store, "read", exc)
        return None
    if found is not None and not (isinstance(found, Mapping) and "usage" in found):
        _fault(store, "read", ValueError(f"an entry is a {type(found).__name__}, not a response"))
        return None
    return found


def _keep(store: CacheStore, key: str, value: Mapping[str, Any], ttl: float | None) -> None:
    try:
        store.set(key, value, ttl)
    except Exception as exc:
        _fault(store, "write", exc)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Flight:
    """One call in progress for a cache key: identical calls wait for its outcome."""

    def __init__(self, thread: int) -> None:
        self.thread = thread  # where the leading call runs (its event loop's thread, if async)
        self.answer: Mapping[str, Any] | None = None
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._loops: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def finish(self, answer: Mapping[str, Any] | None, error: BaseException | None) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.answer, self.error = answer, error
            self._done.set()
            loops, self._loops = self._loops, []
        for loop, future in loops:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there
                loop.call_soon_threadsafe(_wake, future)

    def outcome(self) -> Mapping[str, Any] | None:
        """The shared answer; the leader's error, raised; None: the leader gave up."""
        if self.error is not None:
            raise self.error
        return self.answer

    def wait(self, req: Request) -> Mapping[str, Any] | None:
        """Wait (in this thread) for the outcome, no longer than *req*'s deadline."""
        while not self._done.wait(time_left(req)):
            pass
        return self.outcome()

    async def await_(self, req: Request) -> Mapping[str, Any] | None:
        """Wait on the running event loop for the outcome, no longer than *req*'s deadline."""
        import asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            if self._done.is_set():
                return self.outcome()
            future: asyncio.Future[None] = loop.create_future()
            self._loops.append((loop, future))
        while not future.done():
            await asyncio.wait([future], timeout=time_left(req))
        return self.outcome()


_FLIGHTS: dict[tuple[int, str], _Flight] = {}
_FLIGHTS_LOCK = threading.Lock()


class _Claim:
    """One call's place among identical calls: it leads (looks up, calls, stores, and answers
    the others) or waits for the leader's outcome. The first call of a key leads."""

    def __init__(self, store: CacheStore, req: Request) -> None:
        self.store, self.req = store, req
        self.key = ""
        self.flight: _Flight | None = None
        self.task: asyncio.Task[Any] | None = None

    def _join(self, sync: bool) -> _Flight | None:
        """Lead (return None, holding the flight) or return the flight to wait for."""
        self.key = tenant_cache_key(self.req, os.environ)
        me, at = threading.get_ident(), (id(self.store), self.key)
        with _FLIGHTS_LOCK:
            flight = _FLIGHTS.get(at)
            if flight is None:
                self.flight = _FLIGHTS[at] = _Flight(me)
                if not sync:
                    self._watch()
                return None
        if sync and flight.thread == me:  # a sync call inside the leader's own thread or loop
            return None  # would wait for itself forever: it calls on its own
        return flight

    def _found(self, found: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        if found is not None:
            self.land(found)
        return found

    def lookup(self) -> Mapping[str, Any] | None:
        """Return the stored or shared answer, or None: this call must call (and store)."""
        while True:
            flight = self._join(sync=True)
            if flight is None:
                return self._found(_fetch(self.store, self.key))
            shared = flight.wait(self.req)
            if shared is not None:
                return shared

    async def alookup(self) -> Mapping[str, Any] | None:
        """The async twin of :meth:`lookup` (waiting on the loop; store reads in a thread)."""
        import asyncio

        while True:
            flight = self._join(sync=False)
            if flight is None:
                return self._found(await asyncio.to_thread(_fetch, self.store, self.key))
            shared = await flight.await_(self.req)
            if shared is not None:
                return shared

    def keep(self, answer: Mapping[str, Any], ttl: float | None) -> None:
        """Store *answer*, then hand it to the calls waiting for it."""
        _keep(self.store, self.key, answer, ttl)
        self.land(answer)

    async def akeep(self, answer: Mapping[str, Any], ttl: float | None) -> None:
        """The async twin of :meth:`keep` (the store written in a thread)."""
        import asyncio

        await asyncio.to_thread(_keep, self.store, self.key, answer, ttl)
        self.land(answer)

    def _watch(self) -> None:
        # A cancelled task's flow is not closed while the task keeps its traceback, so its
        # `finally` may never run: the task's end frees the waiting calls instead.
        import asyncio

        self.task = asyncio.current_task()
        if self.task is not None:
            self.task.add_done_callback(self._abandoned)

    def _abandoned(self, task: asyncio.Task[Any]) -> None:
        self.land(None)

    def land(self, answer: Mapping[str, Any] | None, error: BaseException | None = None) -> None:
        """End the flight (once): later calls read the store; waiting ones get the outcome."""
        flight, self.flight = self.flight, None
        if flight is None:
            return
        if self.task is not None:
            self.task.remove_done_callback(self._abandoned)
        at = (id(self.store), self.key)
        with _FLIGHTS_LOCK:
            if _FLIGHTS.get(at) is flight:
                del _FLIGHTS[at]
        if isinstance(error, ConduitError) and error.data.get("deadline_exceeded"):
            error = None  # the leader's own deadline: the others have theirs, and call again
        flight.finish(answer, error)


def _answered(req: Request, found: Mapping[str, Any]) -> Request:
    out: Request = req.update({"response": freeze_map(found), "cache_hit": True})
    return out


def cache_flow(req: Request, *, store: CacheStore | None = None, ttl: float | None = None) -> Flow:
    """Answer from *store* when it holds *req*'s key; otherwise call, then store the answer.

    The context's ``cache_hit`` says which happened. A hit returns the stored response (usage
    included: it describes the original call); ``with_cost`` charges nothing for it. Identical
    calls (same key, same tenant) arriving while one is in flight wait for its answer (a hit)
    or its error instead of calling. A store that fails to read counts as a miss; one that
    fails to write, as written: each store logs its first fault, once.
    """
    claim = _Claim(store if store is not None else DEFAULT_CACHE, req)
    found = yield Effect(claim.lookup, claim.alookup)
    if found is not None:
        return _answered(req, found)
    try:
        ctx: Request = yield req
        answer = thaw(ctx["response"])
        yield Effect(partial(claim.keep, answer, ttl), partial(claim.akeep, answer, ttl))
        return ctx.set("cache_hit", False)
    except Exception as exc:
        claim.land(None, exc)  # in memory, never blocks: the waiting calls raise it too
        raise
    finally:  # a flow closed mid-call (a cancelled task) cannot yield: free its waiters here
        claim.land(None)


def _is_store(store: Any) -> bool:
    return all(callable(getattr(store, method, None)) for method in ("get", "set"))


def _build(*, store: CacheStore | None = None, ttl: float | None = None) -> Middleware:
    if store is not None and not _is_store(store):
        kinds = "c.MemoryCache(), c.SQLiteCache(path) or c.RedisCache(url)"
        raise ValidationError(f"with_cache(store) needs a store such as {kinds}, not {store!r:.40}")
    seconds = number("with_cache", "ttl", ttl, optional=True)
    return middleware(cache_flow, name="cache", replays=True, store=store, ttl=seconds)


_SPEC = Builder(
    name="with_cache",
    build=_build,
    bare=_build(),
    first="store",
    example="c.with_cache(c.MemoryCache(), ttl=3600)",
)


def with_cache(store: Any = None, /, **options: Any) -> Any:
    """Record cache middleware: bare, or ``c.with_cache(store, ttl=60)``.

    Bare, it uses the process's shared in-memory LRU (1024 responses, no expiry): a repeated
    request within a session is answered once, memory stays bounded, and nothing outlives the
    process. ``ttl`` (seconds, or None for no expiry) applies to what this transform stores.

    >>> from toolz import pipe
    >>> import conduit as c
    >>> script = c.mock_script("computed once")
    >>> req = c.request("m", "hi", mock=script)
    >>> store = MemoryCache()
    >>> [pipe(req, c.with_cache(store), c.mock_call)["cache_hit"] for _ in range(2)]
    [False, True]
    >>> len(script.calls)
    1
    """
    return configure(_SPEC, store, options)
