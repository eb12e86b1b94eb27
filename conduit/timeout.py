"""``with_timeout``: one deadline for the whole call, retries and their waits included."""

from __future__ import annotations

from typing import Any

from conduit._options import Builder, configure, number
from conduit._types import Flow, Request
from conduit.middleware import Middleware, middleware

__all__ = ["DEFAULT_SECONDS", "timeout_flow", "with_timeout"]

#: Bare ``with_timeout``: a minute for the call, every retry and wait included.
DEFAULT_SECONDS = 60.0


def timeout_flow(req: Request, *, seconds: float) -> Flow:
    """Ask the driver for a deadline *seconds* from now (never later than one already set)."""
    ctx: Request = yield req.set("conduit/deadline_in", seconds)
    return ctx


def _build(*, seconds: float = DEFAULT_SECONDS) -> Middleware:
    return middleware(
        timeout_flow, name="timeout", seconds=number("with_timeout", "seconds", seconds)
    )


_SPEC = Builder(
    name="with_timeout",
    build=_build,
    bare=_build(),
    first="seconds",
    example="c.with_timeout(30)",
    hints={"timeout": "pass the seconds: c.with_timeout(30)"},
)


def with_timeout(seconds: Any = None, /, **options: Any) -> Any:
    """Return a transform giving the call *seconds* in all (``pipe(req, c.with_timeout(30), ...)``).

    The deadline covers every attempt of an outer ``with_retry`` and the waits between them;
    when it passes, the call raises ``TimeoutError`` (with ``data["deadline_exceeded"]``),
    which no retry repeats. Put it outermost to bound the whole call. Bare, the call gets
    60 s: an interactive answer, retries included, that has not come in a minute is better
    failed than waited on (the HTTP client alone allows 10 minutes per read); pass more for
    long generations and reasoning models.

    >>> import conduit as c
    >>> req = c.request("m", "hi", mock=c.mock_script("late", delay=1.0))
    >>> c.mock_call(c.with_timeout(0.05)(req))
    Traceback (most recent call last):
    conduit.errors.TimeoutError: mock: the call's deadline passed while waiting for the answer
    >>> c.with_timeout(float("nan"))
    Traceback (most recent call last):
    conduit.errors.ValidationError: with_timeout(seconds=...) must be a finite number > 0, not nan
    """
    return configure(_SPEC, seconds, options)
