"""Redis-backed cache store and rate limiter: one cache and one budget for many processes.

Needs the ``redis`` package (``pip install conduit-llm[redis]``). Both take a URL
(``redis://127.0.0.1:6379/0``) or a ready ``redis.Redis`` client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from conduit._data import thaw
from conduit.errors import ConduitError, ValidationError

# Pickled as their URL and settings, so a request carrying them can travel to worker
# processes (Dask, Ray, multiprocessing), which then share one cache and one budget.

__all__ = ["RedisCache", "RedisRateLimiter"]


def _client(url_or_client: Any) -> Any:
    if not isinstance(url_or_client, str):
        return url_or_client
    try:
        import redis
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConduitError(
            "the Redis backends need the redis package: pip install 'conduit-llm[redis]'"
        ) from None
    return redis.Redis.from_url(url_or_client)


def _url_of(backend: Any) -> str:
    if backend.url is None:
        raise ConduitError(
            "a Redis backend built from a client object cannot be pickled: build it from a URL "
            "so that every worker process can connect to the same Redis"
        )
    return str(backend.url)


def _rebuild_cache(url: str, prefix: str) -> RedisCache:
    return RedisCache(url, prefix=prefix)


def _rebuild_limiter(url: str, settings: dict[str, Any]) -> RedisRateLimiter:
    return RedisRateLimiter(url, **settings)


class RedisCache:
    """A cache store in Redis; entries expire with Redis's own TTL."""

    def __init__(self, url_or_client: Any, *, prefix: str = "conduit:cache:") -> None:
        self.url = url_or_client if isinstance(url_or_client, str) else None
        self.redis = _client(url_or_client)
        self.prefix = prefix

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_cache, (_url_of(self), self.prefix))

    def get(self, key: str) -> Mapping[str, Any] | None:
        """Return the stored response for *key*, or None."""
        raw = self.redis.get(self.prefix + key)
        if raw is None:
            return None
        value: Mapping[str, Any] = json.loads(raw)
        return value

    def set(self, key: str, value: Mapping[str, Any], ttl: float | None) -> None:
        """Store *value* for *ttl* seconds (None: until evicted by Redis)."""
        millis = None if ttl is None else max(int(ttl * 1000), 1)
        self.redis.set(self.prefix + key, json.dumps(thaw(value)), px=millis)

    def __repr__(self) -> str:
        return f"RedisCache(prefix={self.prefix!r})"


# Token buckets updated atomically, timed by Redis's clock so every process agrees.
# KEYS: one bucket per limit. ARGV: per-second rate, capacity, cost for each, in order.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[3 * i - 2])
  local capacity = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local b = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(b[1]) or capacity
  local ts = tonumber(b[2]) or now
  tokens = math.min(capacity, tokens + (now - ts) * rate) - cost
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('EXPIRE', key, math.ceil(capacity / rate) + 60)
  if tokens < 0 and -tokens / rate > wait then wait = -tokens / rate end
end
return tostring(wait)
"""


class RedisRateLimiter:
    """Requests and tokens per minute shared by every process that uses the same *name*."""

    def __init__(
        self,
        url_or_client: Any,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        burst: float | None = None,
        name: str = "default",
    ) -> None:
        if not requests_per_minute and not tokens_per_minute:
            raise ValidationError("a rate limit needs requests_per_minute and/or tokens_per_minute")
        self.url = url_or_client if isinstance(url_or_client, str) else None
        self.settings = {
            "requests_per_minute": requests_per_minute,
            "tokens_per_minute": tokens_per_minute,
            "burst": burst,
            "name": name,
        }
        self.redis = _client(url_or_client)
        self.name = name
        self.limits: dict[str, tuple[float, float]] = {}
        if requests_per_minute:
            per_second = requests_per_minute / 60.0
            self.limits["requests"] = (per_second, burst or max(per_second, 1.0))
        if tokens_per_minute:
            self.limits["tokens"] = (tokens_per_minute / 60.0, float(tokens_per_minute))
        self._script = self.redis.register_script(_RESERVE)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_limiter, (_url_of(self), self.settings))

    def _key(self, limit: str) -> str:
        return f"conduit:ratelimit:{self.name}:{limit}"

    def acquire(self, requests: int, tokens: int) -> float:
        """Reserve a call's cost in Redis; return the seconds to wait before sending it."""
        keys, args = [], []
        for limit, cost in (("requests", requests), ("tokens", tokens)):
            if limit in self.limits:
                keys.append(self._key(limit))
                args.extend([*self.limits[limit], cost])
        return float(self._script(keys=keys, args=args))

    def settle(self, tokens: int) -> None:
        """Charge (or refund) the difference between estimated and used tokens."""
        if "tokens" in self.limits and tokens:
            self.redis.hincrbyfloat(self._key("tokens"), "tokens", -tokens)

    def __repr__(self) -> str:
        return f"RedisRateLimiter(name={self.name!r})"
