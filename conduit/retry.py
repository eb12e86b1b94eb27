"""``with_retry``: re-run the call on 408/409/429/5xx, timeouts and broken connections.

The policy: 3 attempts; a provider's ``Retry-After`` (or ``retry-after-ms``) honoured exactly
when ``0 < value <= 60`` s; otherwise (none, ``0``, a date in the past, too long) exponential
backoff from 0.5 s doubling to 8 s with full jitter; never a retry of 400/401/403/404/422, and
never past the call's deadline (``with_timeout``).

How it compares with the official SDKs (openai 3.x and anthropic 2.x, read from their
``_calculate_retry_timeout``): the same attempts, steps and cap, and like both a ``Retry-After``
of 0 or in the past means backoff, not an immediate retry. They differ from Conduit, and from
each other, in two ways: their jitter takes 0-25 % off each step where Conduit draws anywhere
below it (full jitter spreads a crowd of clients further apart); and above the cap, openai
honours up to 120 s and beyond that does not retry at all, while anthropic honours any wait.
``max_retry_after`` sets Conduit's cap (``float("inf")``: honour any finite wait).
"""

from __future__ import annotations

from math import isfinite
from typing import Any

from conduit._options import Builder, configure, number
from conduit._types import Flow, Request
from conduit.errors import ConduitError, ProviderError, is_retryable
from conduit.middleware import Middleware, middleware

__all__ = ["backoff", "retry_flow", "with_retry"]


def backoff(
    attempt: int,
    retry_after: float | None = None,
    *,
    initial_delay: float = 0.5,
    max_delay: float = 8.0,
    max_retry_after: float = 60.0,
) -> Any:
    """Return the wait before retry number *attempt* (1-based): seconds, or ``{"up_to": s}``.

    A provider's ``retry_after`` is honoured exactly when ``0 < retry_after <= max_retry_after``
    (and finite); otherwise the wait is full jitter up to ``initial_delay * 2 ** (attempt - 1)``,
    capped at *max_delay*. Any attempt number works (the exponent stops growing at 1,000).

    >>> backoff(1), backoff(3), backoff(9), backoff(10_000)
    ({'up_to': 0.5}, {'up_to': 2.0}, {'up_to': 8.0}, {'up_to': 8.0})
    >>> backoff(1, retry_after=3.0), backoff(1, retry_after=600.0), backoff(2, retry_after=0.0)
    (3.0, {'up_to': 0.5}, {'up_to': 1.0})
    """
    if retry_after is not None and 0 < retry_after <= max_retry_after and isfinite(retry_after):
        return float(retry_after)
    step = initial_delay * 2.0 ** min(max(attempt - 1, 0), 1000)  # a float: inf, never an error
    return {"up_to": min(max_delay, step)}


def retry_flow(
    req: Request,
    *,
    max_attempts: int = 3,
    initial_delay: float = 0.5,
    max_delay: float = 8.0,
    max_retry_after: float = 60.0,
) -> Flow:
    """Yield *req* until it succeeds or *max_attempts* are spent; ``attempts`` on the context.

    >>> from conduit import request, make_response, RateLimitError
    >>> flow = retry_flow(request("m", "hi"))
    >>> first = next(flow)
    >>> again = flow.throw(RateLimitError("slow", status_code=429, retry_after=2.0))
    >>> again["conduit/sleep"]
    2.0
    """
    attempt = 1
    sent = req
    while True:
        try:
            ctx: Request = yield sent
        except Exception as exc:
            if attempt >= max_attempts or not is_retryable(exc):
                if isinstance(exc, ConduitError):
                    exc.data = exc.data.set("attempts", attempt)
                raise
            wait = backoff(
                attempt,
                exc.retry_after if isinstance(exc, ProviderError) else None,
                initial_delay=initial_delay,
                max_delay=max_delay,
                max_retry_after=max_retry_after,
            )
            attempt += 1
            sent = req.set("conduit/sleep", wait)
            continue
        return ctx.set("attempts", attempt)


def _build(
    *,
    max_attempts: int = 3,
    initial_delay: float = 0.5,
    max_delay: float = 8.0,
    max_retry_after: float = 60.0,
) -> Middleware:
    """Return retry middleware for the policy, each value checked (``ValidationError``).

    >>> _build(max_attempts=5).options["max_attempts"]
    5
    """
    name = "with_retry"
    return middleware(
        retry_flow,
        name="retry",
        max_attempts=number(name, "max_attempts", max_attempts, whole=True),
        initial_delay=number(name, "initial_delay", initial_delay, zero=True),
        max_delay=number(name, "max_delay", max_delay, zero=True),
        max_retry_after=number(name, "max_retry_after", max_retry_after, zero=True, infinite=True),
    )


_SPEC = Builder(
    name="with_retry",
    build=_build,
    bare=_build(),
    example="c.with_retry(max_attempts=5)",
    hints={
        "max_retries": "the openai SDK's max_retries=N is max_attempts=N + 1 here",
        "retries": "retries=N is max_attempts=N + 1 here",
    },
)


def with_retry(req: Any = None, /, **policy: Any) -> Any:
    """Record retry middleware: bare, or ``c.with_retry(max_attempts=5, initial_delay=0.5,
    max_delay=8.0, max_retry_after=60.0)``; ``ctx["attempts"]`` counts the calls made.

    Bare: 3 attempts (the official SDKs' ``max_retries=2``), waits of up to 0.5 s doubling to
    8 s, a ``Retry-After`` above 0 and up to 60 s honoured exactly (the module docstring says
    where the SDKs differ). ``max_retry_after=float("inf")`` honours any finite one (a
    ``with_timeout`` still bounds it).

    >>> from toolz import pipe
    >>> import conduit as c
    >>> req = c.request("m", "hi", mock=c.mock_script("ok", fail_first=1, error=c.ServerError(
    ...     "busy", status_code=503, retry_after=0.01)))
    >>> pipe(req, c.with_retry, c.mock_call)["attempts"]
    2
    >>> c.with_retry(max_retries=2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    conduit.errors.ValidationError: with_retry has no option 'max_retries' (the openai SDK's ...
    """
    return configure(_SPEC, req, policy)
