"""``with_fallback``: when the call fails in a way another model could fix, try the next one.

It falls back on what :func:`~conduit.errors.is_retryable` retries (429, 408, 409, 5xx with
Anthropic's 529, timeouts, broken connections), on a 404 (``NotFoundError``: this provider
does not serve the model) and on ``ContextLengthError`` (a model with a larger window may fit).
Never on 400/422 (``BadRequestError``), 401 (``AuthenticationError``) or 403
(``PermissionDeniedError``): another model would fail the same way, or the request would go to
another provider for nothing. Nor on ``ValidationError``, ``BudgetExceededError``, a spent
``with_timeout`` deadline or an exception of your own: those are raised at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conduit._options import Builder, configure
from conduit._types import Flow, Request
from conduit.errors import ContextLengthError, NotFoundError, ValidationError, is_retryable
from conduit.middleware import Middleware, middleware
from conduit.registry import split_model
from conduit.request import connection

__all__ = ["can_fall_back", "fallback_flow", "with_fallback"]


def can_fall_back(err: BaseException) -> bool:
    """Return True when another model may succeed where this one failed with *err*.

    >>> import conduit as c
    >>> [can_fall_back(e) for e in (c.ServerError("down", status_code=503),
    ...     c.NotFoundError("no such model", status_code=404),
    ...     c.AuthenticationError("bad key", status_code=401),
    ...     c.BadRequestError("bad", status_code=400))]
    [True, True, False, False]
    """
    return is_retryable(err) or isinstance(err, NotFoundError | ContextLengthError)


def _alternative(req: Request, alt: Any) -> Request:
    if isinstance(alt, str):
        switched: Request = req.set("model", alt).discard("provider")
        return switched
    changed: Request = req.update(connection(alt))
    return changed


def fallback_flow(req: Request, *, models: Sequence[Any]) -> Flow:
    """Yield *req*, then each alternative in turn while the previous one fails recoverably.

    An alternative is a model name (``"anthropic:claude-haiku-4-5"`` switches provider too) or
    a map of request keys to change (its ``api_key``, ``headers`` and ``base_url`` go through
    the same checks and masking as :func:`~conduit.request.request`'s). The context's
    ``fallbacks`` counts the alternatives used; an error :func:`can_fall_back` refuses, or the
    last alternative's error, is raised.
    """
    candidate = req
    for used in range(len(models) + 1):
        try:
            ctx: Request = yield candidate
        except Exception as exc:
            if used == len(models) or not can_fall_back(exc):
                raise
            candidate = _alternative(req, models[used])
            continue
        return ctx.set("fallbacks", used)
    raise AssertionError("unreachable")  # pragma: no cover


NEEDS = (
    'with_fallback needs a list of models to try: c.with_fallback(["anthropic:claude-haiku-4-5"])'
)


def _build(*, models: Any = None) -> Middleware:
    if isinstance(models, str | Mapping) or not isinstance(models, Sequence) or not models:
        got = f", not {type(models).__name__}" if models is not None else ""
        raise ValidationError(NEEDS + (f", not {models!r:.60}" if isinstance(models, str) else got))
    for alt in models:
        if not isinstance(alt, str | Mapping) or not alt:
            kinds = "a model name or a map of request keys"
            raise ValidationError(f"with_fallback: each alternative is {kinds}, not {alt!r:.60}")
    frozen = tuple(alt if isinstance(alt, str) else connection(alt) for alt in models)
    for alt in frozen:  # a misspelt provider fails here, not when the fallback is first needed
        split_model(alt if isinstance(alt, str) else str(alt.get("model") or "gpt"))
    return middleware(fallback_flow, name="fallback", models=frozen)


_SPEC = Builder(name="with_fallback", build=_build, first="models", example=NEEDS.split(": ", 1)[1])


def with_fallback(models: Any = None, /, **options: Any) -> Any:
    """Return a transform trying *models* in order when the call fails recoverably.

    There is no bare form: which model to fall back to is yours to say, so ``pipe(req,
    c.with_fallback, ...)`` raises ``ValidationError`` asking for the list. Which errors fall
    back: see :func:`can_fall_back` (retryable ones, 404 and context length; never 400, 401 or
    403). A map alternative's ``api_key`` is masked like the request's own.

    >>> import conduit as c
    >>> req = c.request("mock:primary", "hi", mock=lambda r: c.ServerError("down")
    ...                 if r["model"] == "primary" else f"answered by {r['model']}")
    >>> ctx = c.call(c.with_fallback(["mock:backup"])(req))
    >>> c.content(ctx), ctx["fallbacks"]
    ('answered by backup', 1)
    >>> c.with_fallback([{"model": "b", "api_key": "sk-b"}]).__name__
    'with_fallback'
    """
    return configure(_SPEC, models, options)
