"""The one exchange: every provider call runs the request's middleware around it.

At the bottom of the stack the provider is chosen once, from the wire request's model
(``"anthropic:claude-haiku-4-5"``; other names go to the handler's own provider), through the
registry; then the provider's :class:`~conduit.providers._wire.Wire` runs: a flow of Effects for
calls and embeddings (driven by the one driver pair), or a stream shell and its decoder. So a
``with_fallback`` that switches provider needs no back-channel, and the mock goes through the
same exchange as HTTP providers.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from functools import partial
from typing import Any

from conduit._data import peek
from conduit._drive import arun_effects, run_effects
from conduit._types import Request
from conduit.embeddings import as_embeddings, embedding_request
from conduit.errors import ValidationError
from conduit.middleware import (
    AsyncStream,
    Stream,
    acall_with,
    astream_with,
    call_with,
    stream_context,
    stream_with,
)
from conduit.providers._wire import Wire
from conduit.registry import PROVIDERS, lookup, split_model
from conduit.request import as_request

__all__ = [
    "wire",
    "outbound",
    "acall",
    "aembed",
    "aexchange",
    "aexchange_stream",
    "anthropic_acall",
    "anthropic_astream",
    "anthropic_call",
    "anthropic_stream",
    "astream",
    "call",
    "embed",
    "exchange",
    "exchange_stream",
    "grok_acall",
    "grok_astream",
    "grok_call",
    "grok_stream",
    "groq_acall",
    "groq_astream",
    "groq_call",
    "groq_stream",
    "mock_acall",
    "mock_aembed",
    "mock_astream",
    "mock_call",
    "mock_embed",
    "mock_stream",
    "ollama_acall",
    "ollama_aembed",
    "ollama_astream",
    "ollama_call",
    "ollama_embed",
    "ollama_stream",
    "openai_acall",
    "openai_aembed",
    "openai_astream",
    "openai_call",
    "openai_embed",
    "openai_stream",
    "route",
    "stream",
    "wire_of",
]

_WIRES: dict[str, Wire] = {}


def wire_of(provider: str) -> Wire:
    """Return the :class:`Wire` of *provider* (its codec module is imported on first use)."""
    found = _WIRES.get(provider)
    if found is None:
        found = _WIRES[provider] = importlib.import_module(lookup(provider).codec).WIRE
    return found


def route(default: str, req: Request) -> tuple[Wire, Request]:
    """Return (the wire for *req*, *req* with the bare model name): the one provider choice.

    >>> import conduit as c
    >>> wire, sent = route("openai", c.request("mock:any"))
    >>> wire.name, sent["model"]
    ('mock', 'any')
    """
    info, bare = split_model(req["model"], peek(req, "provider", default))
    return wire_of(info.name), (req if bare == req["model"] else req.set("model", bare))


class _Captured(BaseException):
    """Carries the wire request out of a middleware stack (a BaseException: no retry, fallback
    or error handler of the stack mistakes it for a failure to handle)."""

    def __init__(self, req: Request) -> None:
        super().__init__("captured")
        self.req = req


def _capture(req: Request) -> Request:
    raise _Captured(req)


def outbound(req: Any) -> Request | None:
    """Return the request the exchange would receive for *req* after its middleware's inbound
    changes (model prefix and all), or None when a cache would answer it. Nothing is sent."""
    caller = as_request(req)
    try:
        call_with(_capture, caller) if "middleware" in caller else _capture(caller)
    except _Captured as got:
        return got.req
    return None


def wire(req: Any, stream: bool = False) -> dict[str, Any]:
    """Return the HTTP request a call of *req* would send, without sending it: ``{"provider",
    "method", "url", "headers", "body"}``, after the middleware's changes on the way in
    (windowing, retrieved context, schema formats), with every secret in the headers masked.
    The provider is chosen from the model as ``c.call`` chooses it. The middleware runs as for
    a call up to the exchange (a rate limiter counts it; a budget's reservation is released).
    A cache hit sends nothing: then ``{"cache_hit": True, "response": ...}``. A missing key is
    reported under ``"missing"``, not raised.

    >>> import conduit as c
    >>> sent = c.wire(c.request("anthropic:claude-haiku-4-5", [c.system("S"), c.user("Hi")],
    ...                         api_key="sk-ant-secret"))
    >>> sent["url"], sent["headers"]["x-api-key"], sent["body"]["system"]
    ('https://api.anthropic.com/v1/messages', '***', 'S')
    """
    caller = as_request(req)
    try:
        ctx = call_with(_capture, caller) if "middleware" in caller else _capture(caller)
    except _Captured as got:
        chosen, sent = route("openai", got.req)
        if chosen.preview is None:
            raise ValidationError(
                f"{chosen.name} sends nothing over HTTP: there is no wire request to show"
            ) from None
        return chosen.preview(sent, stream)
    return {"cache_hit": True, "response": ctx.get("response")}


def _flow_of(wire: Wire, kind: str) -> Callable[[Request], Any]:
    flow = wire.call if kind == "call" else wire.embed
    if flow is None:
        embedders = ", ".join(p.name for p in PROVIDERS if p.embeddings)
        raise ValidationError(f"{wire.name} has no embeddings: use one of {embedders}")
    return flow


def exchange(default: str, kind: str, req: Request) -> Request:
    """Perform one call (*kind* ``"call"`` or ``"embed"``) for *req*: the request it was given
    plus ``response`` (a wire returns its request plus response, tested for every provider, so
    only a stripped ``provider:`` prefix needs putting back)."""
    wire, sent = route(default, req)
    out: Request = run_effects(wire.name, _flow_of(wire, kind)(sent))
    return out if sent is req else req.set("response", out["response"])


async def aexchange(default: str, kind: str, req: Request) -> Request:
    """The async twin of :func:`exchange`."""
    wire, sent = route(default, req)
    out: Request = await arun_effects(wire.name, _flow_of(wire, kind)(sent))
    return out if sent is req else req.set("response", out["response"])


def exchange_stream(default: str, req: Request, done: bool = True) -> Iterator[Any]:
    """Yield the events of a streamed call for the wire request *req*, then ``Done`` (unless
    *done* is false: no middleware is waiting for the final context)."""
    wire, sent = route(default, req)
    decoder = wire.decoder(req)  # its final context: the request it was given, plus response
    for raw in wire.open(sent):
        yield from decoder.feed(raw)
    yield from decoder.finish()[: None if done else -1]


async def aexchange_stream(default: str, req: Request, done: bool = True) -> AsyncIterator[Any]:
    """The async twin of :func:`exchange_stream`."""
    wire, sent = route(default, req)
    decoder = wire.decoder(req)
    async for raw in wire.aopen(sent):
        for event in decoder.feed(raw):
            yield event
    for event in decoder.finish()[: None if done else -1]:
        yield event


def _named(fn: Any, name: str, doc: str) -> Any:
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = __name__
    fn.__doc__ = doc
    return fn


def _key_note(provider: str) -> str:
    info = lookup(provider)
    if info.env_key is None:
        return " No API key is needed."
    return f" The key comes from the request's ``api_key`` or ``{info.env_key}``."


def handlers(
    provider: str, prefix: str | None = None
) -> tuple[
    Callable[[Any], Request],
    Callable[[Any], Awaitable[Request]],
    Callable[[Any], Stream],
    Callable[[Any], AsyncStream],
]:
    """Return *provider*'s call, acall, stream and astream handlers, named ``<prefix>_<kind>``.

    Each runs the request's middleware around the one exchange; it is bound in this module under
    its name, so it pickles by reference (Dask, multiprocessing).
    """
    base = partial(exchange, provider, "call")
    abase = partial(aexchange, provider, "call")
    sbase = partial(exchange_stream, provider)
    asbase = partial(aexchange_stream, provider)
    stem = f"{provider}_" if prefix is None else prefix
    title = lookup(provider).title if prefix is None else "the provider the model names"
    note = _key_note(provider) if prefix is None else ""

    def call_(req: Any) -> Request:
        caller = as_request(req)
        if "middleware" not in caller:
            return exchange(provider, "call", caller)
        return call_with(base, caller)

    async def acall_(req: Any) -> Request:
        caller = as_request(req)
        if "middleware" not in caller:
            return await aexchange(provider, "call", caller)
        return await acall_with(abase, caller)

    def stream_(req: Any) -> Stream:
        caller = as_request(req)
        if "middleware" not in caller:  # nothing to stack: the exchange's events, as they come
            return Stream(exchange_stream(provider, caller), stream_context(caller))
        return Stream(stream_with(sbase, caller, keep_done=True), stream_context(caller))

    def astream_(req: Any) -> AsyncStream:
        caller = as_request(req)
        if "middleware" not in caller:
            return AsyncStream(aexchange_stream(provider, caller), stream_context(caller))
        return AsyncStream(astream_with(asbase, caller, keep_done=True), stream_context(caller))

    return (
        _named(call_, stem + "call", f"Call {title} for *req*, inside its middleware.{note}"),
        _named(acall_, stem + "acall", f"Call {title} for *req* (async), inside its middleware."),
        _named(
            stream_,
            stem + "stream",
            f"Stream the answer of {title} to *req* as events (a :class:`Stream`: once read, "
            "its ``ctx`` is the final context).",
        ),
        _named(astream_, stem + "astream", f"Stream {title}'s answer to *req* (async)."),
    )


def _embed_request(provider: str, req: Any, model: Any, settings: Any) -> Request:
    if isinstance(req, Mapping):
        if model is not None or settings:
            raise ValidationError("pass settings to c.embedding_request, not to the handler")
        frozen = as_request(req)
        if "input" not in frozen:
            raise ValidationError(
                "this is not an embedding request (it has no 'input' texts): build one with "
                "c.embedding_request(model, texts)"
            )
        return frozen
    if isinstance(req, str) and isinstance(model, list | tuple):  # the 0.1 form: (model, texts)
        req, model = model, req
    chosen = model or lookup(provider).embed_model or ""
    return embedding_request(chosen, req, **settings)


def embedders(
    provider: str, prefix: str | None = None
) -> tuple[Callable[..., Any], Callable[..., Awaitable[Any]]]:
    """Return *provider*'s embed and aembed handlers.

    Given an embedding request (``c.embedding_request``) they return the context (read it with
    ``c.vectors``); given a list of texts (``openai_embed(["a", "b"], model=...)``, the
    shortcut) they return :class:`~conduit.embeddings.Embeddings`.
    """
    base = partial(exchange, provider, "embed")
    abase = partial(aexchange, provider, "embed")
    stem = f"{provider}_" if prefix is None else prefix

    def embed_(req: Any, model: Any = None, **settings: Any) -> Any:
        built = _embed_request(provider, req, model, settings)
        ctx = (
            exchange(provider, "embed", built)
            if "middleware" not in built
            else call_with(base, built)
        )
        return ctx if isinstance(req, Mapping) else as_embeddings(ctx)

    async def aembed_(req: Any, model: Any = None, **settings: Any) -> Any:
        built = _embed_request(provider, req, model, settings)
        ctx = await acall_with(abase, built)
        return ctx if isinstance(req, Mapping) else as_embeddings(ctx)

    doc = "Embed the texts of an embedding request inside its middleware (or a list of texts)."
    return _named(embed_, stem + "embed", doc), _named(aembed_, stem + "aembed", doc)


openai_call, openai_acall, openai_stream, openai_astream = handlers("openai")
anthropic_call, anthropic_acall, anthropic_stream, anthropic_astream = handlers("anthropic")
groq_call, groq_acall, groq_stream, groq_astream = handlers("groq")
grok_call, grok_acall, grok_stream, grok_astream = handlers("grok")
ollama_call, ollama_acall, ollama_stream, ollama_astream = handlers("ollama")
responses_call, responses_acall, responses_stream, responses_astream = handlers("responses")
azure_call, azure_acall, azure_stream, azure_astream = handlers("azure")
gemini_call, gemini_acall, gemini_stream, gemini_astream = handlers("gemini")
bedrock_call, bedrock_acall, bedrock_stream, bedrock_astream = handlers("bedrock")
mistral_call, mistral_acall, mistral_stream, mistral_astream = handlers("mistral")
deepseek_call, deepseek_acall, deepseek_stream, deepseek_astream = handlers("deepseek")
openrouter_call, openrouter_acall, openrouter_stream, openrouter_astream = handlers("openrouter")
together_call, together_acall, together_stream, together_astream = handlers("together")
fireworks_call, fireworks_acall, fireworks_stream, fireworks_astream = handlers("fireworks")
mock_call, mock_acall, mock_stream, mock_astream = handlers("mock")
call, acall, stream, astream = handlers("openai", prefix="")
openai_embed, openai_aembed = embedders("openai")
ollama_embed, ollama_aembed = embedders("ollama")
mistral_embed, mistral_aembed = embedders("mistral")
gemini_embed, gemini_aembed = embedders("gemini")
azure_embed, azure_aembed = embedders("azure")
mock_embed, mock_aembed = embedders("mock")
embed, aembed = embedders("openai", prefix="")
