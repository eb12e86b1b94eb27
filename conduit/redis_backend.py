"""Redis-backed cache store, rate limiter and budget: shared by every process that uses them.

Needs the ``redis`` package (``pip install conduit-llm[redis]``). Each takes a URL
(``redis://127.0.0.1:6379/0``) or a ready ``redis.Redis`` client. A client built from a URL
gives up on an unreachable server after 5 seconds (``socket_connect_timeout`` and
``socket_timeout`` in the URL's query override that).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from conduit._data import thaw
from conduit._options import check_prices, number
from conduit.budget import Hold, checked_limits, refusal
from conduit.cost import PRICES, call_cost, price_for
from conduit.errors import ConduitError, ValidationError

# Pickled as their URL and settings, so a request carrying them can travel to worker
# processes (Dask, Ray, multiprocessing), which then share one cache, limit and budget.

__all__ = ["RedisBudget", "RedisCache", "RedisRateLimiter"]

TIMEOUT = 5.0  # seconds before an unreachable server is an error (a cache miss, for a cache)


def _client(url_or_client: Any) -> Any:
    if not isinstance(url_or_client, str):
        return url_or_client
    try:
        import redis
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConduitError(
            "the Redis backends need the redis package: pip install 'conduit-llm[redis]'"
        ) from None
    return redis.Redis.from_url(
        url_or_client, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT
    )


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
        requests_per_minute, tokens_per_minute, burst = (
            number("RedisRateLimiter", option, value, optional=True)
            for option, value in (
                ("requests_per_minute", requests_per_minute),
                ("tokens_per_minute", tokens_per_minute),
                ("burst", burst),
            )
        )
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


# A budget's spending and the reservations of calls in flight, updated atomically. KEYS: the
# totals (a hash), the holds (id -> "cost tokens"), their expiry times (a sorted set). A hold
# whose process died expires after its lease, so a crash cannot lock the budget.
_PURGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function unhold(id)
  local h = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  if not h then return end
  local c, k = string.match(h, '(%S+) (%S+)')
  redis.call('HDEL', KEYS[2], id)
  if redis.call('HLEN', KEYS[2]) == 0 then
    redis.call('HSET', KEYS[1], 'reserved_cost', '0', 'reserved_tokens', '0')
  else
    redis.call('HINCRBYFLOAT', KEYS[1], 'reserved_cost', -tonumber(c))
    redis.call('HINCRBY', KEYS[1], 'reserved_tokens', -tonumber(k))
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do unhold(id) end
local function totals()
  local s = redis.call('HMGET', KEYS[1], 'cost', 'tokens', 'calls', 'reserved_cost',
                       'reserved_tokens')
  for i = 1, 5 do s[i] = s[i] or '0' end
  s[6] = tostring(redis.call('HLEN', KEYS[2]))
  return s
end
"""

# ARGV: hold id, estimated cost, estimated tokens, max cost, max tokens, max calls (-1: none),
# lease seconds. Returns {admitted (1/0), the totals..., exceeded limits...}.
_BUDGET_RESERVE = (
    _PURGE
    + """
local s = totals()
local spent = {tonumber(s[1]), tonumber(s[2]), tonumber(s[3])}
local reserved = {tonumber(s[4]), tonumber(s[5])}
local flying = tonumber(s[6])
local est = {tonumber(ARGV[2]), tonumber(ARGV[3])}
local names = {'cost', 'tokens', 'calls'}
local over = {}
for i = 1, 2 do
  local limit = tonumber(ARGV[3 + i])
  if limit >= 0 and (spent[i] >= limit or
                     (flying > 0 and spent[i] + reserved[i] + est[i] > limit)) then
    table.insert(over, names[i])
  end
end
local calls = tonumber(ARGV[6])
if calls >= 0 and spent[3] + 1 > calls then table.insert(over, 'calls') end
if #over > 0 then
  return {0, s, over}
end
redis.call('HINCRBY', KEYS[1], 'calls', 1)
redis.call('HINCRBYFLOAT', KEYS[1], 'reserved_cost', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'reserved_tokens', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[7]), ARGV[1])
return {1, totals(), {}}
"""
)

# ARGV: hold id, cost used, tokens used. Returns the totals.
_BUDGET_SETTLE = (
    _PURGE
    + """
unhold(ARGV[1])
redis.call('HINCRBYFLOAT', KEYS[1], 'cost', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[3])
return totals()
"""
)


def _rebuild_budget(url: str, settings: dict[str, Any]) -> RedisBudget:
    return RedisBudget(url, **settings)


