"""``with_timeout``: one deadline for the whole call, retries and their waits included."""

from __future__ import annotations

from typing import Any

from conduit._types import Flow, Request
from conduit.errors import ValidationError
from conduit.middleware import Middleware, configurable, middleware

__all__ = ["timeout_flow", "with_timeout"]


def timeout_flow(req: Request, *, seconds: float) -> Flow:
    """Ask the driver for a deadline *seconds* from now (never later than one already set)."""
    ctx: Request = yield req.set("conduit/deadline_in", seconds)
    return ctx


def _make(seconds: float | None = None, **extra: Any) -> Middleware:
    if extra or seconds is None or seconds <= 0:
        raise ValidationError("with_timeout needs a positive number of seconds: c.with_timeout(30)")
    return middleware(timeout_flow, name="timeout", seconds=float(seconds))


_configurable = configurable(_make, "with_timeout")


def with_timeout(seconds: Any = None, /, **options: Any) -> Any:
    """Return a transform giving the call *seconds* in all (``pipe(req, c.with_timeout(30), ...)``).

    The deadline covers every attempt of an outer ``with_retry`` and the waits between them;
    when it passes, the call raises ``TimeoutError`` (with ``data["deadline_exceeded"]``),
    which no retry repeats. Put it outermost to bound the whole call.

    >>> import conduit as c
    >>> req = c.request("m", "hi", mock=c.mock_script("late", delay=1.0))
    >>> c.mock_call(c.with_timeout(0.05)(req))
    Traceback (most recent call last):
    conduit.errors.TimeoutError: mock: the call's deadline passed while waiting for the answer
    """
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        _make(seconds, **options)  # validate here, where the mistake is written
        return _configurable(seconds=seconds, **options)
    if seconds is None:
        return _configurable(**options)
    raise ValidationError("use c.with_timeout(seconds) in a pipe, e.g. c.with_timeout(30)")
