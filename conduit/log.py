"""``with_logging``: one structured stdlib log record per call, secrets never included.

The record's message is ``conduit call model=... latency_ms=...``; the same fields are on the
record as ``record.conduit`` (a dict) for structured handlers. Fields: model, provider,
latency_ms, input_tokens, output_tokens, attempts, cache_hit, cost, and on failure error and
status_code. Nothing from the request's connection settings (API key, headers) is ever logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

from conduit._drive import Effect
from conduit._options import Builder, configure, did_you_mean
from conduit._types import Flow, Request
from conduit.errors import ProviderError, ValidationError
from conduit.middleware import Middleware, middleware
from conduit.registry import split_model

__all__ = ["call_fields", "logging_flow", "with_logging"]


def _named(req: Mapping[str, Any]) -> tuple[str, str | None]:
    """(the bare model, the provider) a request names, through the registry; the provider is
    None when the model has no prefix and the request no ``provider`` (the handler decides)."""
    model = str(req.get("model") or "")
    given = req.get("provider")
    try:
        info, bare = split_model(model, given or "openai")
    except ValidationError:
        return model, given
    return bare, info.name if (bare != model or given) else None


def call_fields(ctx: Request, latency: float) -> dict[str, Any]:
    """Return the log fields for a finished call (pure).

    >>> import conduit as c
    >>> ctx = c.mock_call(c.request("m", "hello"))
    >>> call_fields(ctx, 0.25)["latency_ms"], call_fields(ctx, 0.25)["output_tokens"]
    (250.0, 2)
    """
    resp = ctx.get("response") or {}
    usage = resp.get("usage") or {}
    model, provider = _named(ctx)
    return {
        "model": resp.get("model") or model,
        "provider": provider,
        "latency_ms": round(latency * 1000, 3),
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
        "attempts": ctx.get("attempts", 1),
        "cache_hit": bool(ctx.get("cache_hit", False)),
        "cost": ctx.get("cost"),
    }


def _error_fields(req: Request, exc: BaseException, latency: float) -> dict[str, Any]:
    data = getattr(exc, "data", {}) or {}
    model, provider = _named(req)
    return {
        "model": model,
        "provider": provider,
        "latency_ms": round(latency * 1000, 3),
        "attempts": data.get("attempts", 1),
        "error": type(exc).__name__,
        "status_code": exc.status_code if isinstance(exc, ProviderError) else None,
    }


def _emit(logger: str, level: int, fields: dict[str, Any]) -> None:
    text = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
    logging.getLogger(logger).log(level, "conduit call %s", text, extra={"conduit": fields})


def logging_flow(req: Request, *, logger: str = "conduit", level: int = logging.INFO) -> Flow:
    """Log one record per call: fields at *level* on success, at WARNING on failure."""
    start = yield Effect(time.perf_counter)
    try:
        ctx: Request = yield req
    except Exception as exc:
        end = yield Effect(time.perf_counter)
        yield Effect(partial(_emit, logger, logging.WARNING, _error_fields(req, exc, end - start)))
        raise
    end = yield Effect(time.perf_counter)
    yield Effect(partial(_emit, logger, level, call_fields(ctx, end - start)))
    return ctx


def _level(level: Any) -> int:
    names = logging.getLevelNamesMapping()
    if isinstance(level, str) and level.upper() in names:
        return names[level.upper()]
    if isinstance(level, int) and not isinstance(level, bool) and level >= 0:
        return level
    hint = did_you_mean(level.upper(), names) if isinstance(level, str) else ""
    want = "a logging level like logging.INFO or 'DEBUG'"
    msg = f"with_logging(level=...) must be {want}, not {level!r:.40}{hint}"
    raise ValidationError(msg)


def _build(*, logger: str = "conduit", level: Any = logging.INFO) -> Middleware:
    if isinstance(logger, logging.Logger):
        logger = logger.name
    if not isinstance(logger, str) or not logger:
        raise ValidationError(f"with_logging(logger=...) must be a logger name, not {logger!r:.40}")
    return middleware(logging_flow, name="logging", logger=logger, level=_level(level))


_SPEC = Builder(
    name="with_logging", build=_build, bare=_build(), example='c.with_logging(logger="app")'
)


def with_logging(req: Any = None, /, **options: Any) -> Any:
    """Record logging middleware: bare, or ``c.with_logging(logger="app", level=logging.DEBUG)``.

    Bare, it logs to the ``"conduit"`` logger at INFO: the library's own logger, silent until
    the application turns INFO on (``logging.basicConfig(level=logging.INFO)``); failures log
    at WARNING. Put it outermost to see retries, cache hits and cost.

    >>> import logging, sys
    >>> from toolz import pipe
    >>> import conduit as c
    >>> handler = logging.StreamHandler(sys.stdout)
    >>> logging.getLogger("demo").addHandler(handler)
    >>> _ = pipe(c.request("m", "hi"), c.with_logging(logger="demo", level="WARNING"), c.mock_call)
    ... # doctest: +ELLIPSIS
    conduit call model=m ... output_tokens=1 attempts=1 cache_hit=False
    >>> logging.getLogger("demo").removeHandler(handler)
    """
    return configure(_SPEC, req, options)
