"""``with_fallback``: when the call fails, try the next model or provider."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conduit._data import freeze_map
from conduit._types import Flow, Request
from conduit.errors import BudgetExceededError, ValidationError
from conduit.middleware import Middleware, configurable, middleware

__all__ = ["fallback_flow", "with_fallback"]

# Errors about the request itself, or its budget: another model would fail the same way.
FINAL = (ValidationError, BudgetExceededError)


def _alternative(req: Request, alt: Any) -> Request:
    if isinstance(alt, str):
        switched: Request = req.set("model", alt).discard("provider")
        return switched
    changed: Request = req.update(freeze_map(dict(alt)))
    return changed


def fallback_flow(req: Request, *, models: Sequence[Any]) -> Flow:
    """Yield *req*, then each alternative in turn while the previous one fails.

    An alternative is a model name (``"anthropic:claude-haiku-4-5"`` switches provider too) or
    a map of request keys to change. The context's ``fallbacks`` counts the alternatives used;
    the last error is raised when every one fails.
    """
    candidates = [req, *(_alternative(req, alt) for alt in models)]
    for used, candidate in enumerate(candidates):
        try:
            ctx: Request = yield candidate
        except FINAL:
            raise
        except Exception:
            if used == len(candidates) - 1:
                raise
            continue
        return ctx.set("fallbacks", used)
    raise AssertionError("unreachable")  # pragma: no cover


def _make(models: Sequence[Any] = (), **extra: Any) -> Middleware:
    if extra or not models or isinstance(models, str):
        raise ValidationError(
            'with_fallback needs a list of models: c.with_fallback(["anthropic:claude-haiku-4-5"])'
        )
    return middleware(fallback_flow, name="fallback", models=tuple(models))


_configurable = configurable(_make, "with_fallback")


def with_fallback(models: Any = None, /, **options: Any) -> Any:
    """Return a transform trying *models* in order when the call fails.

    >>> import conduit as c
    >>> req = c.request("mock:primary", "hi", mock=lambda r: c.ServerError("down")
    ...                 if r["model"] == "primary" else f"answered by {r['model']}")
    >>> ctx = c.call(c.with_fallback(["mock:backup"])(req))
    >>> c.content(ctx), ctx["fallbacks"]
    ('answered by backup', 1)
    """
    if models is None:
        return _configurable(**options)
    if isinstance(models, str) or not isinstance(models, Sequence):
        raise ValidationError(
            'with_fallback needs a list of models: c.with_fallback(["anthropic:claude-haiku-4-5"])'
        )
    return _configurable(models=models, **options)