_SPENT = ("cost", "tokens", "calls")


def _totals(raw: Any) -> dict[str, Any]:
    values = [x.decode() if isinstance(x, bytes) else str(x) for x in raw]
    return {"cost": float(values[0]), "tokens": int(float(values[1])), "calls": int(values[2])}


class RedisBudget:
    """One budget of cost, tokens and calls in Redis, shared by every process naming it.

    Calls reserve their estimate and settle their usage atomically (Lua scripts), as with
    :class:`~conduit.budget.Budget`. A reservation left by a process that died expires after
    *lease* seconds. The spending persists in Redis until :meth:`reset`. If Redis cannot be
    reached, calls fail rather than spend unchecked.

    >>> RedisBudget("redis://127.0.0.1:6379/0", max_cost=-1)
    Traceback (most recent call last):
    conduit.errors.ValidationError: RedisBudget(max_cost=...) must be a finite number > 0 or \
None, not -1
    """

    def __init__(
        self,
        url_or_client: Any,
        *,
        name: str = "default",
        max_cost: float | None = None,
        max_tokens: int | None = None,
        max_calls: int | None = None,
        prices: Mapping[str, Mapping[str, float]] | None = None,
        lease: float = 600.0,
    ) -> None:
        self.limits = checked_limits("RedisBudget", max_cost, max_tokens, max_calls)
        self.prices = check_prices("RedisBudget", prices) or PRICES
        self.lease = number("RedisBudget", "lease", lease)
        self.name = name
        self.url = url_or_client if isinstance(url_or_client, str) else None
        self.settings = {
            "name": name,
            "max_cost": max_cost,
            "max_tokens": max_tokens,
            "max_calls": max_calls,
            "prices": prices,
            "lease": lease,
        }
        self.redis = _client(url_or_client)
        self.keys = [f"conduit:budget:{name}", f"conduit:budget:{name}:holds"]
        self.keys.append(f"conduit:budget:{name}:expires")
        self._reserve = self.redis.register_script(_BUDGET_RESERVE)
        self._settle = self.redis.register_script(_BUDGET_SETTLE)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_budget, (_url_of(self), self.settings))

    def _cost(self, model: str, usage: Mapping[str, Any]) -> float:
        price = price_for(model, self.prices)
        return 0.0 if price is None else call_cost(usage, price)

    def reserve(self, model: str, usage: Mapping[str, int]) -> Hold:
        """Reserve a call's expected *usage* and count the call, or raise
        ``BudgetExceededError`` if that would pass a limit."""
        hold = Hold(self._cost(model, usage), int(usage.get("total_tokens") or 0), uuid.uuid4().hex)
        limits = [-1 if self.limits[k] is None else self.limits[k] for k in ("cost", "tokens")]
        calls = -1 if self.limits["calls"] is None else self.limits["calls"]
        args = [hold.id, repr(hold.cost), hold.tokens, *limits, calls, self.lease]
        admitted, raw, over = self._script(self._reserve, args)
        if not admitted:
            in_flight = int(raw[5])
            facts = {"limits": dict(self.limits), "in_flight": in_flight, "budget": self.name}
            raise refusal([x.decode() for x in over], _totals(raw), facts)
        return hold

    def settle(self, hold: Hold, model: str, usage: Mapping[str, Any]) -> dict[str, Any]:
        """Replace a call's reservation with what it used; return what has been spent."""
        used = [hold.id, repr(self._cost(model, usage)), int(usage.get("total_tokens") or 0)]
        return _totals(self._script(self._settle, used))

    def release(self, hold: Hold) -> None:
        """Drop the reservation of a call that failed (it still counts as a call)."""
        self._script(self._settle, [hold.id, "0", 0])

    def _script(self, script: Any, args: list[Any]) -> Any:
        try:
            return script(keys=self.keys, args=args)
        except Exception as exc:
            if type(exc).__module__.split(".")[0] != "redis":
                raise
            raise ConduitError(
                f"RedisBudget {self.name!r} cannot reach Redis ({type(exc).__name__}: "
                f"{exc}); no call is sent while its budget cannot be checked",
                data={"budget": self.name},
            ) from exc

    @property
    def spent(self) -> dict[str, Any]:
        """What every process has spent so far."""
        return _totals([x or b"0" for x in self.redis.hmget(self.keys[0], *_SPENT)])

    def reset(self) -> None:
        """Forget what was spent and reserved: the budget starts again from nothing."""
        self.redis.delete(*self.keys)

    def __repr__(self) -> str:
        return f"RedisBudget(name={self.name!r}, limits={self.limits})"
