"""Calling any provider by name (``"anthropic:claude-sonnet-4-5"``); bare names go to OpenAI."""

from __future__ import annotations

import functools
import importlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from conduit._event import Event
from conduit._types import Request
from conduit.errors import ValidationError
from conduit.request import as_request

__all__ = [
    "PROVIDERS",
    "acall",
    "astream",
    "bare",
    "call",
    "embed",
    "reroute",
    "resolve",
    "split_model",
]

#: provider name -> module holding its ``<name>_call`` ... handlers.
PROVIDERS = {
    "openai": "conduit.providers.openai",
    "anthropic": "conduit.providers.anthropic",
    "groq": "conduit.providers.groq",
    "grok": "conduit.providers.grok",
    "xai": "conduit.providers.grok",
    "ollama": "conduit.providers.ollama",
    "mock": "conduit.providers.mock",
}
_PREFIX = {"xai": "grok"}


def split_model(model: str) -> tuple[str, str]:
    """Return (provider, model) for ``"provider:model"``; other names are OpenAI's.

    >>> split_model("anthropic:claude-sonnet-4-5")
    ('anthropic', 'claude-sonnet-4-5')
    >>> split_model("gpt-4o-mini")
    ('openai', 'gpt-4o-mini')
    >>> split_model("ollama:llama3.2:3b")
    ('ollama', 'llama3.2:3b')
    """
    prefix, sep, rest = model.partition(":")
    if sep and prefix in PROVIDERS:
        return prefix, rest
    return "openai", model


def resolve(req: Any, kind: str) -> tuple[Callable[..., Any], Request]:
    """Return (the provider's *kind* handler, the request with the bare model name)."""
    frozen = as_request(req)
    provider, model = split_model(frozen["model"])
    if frozen.get("provider"):
        provider = frozen["provider"]
    if provider not in PROVIDERS:
        raise ValidationError(
            f"unknown provider {provider!r}: use one of {', '.join(sorted(PROVIDERS))}, or "
            "openai with base_url for any OpenAI-compatible server"
        )
    name = _PREFIX.get(provider, provider)
    module = importlib.import_module(PROVIDERS[provider])
    handler = getattr(module, f"{name}_{kind}", None)
    if handler is None:
        raise ValidationError(f"provider {provider!r} has no {kind} function")
    if model != frozen["model"] or frozen.get("provider") != provider:
        # the provider is recorded, so replies and retries of this context stay with it
        frozen = frozen.update({"model": model, "provider": provider})
    return handler, frozen


def call(req: Any) -> Request:
    """Call the provider named by the request's model (``"provider:model"``) for *req*.

    >>> import conduit as c
    >>> ctx = c.call(c.request("mock:any", "hi", mock="routed"))
    >>> c.content(ctx), ctx["model"], ctx["provider"]
    ('routed', 'any', 'mock')
    """
    handler, frozen = resolve(req, "call")
    out: Request = handler(frozen)
    return out


async def acall(req: Any) -> Request:
    """The async twin of :func:`call`."""
    handler, frozen = resolve(req, "acall")
    out: Request = await handler(frozen)
    return out


def stream(req: Any) -> Iterator[Event]:
    """Stream the answer of the provider named by the request's model."""
    handler, frozen = resolve(req, "stream")
    events: Iterator[Event] = handler(frozen)
    return events


def astream(req: Any) -> AsyncIterator[Event]:
    """The async twin of :func:`stream`."""
    handler, frozen = resolve(req, "astream")
    events: AsyncIterator[Event] = handler(frozen)
    return events


def embed(model: str, texts: Sequence[str], **settings: Any) -> Any:
    """Embed *texts* with ``"provider:model"`` (OpenAI or Ollama); returns ``Embeddings``."""
    provider, bare = split_model(model)
    module = importlib.import_module(PROVIDERS[provider])
    fn = getattr(module, f"{provider}_embed", None)
    if fn is None:
        raise ValidationError(f"provider {provider!r} has no embeddings: use openai or ollama")
    return fn(texts, model=bare, **settings)


_KINDS = ("call", "acall", "stream", "astream")


def bare(provider: str, kind: str) -> Callable[[Request], Any]:
    """Return *provider*'s base handler of *kind*: the exchange itself, without middleware."""
    if provider == "mock":
        from conduit.providers import mock

        return dict(
            zip(_KINDS, (mock._send, mock._asend, mock._events, mock._aevents), strict=True)
        )[kind]
    from conduit.providers import _http

    module = importlib.import_module(PROVIDERS[provider])
    spec = getattr(module, _PREFIX.get(provider, provider).upper())
    base = dict(zip(_KINDS, (_http.send, _http.asend, _http.events, _http.aevents), strict=True))
    return functools.partial(base[kind], spec)


def reroute(
    req: Request, current: str, kind: str
) -> tuple[Callable[[Request], Any] | None, Request]:
    """Return (another provider's base handler, the request) when *req*'s model names one.

    This is what lets ``with_fallback(["anthropic:claude-haiku-4-5"])`` leave OpenAI: the
    middleware has already run, so the other provider's bare exchange is used.

    A ``"provider:"`` prefix naming *current* is stripped, with no handler returned.

    >>> from conduit import request
    >>> reroute(request("mock:x"), "openai", "call")[1]["model"]
    'x'
    >>> reroute(request("gpt-4o"), "openai", "call")[0] is None
    True
    >>> reroute(request("openai:gpt-4o"), "openai", "call")[1]["model"]
    'gpt-4o'
    """
    prefix, sep, model = req["model"].partition(":")
    if not sep or prefix not in PROVIDERS:
        return None, req
    routed: Request = req.update({"model": model, "provider": prefix})
    if _PREFIX.get(prefix, prefix) == current:
        return None, routed
    return bare(prefix, kind), routed
