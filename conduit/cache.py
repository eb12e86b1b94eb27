"""``with_cache``: answer a repeated request from a store; only successful responses are kept.

The key is a SHA-256 of the canonical JSON of what decides the answer (model, provider,
base URL, messages, options, tool schemas): never object identity or dict order. Stores: an
in-memory LRU with TTL (the default), a SQLite file, and Redis (``conduit.cache_redis``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from conduit._data import freeze_map, thaw
from conduit._drive import Effect
from conduit._options import Builder, configure, number
from conduit._types import Flow, Request
from conduit.errors import ValidationError
from conduit.middleware import Middleware, middleware

__all__ = [
    "CacheStore",
    "MemoryCache",
    "SQLiteCache",
    "cache_flow",
    "cache_key",
    "with_cache",
]


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


class MemoryCache:
    """An in-process LRU cache with an optional TTL per entry; thread-safe."""

    def __init__(self, maxsize: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.maxsize = maxsize
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


class SQLiteCache:
    """A cache in one SQLite file, shared by every process on the machine that opens it."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self.clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS conduit_cache "
            "(key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL)"
        )

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


def cache_flow(req: Request, *, store: CacheStore | None = None, ttl: float | None = None) -> Flow:
    """Answer from *store* when it holds *req*'s key; otherwise call, then store the answer.

    The context's ``cache_hit`` says which happened. A hit returns the stored response (usage
    included: it describes the original call); ``with_cost`` charges nothing for it.
    """
    backend = store if store is not None else DEFAULT_CACHE
    key = cache_key(req)
    hit = yield Effect(partial(backend.get, key))
    if hit is not None:
        answered: Request = req.update({"response": freeze_map(hit), "cache_hit": True})
        return answered
    ctx: Request = yield req
    yield Effect(partial(backend.set, key, thaw(ctx["response"]), ttl))
    return ctx.set("cache_hit", False)


def _is_store(store: Any) -> bool:
    return all(callable(getattr(store, method, None)) for method in ("get", "set"))


def _build(*, store: CacheStore | None = None, ttl: float | None = None) -> Middleware:
    if store is not None and not _is_store(store):
        kinds = "c.MemoryCache(), c.SQLiteCache(path) or c.RedisCache(url)"
        raise ValidationError(f"with_cache(store) needs a store such as {kinds}, not {store!r:.40}")
    seconds = number("with_cache", "ttl", ttl, optional=True)
    return middleware(cache_flow, name="cache", store=store, ttl=seconds)


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
