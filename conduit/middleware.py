"""Middleware as data: a flow recorded on the request, stacked around the call by handlers.

A *flow* is a generator function ``flow(req, **options)``: code before ``yield`` is the enter
stage, code after it the leave stage, ``try``/``except`` around it the error stage, ``return``
before yielding terminates, and yielding again re-enters (retries) the inner handler.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Mapping
from typing import Any

import attrs
from pyrsistent import PMap, PVector, pmap, pvector

from conduit._data import freeze_map
from conduit._drive import (
    AsyncStreamFn,
    Done,
    StreamFn,
    adrive,
    adrive_stream,
    drive,
    drive_stream,
)
from conduit._types import AsyncHandler, Flow, Handler, Request, Transform
from conduit.errors import ValidationError
from conduit.request import REQUEST_KEYS, as_request

__all__ = [
    "HISTORY",
    "OBSERVER",
    "REQUEST_KEYS",
    "AsyncStream",
    "Middleware",
    "Stream",
    "acall_with",
    "add_middleware",
    "astream_with",
    "call_with",
    "configurable",
    "middleware",
    "middlewares",
    "on_request",
    "on_response",
    "recorder",
    "restore",
    "scoped",
    "stream_context",
    "stream_with",
    "with_middleware",
]


@attrs.frozen
class Middleware:
    """A flow and its options, as recorded on a request (pickles when its flow does).

    >>> def shout(req):
    ...     ctx = yield req
    ...     return ctx
    >>> middleware(shout).name
    'shout'
    """

    flow: Callable[..., Flow]
    name: str
    options: PMap[str, Any] = attrs.field(factory=pmap)
    innermost: bool = False  # stacked next to the exchange itself, whatever order it was added
    outermost: bool = False  # stacked first (it sees the caller's request), whatever the order
    #: it changes what the model is asked and reads the answer back (a schema, retrieval)
    shapes: bool = False
    #: it may answer from a store without the layers inside it (a cache): recorded outside a
    #: ``shapes`` middleware, it is stacked just inside the last one (:func:`_replays_inside`)
    replays: bool = False
    #: ``scope(kind, req, flow, **options) -> flow``: wraps composite work run for a request
    #: (an agent's loop), as :func:`scoped` applies it; None for most middleware
    scope: Callable[..., Flow] | None = None

    def start(self, req: Request) -> Flow:
        """Return a fresh flow generator for *req*."""
        return self.flow(req, **self.options)

    def wrap(self, handler: Handler) -> Handler:
        """Return *handler* wrapped in this middleware (sync)."""
        return functools.partial(_call, self, handler)

    def awrap(self, handler: AsyncHandler) -> AsyncHandler:
        """Return *handler* wrapped in this middleware (async)."""
        return functools.partial(_acall, self, handler)


def _call(mw: Middleware, handler: Handler, req: Request) -> Request:
    return restore(req, drive(mw.name, mw.start(req), handler))


async def _acall(mw: Middleware, handler: AsyncHandler, req: Request) -> Request:
    return restore(req, await adrive(mw.name, mw.start(req), handler))


def middleware(
    flow: Callable[..., Flow],
    *,
    name: str | None = None,
    innermost: bool = False,
    outermost: bool = False,
    shapes: bool = False,
    replays: bool = False,
    scope: Callable[..., Flow] | None = None,
    **options: Any,
) -> Middleware:
    """Return a :class:`Middleware` running *flow*, called as ``flow(req, **options)``.

    >>> from toolz import pipe
    >>> import conduit as c
    >>> def tag(req, label):
    ...     ctx = yield req
    ...     return ctx.set("label", label)
    >>> ctx = pipe(c.request("m", "hi"), c.with_middleware(middleware(tag, label="x")), c.mock_call)
    >>> ctx["label"], c.content(ctx)
    ('x', 'hi')
    """
    if not callable(flow):
        raise ValidationError(f"middleware needs a generator function, got {flow!r:.60}")
    label = name or str(getattr(flow, "__name__", "middleware"))
    frozen = freeze_map(options)
    return Middleware(
        flow=flow,
        name=label,
        options=frozen,
        innermost=innermost,
        outermost=outermost,
        shapes=shapes,
        replays=replays,
        scope=scope,
    )


def _stacked(req: Mapping[str, Any]) -> list[Middleware]:
    """The recorded middleware, outermost first: the outermost-flagged ones, then the others in
    the order recorded (a cache inside the schema and retrieval, :func:`_replays_inside`), then
    the innermost-flagged ones."""
    mws = middlewares(req)
    first = [m for m in mws if m.outermost]
    last = [m for m in mws if m.innermost and not m.outermost]
    middle = [m for m in mws if not (m.outermost or m.innermost)]
    return first + _replays_inside(middle) + last


def _replays_inside(mws: list[Middleware]) -> list[Middleware]:
    """*mws* with any middleware that ``replays`` (a cache) recorded outside one that
    ``shapes`` (a schema, retrieval) moved just inside the last of those: the cache keys the
    request the model would see (its schema format, its retrieved passages), and a hit goes
    back out through them (parsed, given its sources) like an answer.

    >>> names = lambda ms: [m.name for m in ms]
    >>> cache = Middleware(flow=None, name="cache", replays=True)
    >>> schema = Middleware(flow=None, name="schema", shapes=True)
    >>> retry = Middleware(flow=None, name="retry")
    >>> names(_replays_inside([cache, retry, schema])), names(_replays_inside([retry, cache]))
    (['retry', 'schema', 'cache'], ['retry', 'cache'])
    """
    last = max((i for i, m in enumerate(mws) if m.shapes), default=-1)
    early = [i for i, m in enumerate(mws[:last]) if m.replays]
    if not early:
        return mws
    moved = [m for i, m in enumerate(mws) if i not in early]
    at = last + 1 - len(early)  # just after the last schema or retrieval (all moved were before)
    return moved[:at] + [mws[i] for i in early] + moved[at:]


def middlewares(req: Mapping[str, Any]) -> PVector[Middleware]:
    """Return the middleware recorded on *req*, outermost first.

    >>> len(middlewares(as_request({"model": "m"})))
    0
    """
    found: PVector[Middleware] = req.get("middleware") or pvector()
    return found


def add_middleware(req: Any, mw: Middleware) -> Request:
    """Return *req* with *mw* recorded innermost of its middleware."""
    frozen = as_request(req)
    return frozen.set("middleware", middlewares(frozen).append(mw))


def with_middleware(*flows: Middleware | Callable[..., Flow]) -> Transform:
    """Return a transform recording *flows* (middleware or bare flow functions), in order.

    >>> from toolz import pipe
    >>> import conduit as c
    >>> def noop(req):
    ...     return (yield req)
    >>> [m.name for m in middlewares(pipe(c.request("m"), with_middleware(noop)))]
    ['noop']
    """
    if any(isinstance(f, Mapping) and "messages" in f for f in flows):
        raise ValidationError(
            "with_middleware needs the middleware first, then the request: "
            "pipe(req, c.with_middleware(my_flow)), not pipe(req, c.with_middleware)"
        )
    mws = tuple(f if isinstance(f, Middleware) else middleware(f) for f in flows)

    def with_middleware(req: Any) -> Request:
        frozen = as_request(req)
        return frozen.set("middleware", middlewares(frozen).extend(mws))

    return with_middleware


def configurable(make: Callable[..., Middleware], name: str) -> Callable[..., Any]:
    """Return a ``with_*`` transform usable bare (``with_x(req)``) or configured (``with_x(k=v)``).

    *make* builds the :class:`Middleware` from the keyword options. Configured, it is built
    once, when ``with_x(k=v)`` is evaluated (so a bad option fails there); bare, once, on first
    use. The built-in ``with_*`` add checked options and did-you-mean on top (``_options``).

    >>> import conduit as c
    >>> def tag(req, label="x"):
    ...     ctx = yield req
    ...     return ctx.set("label", label)
    >>> with_tag = configurable(lambda **o: c.middleware(tag, name="tag", **o), "with_tag")
    >>> tag_y = with_tag(label="y")
    >>> reqs = [tag_y(c.request("m", t)) for t in "ab"]
    >>> reqs[0]["middleware"][0] is reqs[1]["middleware"][0], with_tag.__name__
    (True, 'with_tag')
    """
    bare: list[Middleware] = []

    def with_(req: Any = None, /, **options: Any) -> Any:
        if req is None:
            return recorder(name, make(**options)) if options else with_
        if options:
            return add_middleware(req, make(**options))
        if not bare:
            bare.append(make())
        return add_middleware(req, bare[0])

    return _named(with_, name)


def _record(mw: Middleware, req: Any) -> Request:
    return add_middleware(req, mw)


def recorder(name: str, mw: Middleware) -> Transform:
    """Return a transform named *name* that records the built *mw* on each request (picklable).

    >>> import conduit as c
    >>> mw = c.middleware(lambda req: (yield req), name="noop")
    >>> with_noop = recorder("with_noop", mw)
    >>> with_noop.__name__, with_noop(c.request("m"))["middleware"][0] is mw
    ('with_noop', True)
    """
    transform: Any = functools.update_wrapper(functools.partial(_record, mw), _record)
    transform.__name__ = transform.__qualname__ = name
    transform.__doc__ = f"Record the middleware configured by {name} on a request."
    result: Transform = transform
    return result


def _named(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    fn.__name__ = fn.__qualname__ = name
    return fn


def _transform_flow(req: Request, transform: Transform) -> Flow:
    ctx: Request = yield transform(req)
    return ctx


def _response_flow(req: Request, transform: Transform) -> Flow:
    return transform((yield req))


def on_request(transform: Transform, *, name: str | None = None) -> Middleware:
    """Return middleware applying *transform* to the request on the way in (Ring's ``*-request``).

    >>> from toolz import pipe
    >>> import conduit as c
    >>> up = on_request(lambda r: r.set("model", "big"), name="up")
    >>> pipe(c.request("small", "hi"), c.with_middleware(up), c.mock_call)["response"]["model"]
    'big'
    """
    return middleware(_transform_flow, name=name or _name(transform), transform=transform)


def on_response(transform: Transform, *, name: str | None = None) -> Middleware:
    """Return middleware applying *transform* to the context on the way out (``*-response``)."""
    return middleware(_response_flow, name=name or _name(transform), transform=transform)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


#: Where an observing middleware (``with_tracing``) leaves the object that watches the work done
#: for a request below it: inner layers, agents and tool runs report to it. Never sent.
OBSERVER = "conduit/observer"


def scoped(kind: str, req: Mapping[str, Any], flow: Flow) -> Flow:
    """Return *flow* (composite work for *req*, e.g. ``kind="agent"``: an agent's loop) wrapped
    by the scopes of the middleware recorded on *req*, outermost scope first; *flow* itself when
    none has one (the common case: no cost).

    >>> import conduit as c
    >>> def loop(req):
    ...     return (yield req)
    >>> flow = loop(c.request("m"))
    >>> scoped("agent", c.request("m"), flow) is flow
    True
    """
    if "middleware" not in req:
        return flow
    for mw in reversed(_stacked(req)):
        if mw.scope is not None:
            flow = mw.scope(kind, req, flow, **mw.options)
    return flow


#: Where a middleware that rewrites the conversation (``with_summary``) leaves the new one.
HISTORY = "conduit/history"


def restore(caller: Request, out: Request) -> Request:
    """Return the caller's request plus the result keys of *out* (the context rule, DESIGN §1).

    Every middleware layer returns this for the request it was given, so what a layer changed
    on the way in (messages, options, tools, deadlines, the model a fallback switched to)
    reaches only the layers inside it and the wire, and each leave stage sees the request it
    sent plus results (``response``, ``attempts``, ``cost``, ...). Internal ``conduit/`` keys
    stay inside, except ``HISTORY``, which travels up to where the stack was called and becomes
    the messages there: the one documented way to rewrite a conversation.

    >>> from pyrsistent import pmap
    >>> caller = pmap({"model": "m", "messages": ("hi",), "options": pmap()})
    >>> out = caller.update({"messages": ("ctx", "hi"), "response": "r", "attempts": 2})
    >>> ctx = restore(caller, out)
    >>> ctx["messages"], ctx["response"], ctx["attempts"]
    (('hi',), 'r', 2)
    """
    if out is caller:
        return out
    results = [
        (k, v)
        for k, v in out.iteritems()
        if k not in REQUEST_KEYS and (k[:8] != "conduit/" or k == HISTORY)
    ]
    if len(results) == 1:  # the common case: just the response
        single: Request = caller.set(*results[0])
        return single
    restored: Request = caller.update(dict(results))
    return restored


def _finish(caller: Request, out: Request) -> Request:
    """The context a stack hands back: :func:`restore`, with a rewritten history adopted."""
    ctx = restore(caller, out)
    if HISTORY not in ctx:
        return ctx
    adopted: Request = ctx.set("messages", ctx[HISTORY]).remove(HISTORY)
    return adopted


def _stack(base: Any, req: Request, wrap: Callable[[Middleware, Any], Any]) -> Any:
    if "middleware" not in req:
        return base
    handler = base
    for mw in reversed(_stacked(req)):
        handler = wrap(mw, handler)
    return handler


def call_with(base: Handler, req: Any) -> Request:
    """Call *base* with *req* inside the middleware recorded on *req* (outermost first).

    The context that comes back is *req* plus result keys (:func:`restore`).
    """
    caller = as_request(req)
    return _finish(caller, _stack(base, caller, Middleware.wrap)(caller))


async def acall_with(base: AsyncHandler, req: Any) -> Request:
    """The async twin of :func:`call_with`."""
    caller = as_request(req)
    return _finish(caller, await _stack(base, caller, Middleware.awrap)(caller))


class _Ended:
    """What :class:`Stream` and :class:`AsyncStream` share: the final context, once read."""

    __slots__ = ("_box", "_finish")
    _loop = "for event in stream: ..."

    def __init__(self, finish: Callable[[Request], Request]) -> None:
        # The final Done goes into a box the events' generator holds, not into self: a
        # generator holding its stream would make a cycle, and a stream dropped mid-way would
        # stay open (its connection, its spans) until the cycle collector ran.
        self._box: list[Done] = []
        self._finish = finish

    @property
    def ended(self) -> Request | None:
        """The final context, or None before the last event was read."""
        return self._finish(self._box[0].ctx) if self._box else None

    @property
    def ctx(self) -> Request:
        """The final context, once every event was read."""
        found = self.ended
        if found is None:
            raise ValidationError(
                f"the stream has not ended: its ctx is there once every event was read "
                f"({self._loop}); a stream closed, or failed, before its last event has none"
            )
        return found


class Stream(_Ended):
    """The events of a streamed call, as they come (iterate it as any stream); once all are
    read, :attr:`ctx` is the context the call ends with, as ``c.call`` returns it: the
    response, what the middleware added, a history ``with_summary`` condensed, an agent's
    whole loop. ``c.reply(stream.ctx, "next")`` continues the conversation. Closing it (or
    dropping it) abandons the call.

    >>> import conduit as c
    >>> stream = c.mock_stream(c.request("m", "hi", mock="Hello"))
    >>> "".join(e.get("text", "") for e in stream), c.content(stream.ctx)
    ('Hello', 'Hello')
    """

    __slots__ = ("_events",)

    def __init__(self, items: Iterator[Any], finish: Callable[[Request], Request]) -> None:
        super().__init__(finish)
        self._events = _events(items, self._box)

    def __iter__(self) -> Iterator[Any]:
        return self._events

    def __next__(self) -> Any:
        return next(self._events)

    def close(self) -> None:
        """Stop reading: the call is abandoned (its connection closed)."""
        self._events.close()


def _events(items: Iterator[Any], box: list[Done]) -> Generator[Any, None, None]:
    try:
        for item in items:
            if type(item) is Done:
                box.append(item)  # its context is built when asked for: most never are
            else:
                yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:  # abandoned: the call under it is closed now, not at collection
            close()


class AsyncStream(_Ended):
    """The async twin of :class:`Stream` (``async for``; then ``.ctx``)."""

    __slots__ = ("_events",)
    _loop = "async for event in stream: ..."

    def __init__(self, items: AsyncIterator[Any], finish: Callable[[Request], Request]) -> None:
        super().__init__(finish)
        self._events = _aevents(items, self._box)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._events

    async def __anext__(self) -> Any:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Stop reading: the call is abandoned (its connection closed)."""
        await self._events.aclose()


async def _aevents(items: AsyncIterator[Any], box: list[Done]) -> AsyncGenerator[Any, None]:
    try:
        async for item in items:
            if type(item) is Done:
                box.append(item)
            else:
                yield item
    finally:
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()


def stream_context(caller: Request) -> Callable[[Request], Request]:
    """What a stream's final context becomes for *caller*: :func:`restore`'s, with a history
    rewritten by the middleware adopted (as :func:`call_with` hands it back)."""
    return functools.partial(_finish, caller)


def stream_with(base: StreamFn, req: Any, keep_done: bool = False) -> Iterator[Any]:
    """Iterate the events of *base* for *req*, inside the middleware recorded on *req*.

    *base* yields events and ends with a :class:`Done`; middleware sees the collected context.
    With *keep_done* the final :class:`Done` is yielded too: its ``ctx`` is the context the
    middleware handed back (cost, attempts, ...), for a caller that wants more than the events.
    """
    caller = as_request(req)
    for item in _stack(base, caller, _stream_layer)(caller):
        if keep_done or not isinstance(item, Done):
            yield item


def _stream_layer(mw: Middleware, inner: StreamFn) -> StreamFn:
    return functools.partial(_run_stream_layer, mw, inner)


def _run_stream_layer(mw: Middleware, inner: StreamFn, req: Request) -> Iterator[Any]:
    for item in drive_stream(mw.name, mw.start(req), inner):
        yield _restored(req, item) if type(item) is Done else item


def _restored(req: Request, done: Done) -> Done:
    return Done(build=functools.partial(_restore_done, req, done))


def _restore_done(req: Request, done: Done) -> Request:
    return restore(req, done.ctx)


def _astream_layer(mw: Middleware, inner: AsyncStreamFn) -> AsyncStreamFn:
    return functools.partial(_arun_stream_layer, mw, inner)


async def _arun_stream_layer(
    mw: Middleware, inner: AsyncStreamFn, req: Request
) -> AsyncIterator[Any]:
    async for item in adrive_stream(mw.name, mw.start(req), inner):
        yield _restored(req, item) if type(item) is Done else item


async def astream_with(
    base: AsyncStreamFn, req: Any, keep_done: bool = False
) -> AsyncIterator[Any]:
    """The async twin of :func:`stream_with`."""
    caller = as_request(req)
    async for item in _stack(base, caller, _astream_layer)(caller):
        if keep_done or not isinstance(item, Done):
            yield item
