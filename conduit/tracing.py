"""``with_tracing``: OpenTelemetry spans for calls, attempts, agents, tools and graph nodes.

The spans follow the OpenTelemetry semantic conventions for generative AI, v1.41.0
(``gen-ai-spans.md`` and ``gen-ai-agent-spans.md``, status: development)::

    invoke_agent                 INTERNAL  an agent's loop (c.agent, aagent, agent_stream, ...)
    ├── chat gpt-4o-mini         CLIENT    one per call: the request, the answer, token usage
    │   ├── attempt 1            INTERNAL  each time the call reached the provider (retries,
    │   └── attempt 2                      fallbacks), its error recorded
    └── execute_tool add         INTERNAL  one per tool run
    node draft                   INTERNAL  one per graph node run (c.with_tracing(graph))

``with_tracing`` records two middleware: ``tracing`` (outermost: the call span, which it leaves
on the wire request under ``conduit/observer`` for the layers inside) and ``tracing.attempt``
(innermost: a span each time the request reaches the exchange). Its scope wraps an agent's loop
in ``invoke_agent``; tool runs report to the observer (:mod:`conduit.tools`). The
``opentelemetry-api`` package is imported only when tracing is asked for.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
from pyrsistent import PMap, pmap

from conduit._data import thaw
from conduit._drive import Effect
from conduit._options import check_keywords, is_request
from conduit._types import Flow, Request
from conduit.errors import MaxIterationsError, ProviderError, ValidationError
from conduit.middleware import OBSERVER, Middleware, add_middleware, middleware

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["SEMCONV_VERSION", "Scope", "attempt_flow", "tracing_flow", "with_tracing"]

#: The version of the GenAI semantic conventions these spans follow.
SEMCONV_VERSION = "1.41.0"

NEEDS = 'with_tracing needs OpenTelemetry: pip install "conduit-llm[tracing]"'

#: Conduit's provider names as the conventions spell them (others are used as they are).
PROVIDER_NAMES = {
    "openai": "openai",
    "responses": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "groq": "groq",
    "grok": "x_ai",
    "deepseek": "deepseek",
}

#: Request options and the attributes that record them.
OPTION_ATTRIBUTES = {
    "max_tokens": ("gen_ai.request.max_tokens", int),
    "temperature": ("gen_ai.request.temperature", float),
    "top_p": ("gen_ai.request.top_p", float),
    "top_k": ("gen_ai.request.top_k", float),
    "frequency_penalty": ("gen_ai.request.frequency_penalty", float),
    "presence_penalty": ("gen_ai.request.presence_penalty", float),
    "seed": ("gen_ai.request.seed", int),
}

USAGE_ATTRIBUTES = {
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "cache_read_tokens": "gen_ai.usage.cache_read.input_tokens",
    "cache_creation_tokens": "gen_ai.usage.cache_creation.input_tokens",
    "reasoning_tokens": "gen_ai.usage.reasoning.output_tokens",
}


def _otel() -> Any:
    """The ``opentelemetry.trace`` module, imported on first use; a ValidationError without it."""
    try:
        from opentelemetry import trace
    except ImportError:
        raise ValidationError(NEEDS) from None
    return trace


def _tracer(provider: Any) -> Tracer:
    trace = _otel()
    tracer: Tracer = (trace.get_tracer_provider() if provider is None else provider).get_tracer(
        "conduit", schema_url=f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
    )
    return tracer


def _now(fn: Callable[..., Any], *args: Any) -> Effect:
    """An Effect calling ``fn(*args)`` in the driver's own thread or task, sync or async."""
    return Effect(partial(fn, *args), partial(_aimmediate, fn, args))


