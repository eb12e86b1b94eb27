"""``with_logging``: one structured stdlib log record per call, secrets never included.

The record's message is ``conduit call model=... latency_ms=...``; the same fields are on the
record as ``record.conduit`` (a dict) for structured handlers. Fields: model, provider,
latency_ms, input_tokens, output_tokens, attempts, cache_hit, cost, and on failure error and
status_code. Nothing from the request's connection settings (API key, headers) is ever logged.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

from conduit._drive import Effect
from conduit._types import Flow, Request
from conduit.errors import ProviderError
from conduit.middleware import Middleware, configurable, middleware

__all__ = ["call_fields", "logging_flow", "with_logging"]


def call_fields(ctx: Request, latency: float) -> dict[str, Any]:
    """Return the log fields for a finished call (pure).

    >>> import conduit as c
    >>> ctx = c.mock_call(c.request("m", "hello"))
    >>> call_fields(ctx, 0.25)["latency_ms"], call_fields(ctx, 0.25)["output_tokens"]
    (250.0, 2)
    """
    resp = ctx.get("response") or {}
    usage = resp.get("usage") or {}
    return {
        "model": resp.get("model") or ctx.get("model"),
        "provider": ctx.get("provider"),
        "latency_ms": round(latency * 1000, 3),
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
        "attempts": ctx.get("attempts", 1),
        "cache_hit": bool(ctx.get("cache_hit", False)),
        "cost": ctx.get("cost"),
    }


def _error_fields(req: Request, exc: BaseException, latency: float) -> dict[str, Any]:
    data = getattr(exc, "data", {}) or {}
    return {
        "model": req.get("model"),
        "provider": req.get("provider"),
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


def _make(logger: str = "conduit", level: int = logging.INFO) -> Middleware:
    return middleware(logging_flow, name="logging", logger=logger, level=level)


with_logging = configurable(_make, "with_logging")
with_logging.__doc__ = """Record logging middleware: bare, or ``c.with_logging(logger="app",
level=logging.DEBUG)``. Put it outermost to see retries, cache hits and cost.
"""
