"""``with_rate_limit``: requests and tokens per minute, as token buckets.

A call *reserves* its cost and then waits until the reservation is covered, so concurrent
callers queue fairly instead of polling. The arithmetic is one pure function (:func:`reserve`);
:class:`RateLimiter` keeps buckets in this process, and ``RedisRateLimiter``
(``conduit.redis_backend``) keeps them in Redis to share one budget across processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from conduit._drive import Effect
from conduit._options import Builder, configure, number
from conduit._types import Flow, Request
from conduit.cost import estimate_usage
from conduit.errors import ValidationError
from conduit.middleware import Middleware, middleware

__all__ = [
    "DEFAULT_LIMITER",
    "Limiter",
    "RateLimiter",
    "estimate_cost",
    "rate_limit_flow",
    "reserve",
    "with_rate_limit",
]


def reserve(
    tokens: float, last: float, now: float, cost: float, per_second: float, capacity: float
) -> tuple[float, float]:
    """Return (tokens left, seconds to wait) after reserving *cost* from a bucket; pure.

    The bucket refills at *per_second* up to *capacity*; a negative balance is a queue.

    >>> reserve(tokens=1, last=0, now=0, cost=1, per_second=2, capacity=1)
    (0, 0.0)
    >>> reserve(tokens=0, last=0, now=0, cost=1, per_second=2, capacity=1)
    (-1, 0.5)
    >>> reserve(tokens=-1, last=0, now=2, cost=1, per_second=2, capacity=1)
    (0, 0.0)
    """
    left = min(capacity, tokens + (now - last) * per_second) - cost
    return left, (0.0 if left >= 0 else -left / per_second)


class Limiter(Protocol):
    """What a limiter does: reserve a call's cost, and settle the token count afterwards."""

    def acquire(self, requests: int, tokens: int) -> float: ...

    def settle(self, tokens: int) -> None: ...


class RateLimiter:
    """Requests and tokens per minute for this process (thread-safe).

    *burst* is how many requests may start at once (default: a second's worth).
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        requests_per_minute, tokens_per_minute, burst = (
            number("RateLimiter", name, value, optional=True)
            for name, value in (
                ("requests_per_minute", requests_per_minute),
                ("tokens_per_minute", tokens_per_minute),
                ("burst", burst),
            )
        )
        if not requests_per_minute and not tokens_per_minute:
            raise ValidationError("a rate limit needs requests_per_minute and/or tokens_per_minute")
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, list[float]] = {}
        self._limits: dict[str, tuple[float, float]] = {}
        now = clock()
        for name, per_minute, cap in (
            ("requests", requests_per_minute, burst),
            ("tokens", tokens_per_minute, None),
        ):
            if per_minute:
                capacity = cap if cap is not None else max(per_minute / 60.0, 1.0)
                if name == "tokens":
                    capacity = per_minute  # a minute's tokens may start at once
                self._limits[name] = (per_minute / 60.0, capacity)
                self._buckets[name] = [capacity, now]

    def acquire(self, requests: int, tokens: int) -> float:
        """Reserve a call's cost; return the seconds to wait before sending it."""
        wait = 0.0
        with self._lock:
            now = self.clock()
            for name, cost in (("requests", requests), ("tokens", tokens)):
                if name in self._buckets:
                    per_second, capacity = self._limits[name]
                    balance, last = self._buckets[name]
                    left, pause = reserve(balance, last, now, cost, per_second, capacity)
                    self._buckets[name] = [left, now]
                    wait = max(wait, pause)
        return wait

    def settle(self, tokens: int) -> None:
        """Charge (or refund, if negative) the difference between estimated and used tokens."""
        if "tokens" in self._buckets and tokens:
            with self._lock:
                self._buckets["tokens"][0] -= tokens

    def __repr__(self) -> str:
        limits = {k: round(v[0] * 60, 3) for k, v in self._limits.items()}
        return f"RateLimiter(per_minute={limits})"