async def _aimmediate(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    return fn(*args)


def _named(req: Mapping[str, Any]) -> tuple[str, str]:
    """(the bare model, the provider as the conventions name it) for *req*: from its prefix or
    ``provider``, else the model catalog's provider for the model, else ``_OTHER``."""
    from conduit import catalog
    from conduit.registry import split_model

    model = str(req.get("model") or "")
    given = req.get("provider")
    try:
        info, bare = split_model(model, given or "openai")
    except ValidationError:
        return model, str(given or "_OTHER")
    if bare != model or given:
        name = info.name
    else:
        found = catalog.lookup(bare)
        name = found.provider if found is not None else "_OTHER"
    return bare, PROVIDER_NAMES.get(name, name)


def _error_type(exc: BaseException) -> str:
    kind = type(exc)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _record_error(span: Span, exc: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", _error_type(exc))
    if isinstance(exc, ProviderError) and exc.status_code:
        span.set_attribute("http.response.status_code", int(exc.status_code))
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def _fail(span: Span, exc: BaseException) -> None:
    _record_error(span, exc)
    span.end()


def _stopped(span: Span, exc: BaseException) -> None:
    """End *span* for a flow closed without an answer: a stream abandoned by its consumer (or a
    call cancelled: an error); a wire preview (``c.wire``) leaves its span unended, unexported."""
    from conduit.exchange import _Captured

    cause = exc.__context__ if isinstance(exc, GeneratorExit) else exc
    if isinstance(cause, _Captured):
        return
    if cause is None or isinstance(cause, GeneratorExit):
        span.set_attribute("conduit.abandoned", True)
        span.end()
        return
    _fail(span, cause)


def _text(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    parts = []
    for block in content or ():
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            parts.append({"type": "text", "content": block.get("text", "")})
        elif kind:
            parts.append({"type": str(kind)})  # media and documents: the kind, never the bytes
    return parts


def _message(msg: Mapping[str, Any], finish: str | None = None) -> dict[str, Any]:
    """A Conduit message in the conventions' input/output messages JSON schema."""
    if msg.get("role") == "tool":
        parts: list[dict[str, Any]] = [
            {"type": "tool_call_response", "id": msg.get("tool_call_id"), "result": msg["content"]}
        ]
    else:
        parts = _text(msg.get("content"))
        parts += [
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": call.get("name"),
                "arguments": thaw(call.get("arguments")),
            }
            for call in msg.get("tool_calls") or ()
        ]
    out = {"role": msg.get("role", "assistant"), "parts": parts}
    return out if finish is None else {**out, "finish_reason": finish}


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


class Scope:
    """What a traced call, agent or node leaves under ``conduit/observer``: its span, the tracer
    that made it, whether contents are recorded, and what the attempts below it found."""

    __slots__ = ("answered_by", "attempts", "capture", "span", "tracer")

    def __init__(self, tracer: Tracer, span: Span, capture: bool) -> None:
        self.tracer, self.span, self.capture = tracer, span, capture
        self.attempts = 0
        self.answered_by: str | None = None

    def child(self, name: str, attributes: dict[str, Any]) -> Span:
        """Start an INTERNAL span under this scope's span."""
        trace = _otel()
        return self.tracer.start_span(
            name,
            context=trace.set_span_in_context(self.span),
            kind=trace.SpanKind.INTERNAL,
            attributes=attributes,
        )

    def attempt(self, req: Request) -> Span:
        """Start the span of one attempt of this call (the wire request *req*)."""
        self.attempts += 1
        model, provider = _named(req)
        attributes = {
            "conduit.attempt": self.attempts,
            "gen_ai.request.model": model,
            "gen_ai.provider.name": provider,
        }
        return self.child(f"attempt {self.attempts}", attributes)

    def answered(self, span: Span, req: Request, ctx: Request) -> None:
        """End an attempt's span: it answered (the model and provider it went to are the call's)."""
        model, provider = _named(req)
        self.answered_by = f"{provider}:{model}"
        resp = ctx.get("response") or {}
        if resp.get("model"):
            span.set_attribute("gen_ai.response.model", str(resp["model"]))
        span.end()

    @contextmanager
    def tool(self, call: Mapping[str, Any], spec: Mapping[str, Any] | None) -> Iterator[Seen]:
        """An ``execute_tool {name}`` span around one tool run, current while the tool runs (so
        a traced call the tool makes nests under it)."""
        from opentelemetry import context

        name = str(call.get("name"))
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.type": "function",
        }
        if call.get("id"):
            attributes["gen_ai.tool.call.id"] = str(call["id"])
        if spec is not None and spec.get("description"):
            attributes["gen_ai.tool.description"] = str(spec["description"])
        if self.capture:
            attributes["gen_ai.tool.call.arguments"] = _json(thaw(call.get("arguments") or {}))
        span = self.child(f"execute_tool {name}", attributes)
        token = context.attach(_otel().set_span_in_context(span))
        try:
            yield Seen(span, self.capture)
        except BaseException as exc:
            _record_error(span, exc)
            raise
        finally:
            context.detach(token)
            span.end()


class Seen:
    """Records one tool run's outcome on its span: ``seen(message)``; ``seen.error`` is the
    exception the tool raised, if it did."""

    __slots__ = ("capture", "error", "span")

    def __init__(self, span: Span, capture: bool) -> None:
        self.span, self.capture = span, capture
        self.error: BaseException | None = None

    def __call__(self, msg: Any) -> Any:
        if msg.get("is_error"):
            from opentelemetry.trace import Status, StatusCode

            if self.error is not None:
                _record_error(self.span, self.error)
            else:  # no such tool, or arguments that do not fit: the model is told
                self.span.set_attribute("error.type", "invalid_tool_call")
                self.span.set_status(Status(StatusCode.ERROR, "invalid_tool_call"))
        elif self.capture:
            self.span.set_attribute("gen_ai.tool.call.result", str(msg.get("content")))
        return msg


def _request_attributes(req: Request, operation: str) -> tuple[str, dict[str, Any]]:
    model, provider = _named(req)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    options = req.get("options") or {}
    for key, (name, kind) in OPTION_ATTRIBUTES.items():
        value = options.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[name] = kind(value)
    stop = options.get("stop")
    if stop:
        attributes["gen_ai.request.stop_sequences"] = (
            [stop] if isinstance(stop, str) else [str(s) for s in stop]
        )
    return model, attributes


def _start_call(req: Request, parent: Any, provider: Any, capture: bool) -> Scope:
    trace = _otel()
    operation = "embeddings" if req.get("input") is not None else "chat"
    model, attributes = _request_attributes(req, operation)
    if capture and operation == "chat":
        attributes["gen_ai.input.messages"] = _json([_message(m) for m in req["messages"]])
    tracer = parent.tracer if isinstance(parent, Scope) and provider is None else _tracer(provider)
    span = tracer.start_span(
        f"{operation} {model}".strip(),
        context=trace.set_span_in_context(parent.span) if isinstance(parent, Scope) else None,
        kind=trace.SpanKind.CLIENT,
        attributes=attributes,
    )
    return Scope(tracer, span, capture)


def _finish_call(scope: Scope, ctx: Request) -> None:
    span = scope.span
    resp = ctx.get("response") or {}
    hit = bool(ctx.get("cache_hit"))
    attributes: dict[str, Any] = {"conduit.attempts": scope.attempts, "conduit.cache_hit": hit}
    if resp.get("model"):
        attributes["gen_ai.response.model"] = str(resp["model"])
    if resp.get("id"):
        attributes["gen_ai.response.id"] = str(resp["id"])
    if resp.get("stop_reason"):
        attributes["gen_ai.response.finish_reasons"] = [str(resp["stop_reason"])]
    if not hit:  # a cached answer spent no tokens
        usage = resp.get("usage") or {}
        for key, name in USAGE_ATTRIBUTES.items():
            if isinstance(usage.get(key), int):
                attributes[name] = usage[key]
    if scope.answered_by is not None:
        attributes["conduit.answered_by"] = scope.answered_by
    if isinstance(ctx.get("fallbacks"), int):
        attributes["conduit.fallbacks"] = ctx["fallbacks"]
    if isinstance(ctx.get("cost"), int | float):
        attributes["conduit.cost_usd"] = float(ctx["cost"])
    if scope.capture and "content" in resp:
        finish = str(resp.get("stop_reason") or "")
        attributes["gen_ai.output.messages"] = _json([_message(resp, finish)])
    span.set_attributes(attributes)
    if hit:
        span.add_event("conduit.cache_hit", {"conduit.cache_hit": True})
    span.end()


def tracing_flow(
    req: Request, *, tracer_provider: Any = None, capture_content: bool = False
) -> Flow:
    """Trace one call: a CLIENT span ``{operation} {model}`` around everything inside it, left
    on the wire request under ``conduit/observer`` for the layers below (:func:`attempt_flow`).

    Its parent is the observer already on the request (an agent's ``invoke_agent``), else the
    current OpenTelemetry span.
    """
    scope = yield _now(_start_call, req, req.get(OBSERVER), tracer_provider, capture_content)
    try:
        ctx: Request = yield req.set(OBSERVER, scope)
    except Exception as exc:
        yield _now(_fail, scope.span, exc)
        raise
    except BaseException as exc:  # closed: an abandoned stream, a cancelled call
        _stopped(scope.span, exc)  # a closed flow cannot yield
        raise
    yield _now(_finish_call, scope, ctx)
    return ctx


def attempt_flow(req: Request) -> Flow:
    """Trace each time the call reaches the exchange: an ``attempt {n}`` span under the call's,
    with the model and provider it went to, and its error if it failed."""
    scope = req.get(OBSERVER)
    if type(scope) is not Scope:  # not traced here (an observer this layer does not know)
        passed: Request = yield req
        return passed
    span = yield _now(scope.attempt, req)
    try:
        ctx: Request = yield req
    except Exception as exc:
        yield _now(_fail, span, exc)
        raise
    except BaseException as exc:
        _stopped(span, exc)
        raise
    yield _now(scope.answered, span, req, ctx)
    return ctx


def _relay(flow: Generator[Any, Any, Any], each: Callable[[Any], Any]) -> Generator[Any, Any, Any]:
    """Run *flow*, yielding ``each(item)`` for what it yields and passing answers and errors
    back; closing the relay closes *flow*."""
    try:
        item: Any = next(flow)
        while True:
            try:
                sent = yield each(item)
            except GeneratorExit:
                flow.close()
                raise
            except BaseException as exc:
                item = flow.throw(exc)
            else:
                item = flow.send(sent)
    except StopIteration as stop:
        return stop.value


def _forward(flow: Flow, scope: Scope) -> Flow:
    """Run *flow*, yielding what it yields; the requests it sends report to *scope*."""

    def report(item: Any) -> Any:  # a request: its call reports to this scope
        return item.set(OBSERVER, scope) if isinstance(item, PMap) else item

    done: Request = yield from _relay(flow, report)
    return done


def _start_agent(req: Request, provider: Any, capture: bool) -> Scope:
    trace = _otel()
    _, attributes = _request_attributes(req, "invoke_agent")
    if capture:
        attributes["gen_ai.input.messages"] = _json([_message(m) for m in req["messages"]])
    tracer = _tracer(provider)
    span = tracer.start_span("invoke_agent", kind=trace.SpanKind.INTERNAL, attributes=attributes)
    return Scope(tracer, span, capture)


def _finish_agent(scope: Scope, ctx: Any) -> None:
    if isinstance(ctx, Mapping):
        if isinstance(ctx.get("iterations"), int):
            scope.span.set_attribute("conduit.iterations", ctx["iterations"])
        resp = ctx.get("response") or {}
        if scope.capture and "content" in resp:
            finish = str(resp.get("stop_reason") or "")
            scope.span.set_attribute("gen_ai.output.messages", _json([_message(resp, finish)]))
    scope.span.end()


def agent_scope(
    kind: str,
    req: Request,
    flow: Flow,
    *,
    tracer_provider: Any = None,
    capture_content: bool = False,
) -> Flow:
    """Wrap an agent's loop in an ``invoke_agent`` span: its calls and tool runs are children."""
    scope = yield _now(_start_agent, req, tracer_provider, capture_content)
    try:
        done = yield from _forward(flow, scope)
    except Exception as exc:
        if isinstance(exc, MaxIterationsError) and isinstance(exc.ctx, PMap):
            exc.ctx = exc.ctx.discard(OBSERVER)
        yield _now(_fail, scope.span, exc)
        raise
    except BaseException as exc:
        _stopped(scope.span, exc)
        raise
    yield _now(_finish_agent, scope, done)
    return done.discard(OBSERVER) if isinstance(done, PMap) else done


def _within(span: Span, run: Callable[[], Any]) -> Any:
    from opentelemetry import context

    token = context.attach(_otel().set_span_in_context(span))
    try:
        return run()
    finally:
        context.detach(token)


async def _awithin(span: Span, effect: Effect) -> Any:
    import asyncio

    from opentelemetry import context

    token = context.attach(_otel().set_span_in_context(span))
    try:
        if effect.arun is not None:
            return await effect.arun()
        return await asyncio.to_thread(effect.run)  # the thread gets a copy of this context
    finally:
        context.detach(token)


def _current(flow: Generator[Any, Any, Any], span: Span) -> Generator[Any, Any, Any]:
    """Run *flow* (a workflow step's), performing each Effect it yields with *span* current."""

    def within(item: Any) -> Any:
        if isinstance(item, Effect):
            return Effect(partial(_within, span, item.run), partial(_awithin, span, item))
        return item

    return (yield from _relay(flow, within))


def _start_node(name: str, provider: Any) -> Span:
    trace = _otel()
    span: Span = _tracer(provider).start_span(
        f"node {name}", kind=trace.SpanKind.INTERNAL, attributes={"conduit.graph.node": name}
    )
    return span


def _node_flow(
    name: str, inner: Callable[[Any], Flow], provider: Any, state: Any
) -> Generator[Any, Any, Any]:
    span = yield _now(_start_node, name, provider)
    try:
        out = yield from _current(inner(state), span)
    except Exception as exc:
        yield _now(_fail, span, exc)
        raise
    except BaseException as exc:
        _stopped(span, exc)
        raise
    yield _now(span.end)
    return out


def _is_graph(value: Any) -> bool:
    return attrs.has(type(value)) and hasattr(value, "edges") and hasattr(value, "nodes")


def _traced_graph(g: Any, tracer_provider: Any) -> Any:
    """*g* with each node's step traced: a ``node {name}`` span per run, current while it runs."""
    nodes = {
        name: attrs.evolve(s, flow=partial(_node_flow, name, s.flow, tracer_provider))
        for name, s in g.nodes.items()
    }
    return attrs.evolve(g, nodes=pmap(nodes))


@attrs.frozen
class _Built:
    call: Middleware
    attempt: Middleware
    tracer_provider: Any


_BARE: list[_Built] = []


def _build(options: Mapping[str, Any]) -> _Built:
    _otel()  # every use checks: the extra may be missing
    if not options and _BARE:
        return _BARE[0]
    check_keywords("with_tracing", options, ("tracer_provider", "capture_content"))
    provider = options.get("tracer_provider")
    capture = options.get("capture_content", False)
    if provider is not None and not callable(getattr(provider, "get_tracer", None)):
        msg = f"with_tracing(tracer_provider=...) must be a TracerProvider, not {provider!r:.40}"
        raise ValidationError(msg)
    if not isinstance(capture, bool):
        msg = f"with_tracing(capture_content=...) must be True or False, not {capture!r:.40}"
        raise ValidationError(msg)
    call = middleware(
        tracing_flow,
        name="tracing",
        outermost=True,
        scope=agent_scope,
        tracer_provider=provider,
        capture_content=capture,
    )
    built = _Built(call, middleware(attempt_flow, name="tracing.attempt", innermost=True), provider)
    if not options:
        _BARE.append(built)
    return built


def _apply(built: _Built, target: Any) -> Any:
    if _is_graph(target):
        return _traced_graph(target, built.tracer_provider)
    return add_middleware(add_middleware(target, built.call), built.attempt)


def with_tracing(target: Any = None, /, **options: Any) -> Any:
    """Trace calls with OpenTelemetry: bare, or ``c.with_tracing(tracer_provider=...,
    capture_content=True)``; on a request (a span per call, its attempts, an agent's loop and
    tool runs) or on a ``c.graph`` (a span per node run).

    Spans go to *tracer_provider*, else the global one. Message contents (the conversation, the
    answer, tool arguments and results) are recorded only with ``capture_content=True``; API
    keys and headers never are. Needs ``pip install "conduit-llm[tracing]"``.

    >>> from toolz import pipe
    >>> import conduit as c
    >>> req = pipe(c.request("m", "hi"), c.with_tracing)
    >>> [m.name for m in req["middleware"]]
    ['tracing', 'tracing.attempt']
    >>> c.content(c.mock_call(req))
    'hi'
    """
    if target is not None and (is_request(target) or _is_graph(target)):
        return _apply(_build(options), target)
    if target is not None:
        raise ValidationError(
            "with_tracing takes a request or a graph, and keyword options: "
            "c.with_tracing(tracer_provider=provider, capture_content=True)"
        )
    transform: Any = functools.partial(_apply, _build(options))
    transform.__name__ = transform.__qualname__ = "with_tracing"
    return transform
