"""The drivers: the only control flow written twice (sync and async), for calls and streams.

A flow yields the request it wants sent and receives the result (or the exception, thrown in).
A request it yields may describe an effect (``"conduit/sleep"``: seconds to wait first); the
driver performs it. Streams are driven the same way, layer by layer: each layer is an iterator
of events that ends with a :class:`Done` carrying the final context.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import attrs

from conduit._types import AsyncHandler, Flow, Handler, Request
from conduit.errors import ConduitError

__all__ = [
    "Done",
    "adrive",
    "adrive_stream",
    "drive",
    "drive_stream",
    "effects",
    "finish",
]

StreamFn = Callable[[Request], Iterator[Any]]
AsyncStreamFn = Callable[[Request], AsyncIterator[Any]]


@attrs.frozen
class Done:
    """The last item of a stream layer: the context once the stream is complete."""

    ctx: Request


def effects(req: Request) -> tuple[float, Request]:
    """Return (seconds to sleep, the request without its effect keys).

    >>> from pyrsistent import pmap
    >>> effects(pmap({"model": "m", "conduit/sleep": 0.5}))
    (0.5, pmap({'model': 'm'}))
    """
    if "conduit/sleep" not in req:
        return 0.0, req
    return float(req["conduit/sleep"]), req.remove("conduit/sleep")


async def _asleep(seconds: float) -> None:
    import asyncio  # deferred: most programs never sleep in a flow, and asyncio is slow to import

    await asyncio.sleep(seconds)


def finish(name: str, value: Any) -> Request:
    """Return what a flow returned, or raise a clear error if it is not a context."""
    if not isinstance(value, Mapping):
        raise ConduitError(
            f"middleware {name!r} returned {type(value).__name__}, not a context: "
            "end the flow with `return (yield req)`",
            data={"middleware": name},
        )
    return value  # type: ignore[return-value]


def drive(name: str, flow: Flow, handler: Handler) -> Request:
    """Run *flow* around *handler*: send what it yields, feed back results or errors."""
    try:
        req = next(flow)
        while True:
            pause, req = effects(req)
            if pause > 0:
                time.sleep(pause)
            try:
                out = handler(req)
            except Exception as exc:
                req = flow.throw(exc)
            else:
                req = flow.send(out)
    except StopIteration as done:
        return finish(name, done.value)


async def adrive(name: str, flow: Flow, handler: AsyncHandler) -> Request:
    """The async twin of :func:`drive`."""
    try:
        req = next(flow)
        while True:
            pause, req = effects(req)
            if pause > 0:
                await _asleep(pause)
            try:
                out = await handler(req)
            except Exception as exc:
                req = flow.throw(exc)
            else:
                req = flow.send(out)
    except StopIteration as done:
        return finish(name, done.value)


def _no_restart(name: str, flow: Flow, cause: BaseException | None) -> ConduitError:
    flow.close()
    err = ConduitError(
        f"middleware {name!r} asked to re-run a stream after its events were delivered; "
        "a stream can only be retried before its first event",
        data={"middleware": name},
    )
    err.__cause__ = cause
    return err


def _replay(ctx: Request) -> Iterator[Any]:
    from conduit.streams import response_events

    if "response" in ctx:
        yield from response_events(ctx["response"])


def drive_stream(name: str, flow: Flow, inner: StreamFn) -> Iterator[Any]:
    """Run *flow* around a stream layer; a flow that answers without the inner layer replays."""
    emitted = False
    try:
        req = next(flow)
        while True:
            if emitted:
                raise _no_restart(name, flow, None)
            pause, req = effects(req)
            if pause > 0:
                time.sleep(pause)
            out: Request = req
            try:
                for item in inner(req):
                    if isinstance(item, Done):
                        out = item.ctx
                    else:
                        emitted = True
                        yield item
            except Exception as exc:
                req = flow.throw(exc)
                if emitted:
                    raise _no_restart(name, flow, exc) from exc
            else:
                req = flow.send(out)
    except StopIteration as done:
        ctx = finish(name, done.value)
        if not emitted:
            yield from _replay(ctx)
        yield Done(ctx)


async def adrive_stream(name: str, flow: Flow, inner: AsyncStreamFn) -> AsyncIterator[Any]:
    """The async twin of :func:`drive_stream`."""
    emitted = False
    try:
        req = next(flow)
        while True:
            if emitted:
                raise _no_restart(name, flow, None)
            pause, req = effects(req)
            if pause > 0:
                await _asleep(pause)
            out: Request = req
            try:
                async for item in inner(req):
                    if isinstance(item, Done):
                        out = item.ctx
                    else:
                        emitted = True
                        yield item
            except Exception as exc:
                req = flow.throw(exc)
                if emitted:
                    raise _no_restart(name, flow, exc) from exc
            else:
                req = flow.send(out)
    except StopIteration as done:
        ctx = finish(name, done.value)
        if not emitted:
            for event in _replay(ctx):
                yield event
        yield Done(ctx)