def estimate_cost(req: Request) -> int:
    """Return the tokens a call is expected to use: its prompt plus its ``max_tokens`` budget.

    >>> import conduit as c
    >>> estimate_cost(c.request("m", "hello there", max_tokens=100))
    107
    >>> estimate_cost(c.embedding_request("m", ["hello there"]))
    3
    """
    return estimate_usage(req)["total_tokens"]


def rate_limit_flow(req: Request, *, limiter: Limiter | None = None) -> Flow:
    """Reserve the call's cost, wait as long as the limiter says, then settle the real usage.

    With no *limiter*, the process's :data:`DEFAULT_LIMITER` (bare ``with_rate_limit``).
    """
    limiter = limiter if limiter is not None else DEFAULT_LIMITER
    estimate = estimate_cost(req)
    wait = yield Effect(partial(limiter.acquire, 1, estimate))
    ctx: Request = yield (req.set("conduit/sleep", wait) if wait > 0 else req)
    used = (ctx.get("response") or {}).get("usage", {}).get("total_tokens")
    if used is not None and not ctx.get("cache_hit"):
        yield Effect(partial(limiter.settle, used - estimate))
    return ctx


#: Bare ``with_rate_limit``: this process's calls, 50 requests a minute (one at a time).
DEFAULT_LIMITER = RateLimiter(requests_per_minute=50)


def _is_limiter(limiter: Any) -> bool:
    return all(callable(getattr(limiter, method, None)) for method in ("acquire", "settle"))


def _build(
    *,
    limiter: Limiter | None = None,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    burst: float | None = None,
) -> Middleware:
    limits = (requests_per_minute, tokens_per_minute, burst)
    names = ("requests_per_minute", "tokens_per_minute", "burst")
    for name, value in zip(names, limits, strict=True):
        number("with_rate_limit", name, value, optional=True)  # errors name the builder
    if limiter is None:
        limiter = RateLimiter(requests_per_minute, tokens_per_minute, burst=burst)
    elif not _is_limiter(limiter):
        msg = "with_rate_limit(limiter) needs c.RateLimiter(...) or c.RedisRateLimiter(url, ...)"
        raise ValidationError(f"{msg}, not {limiter!r:.40}")
    elif any(v is not None for v in limits):
        raise ValidationError("pass either a limiter or per-minute limits to with_rate_limit")
    return middleware(rate_limit_flow, name="rate_limit", limiter=limiter)


_SPEC = Builder(
    name="with_rate_limit",
    build=_build,
    bare=middleware(rate_limit_flow, name="rate_limit", limiter=None),
    first="limiter",
    example="c.with_rate_limit(requests_per_minute=500)",
    hints={"rpm": "requests_per_minute", "tpm": "tokens_per_minute"},
)


def with_rate_limit(limiter: Any = None, /, **limits: Any) -> Any:
    """Return a transform limiting calls: ``c.with_rate_limit(requests_per_minute=500)``,
    ``c.with_rate_limit(tokens_per_minute=90_000)``, or a shared limiter object
    (``c.with_rate_limit(RedisRateLimiter(url, requests_per_minute=500))``).

    Configured, the limiter is made once and shared by every request the transform is given;
    each ``with_rate_limit(**limits)`` evaluated makes a new one. Bare, every call in the
    process shares :data:`DEFAULT_LIMITER`, 50 requests a minute with no burst: under the
    entry tiers of the hosted providers (Anthropic's first tier allows 50 a minute, OpenAI's
    500), so a loop or a batch paces itself instead of collecting 429s. A request that
    travels to another process (Dask, multiprocessing) uses that process's default.

    >>> from toolz import pipe
    >>> import conduit as c
    >>> limit = c.with_rate_limit(requests_per_minute=6000)
    >>> c.content(pipe(c.request("m", "hi"), limit, c.mock_call))
    'hi'
    """
    return configure(_SPEC, limiter, limits)
