"""``with_fallback``: when the call fails, try the next model or provider."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conduit._data import freeze_map
from conduit._options import Builder, configure
from conduit._types import Flow, Request
from conduit.errors import BudgetExceededError, ValidationError
from conduit.middleware import Middleware, middleware

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


NEEDS = (
    'with_fallback needs a list of models to try: c.with_fallback(["anthropic:claude-haiku-4-5"])'
)


def _build(*, models: Any = None) -> Middleware:
    if isinstance(models, str | Mapping) or not isinstance(models, Sequence) or not models:
        raise ValidationError(f"{NEEDS}, not {models!r:.60}" if models is not None else NEEDS)
    for alt in models:
        if not isinstance(alt, str | Mapping) or not alt:
            kinds = "a model name or a map of request keys"
            raise ValidationError(f"with_fallback: each alternative is {kinds}, not {alt!r:.60}")
    return middleware(fallback_flow, name="fallback", models=tuple(models))


_SPEC = Builder(name="with_fallback", build=_build, first="models", example=NEEDS.split(": ", 1)[1])


def with_fallback(models: Any = None, /, **options: Any) -> Any:
    """Return a transform trying *models* in order when the call fails.

    There is no bare form: which model to fall back to is yours to say, so ``pipe(req,
    c.with_fallback, ...)`` raises ``ValidationError`` asking for the list.

    >>> import conduit as c
    >>> req = c.request("mock:primary", "hi", mock=lambda r: c.ServerError("down")
    ...                 if r["model"] == "primary" else f"answered by {r['model']}")
    >>> ctx = c.call(c.with_fallback(["mock:backup"])(req))
    >>> c.content(ctx), ctx["fallbacks"]
    ('answered by backup', 1)
    """
    return configure(_SPEC, models, options)
