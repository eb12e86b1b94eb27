"""The drivers: the only control flow written twice (sync and async), for calls and streams.

A flow yields the request it wants sent and receives the result (or the exception, thrown in).
It may also yield an :class:`Effect` (a cache lookup, say): the driver performs it and sends
the result back. A request it yields may describe waiting and deadlines (``"conduit/sleep"``,
``"conduit/deadline_in"``); :func:`plan` turns those into what the driver does. Streams are
driven the same way, layer by layer: each layer is an iterator of events that ends with a
:class:`Done` carrying the final context.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, NamedTuple

import attrs
from pyrsistent import PMap

from conduit._types import AsyncHandler, Flow, Handler, Request
from conduit.errors import ConduitError, TimeoutError

__all__ = [
    "Done",
    "Effect",
    "Emit",
    "adrive",
    "adrive_stream",
    "arun_effects",
    "bounded",
    "deadline_error",
    "drive",
    "drive_stream",
    "finish",
    "overdue",
    "plan",
    "remaining",
    "asleep",
    "run_effects",
    "time_left",
]

StreamFn = Callable[[Request], Iterator[Any]]
AsyncStreamFn = Callable[[Request], AsyncIterator[Any]]


class Done:
    """The last item of a stream layer: the context once the stream is complete.

    Given a function instead of a context, it builds the context when first asked: a stream
    with no middleware never asks, and skips folding its events twice.
    """

    __slots__ = ("_build", "_ctx")

    def __init__(self, ctx: Request | None = None, build: Callable[[], Request] | None = None):
        self._ctx, self._build = ctx, build

    @property
    def ctx(self) -> Request:
        """The final context."""
        if self._ctx is None:
            assert self._build is not None, "Done needs a context or a function building one"
            self._ctx = self._build()
        return self._ctx


class Effect(NamedTuple):
    """Some I/O a flow asks the driver to perform: ``run()`` (sync) or ``arun()`` (async).

    Without ``arun`` the async driver runs ``run`` in a worker thread. (A tuple, not an attrs
    class: one is made for every HTTP exchange, and a tuple is the cheapest frozen value.)
    """

    run: Callable[[], Any]
    arun: Callable[[], Awaitable[Any]] | None = None


@attrs.frozen
class Emit:
    """An event a stream flow hands to the consumer of the stream (an agent's tool result)."""

    event: Any


def deadline_error(now: float, deadline: float) -> TimeoutError:
    """Return the error for a passed deadline (``with_timeout``); retrying cannot help it."""
    return TimeoutError(
        f"the call's deadline passed ({now - deadline:+.3f}s); it covers every attempt, so "
        "raise the timeout given to c.with_timeout or make the call cheaper",
        data={"deadline_exceeded": True},
    )


def plan(req: Request, now: float, rand: float) -> tuple[float, Request]:
    """Return (seconds to sleep, the request to send) for a request a flow yielded; pure.

    ``"conduit/sleep"`` is seconds, or ``{"up_to": s}`` for full jitter (``rand`` in [0, 1)
    picks the point). ``"conduit/deadline_in"`` becomes an absolute ``"conduit/deadline"`` (on
    the monotonic clock), never later than one already set. Raises ``TimeoutError`` if the
    deadline would pass before the request is sent.

    >>> from pyrsistent import pmap
    >>> plan(pmap({"model": "m", "conduit/sleep": {"up_to": 2.0}}), now=0.0, rand=0.25)
    (0.5, pmap({'model': 'm'}))
    >>> plan(pmap({"conduit/deadline_in": 5}), now=100.0, rand=0.0)[1]["conduit/deadline"]
    105.0
    """
    out = req
    if "conduit/deadline_in" in req:
        deadline = now + float(req["conduit/deadline_in"])
        if req.get("conduit/deadline") is not None:
            deadline = min(deadline, req["conduit/deadline"])
        out = out.remove("conduit/deadline_in").set("conduit/deadline", deadline)
    pause = 0.0
    if "conduit/sleep" in req:
        spec = req["conduit/sleep"]
        pause = float(spec["up_to"]) * rand if isinstance(spec, Mapping) else float(spec)
        out = out.remove("conduit/sleep")
    remaining(out, now + pause)
    return pause, out


def remaining(req: Mapping[str, Any], now: float) -> float | None:
    """Return the seconds left before *req*'s deadline at *now* (None: no deadline); raise
    ``TimeoutError`` once it has passed. Every deadline check in Conduit comes here.

    >>> from pyrsistent import pmap
    >>> remaining(pmap({"conduit/deadline": 10.0}), now=7.5), remaining(pmap(), now=0.0)
    (2.5, None)
    """
    deadline = req.get("conduit/deadline")
    if deadline is None:
        return None
    if now >= deadline:
        raise deadline_error(now, deadline)
    return float(deadline - now)


def time_left(req: Mapping[str, Any]) -> float | None:
    """Return :func:`remaining` now: how the shells read the clock against a deadline."""
    return remaining(req, time.monotonic()) if "conduit/deadline" in req else None


def bounded(seconds: float | None, deadline: float, now: float) -> float:
    """Return the seconds one read or write may take at *now*: its own *seconds*, cut to what
    is left before *deadline* (0 once it has passed). The HTTP shell asks before every socket
    operation, so a server trickling bytes or keep-alives cannot stretch the call.

    >>> bounded(600.0, deadline=10.0, now=9.25), bounded(None, 10.0, 4.0), bounded(1.0, 10.0, 12.0)
    (0.75, 6.0, 0.0)
    """
    left = deadline - now
    if left <= 0:
        return 0.0
    return left if seconds is None or left < seconds else seconds


def overdue(req: Mapping[str, Any], slack: float = 0.0) -> TimeoutError | None:
    """Return the deadline error if *req*'s deadline is within *slack* seconds (a transport
    timeout that fires at the deadline is the deadline's doing, not the server's), else None."""
    try:
        remaining(req, time.monotonic() + slack)
    except TimeoutError as late:
        return late
    return None


async def asleep(seconds: float) -> None:
    """Sleep *seconds* on the running event loop (the async twin of ``time.sleep``)."""
    import asyncio  # deferred: most programs never sleep in a flow, and asyncio is slow to import

    await asyncio.sleep(seconds)


async def _aperform(effect: Effect) -> Any:
    if effect.arun is not None:
        return await effect.arun()
    import asyncio

    return await asyncio.to_thread(effect.run)


def finish(name: str, value: Any) -> Request:
    """Return what a flow returned, or raise a clear error if it is not a context."""
    if type(value) is not PMap and not isinstance(value, Mapping):
        raise ConduitError(
            f"middleware {name!r} returned {type(value).__name__}, not a context: "
            "end the flow with `return (yield req)`",
            data={"middleware": name},
        )
    return value  # type: ignore[return-value]


def _prepare(req: Request) -> tuple[float, Request]:
    return plan(req, time.monotonic(), random.random())


def drive(name: str, flow: Flow, handler: Handler) -> Request:
    """Run *flow* around *handler*: send what it yields, feed back results or errors."""
    try:
        item: Any = next(flow)
        while True:
            try:
                if isinstance(item, Effect):
                    out = item.run()
                else:
                    pause, req = _prepare(item)
                    if pause > 0:
                        time.sleep(pause)
                    out = handler(req)
            except Exception as exc:
                item = flow.throw(exc)
            else:
                item = flow.send(out)
    except StopIteration as done:
        return finish(name, done.value)
    except BaseException:
        flow.close()  # a cancelled call runs the flow's finally now, not at garbage collection
        raise


async def adrive(name: str, flow: Flow, handler: AsyncHandler) -> Request:
    """The async twin of :func:`drive`."""
    try:
        item: Any = next(flow)
        while True:
            try:
                if isinstance(item, Effect):
                    out = await _aperform(item)
                else:
                    pause, req = _prepare(item)
                    if pause > 0:
                        await asleep(pause)
                    out = await handler(req)
            except Exception as exc:
                item = flow.throw(exc)
            else:
                item = flow.send(out)
    except StopIteration as done:
        return finish(name, done.value)
    except BaseException:
        flow.close()  # a cancelled call runs the flow's finally now, not at garbage collection
        raise


def _no_handler(req: Request) -> Request:
    raise ConduitError(
        "this flow yielded a request, but it runs without a handler: yield Effects only",
        data={"model": req.get("model")},
    )


async def _ano_handler(req: Request) -> Request:
    return _no_handler(req)


def run_effects(name: str, flow: Flow) -> Request:
    """Drive a *flow* that yields only Effects (steps, graphs, the exchange), in this thread."""
    return drive(name, flow, _no_handler)


async def arun_effects(name: str, flow: Flow) -> Request:
    """The async twin of :func:`run_effects`."""
    return await adrive(name, flow, _ano_handler)


def _no_restart(name: str, flow: Flow, cause: BaseException | None) -> ConduitError:
    flow.close()
    err = ConduitError(
        f"middleware {name!r} asked to re-run a stream after its events were delivered; "
        "a stream can only be retried before its first event",
        data={"middleware": name},
    )
    err.__cause__ = cause
    return err


def _collected(req: Request, events: list[Any]) -> Request:
    """The context of a stream that ended without ``Done`` (a plain event stream)."""
    from conduit.streams import collect

    return req.set("response", collect(events))


def _replay(ctx: Request) -> Iterator[Any]:
    from conduit.streams import response_events

    if ctx.get("conduit/events"):  # the original events, e.g. a recorded stream
        yield from ctx["conduit/events"]
    elif "response" in ctx:
        yield from response_events(ctx["response"])


def drive_stream(name: str, flow: Flow, inner: StreamFn, *, turns: bool = False) -> Iterator[Any]:
    """Run *flow* around a stream layer; a flow that answers without the inner layer replays.

    A flow may also yield :class:`Emit` to hand an event to the consumer. With *turns*, the
    flow may yield one request after another (an agent's model calls), each streamed in turn,
    and *inner* may be a plain event stream (its events are collected into the response);
    otherwise a request after delivered events is an error (a stream cannot be retried then).
    """
    emitted = False
    try:
        item: Any = next(flow)
        while True:
            if isinstance(item, Emit):
                emitted = True
                yield item.event
                item = flow.send(None)
                continue
            if isinstance(item, Effect):
                try:
                    result = item.run()
                except Exception as exc:
                    item = flow.throw(exc)
                else:
                    item = flow.send(result)
                continue
            if emitted and not turns:
                raise _no_restart(name, flow, None)
            pause, req = _prepare(item)
            if pause > 0:
                time.sleep(pause)
            out: Request | None = None
            seen: list[Any] = []
            this_turn = False
            try:
                events = inner(req)
                for event in events:
                    if isinstance(event, Done):
                        out = event.ctx
                    else:
                        emitted = this_turn = True
                        if turns:
                            seen.append(event)
                        yield event
                if out is None:  # a Stream keeps its final context (what its middleware added)
                    out = getattr(events, "ended", None)
            except Exception as exc:
                item = flow.throw(exc)
                if this_turn and not isinstance(item, Effect | Emit):
                    raise _no_restart(name, flow, exc) from exc
            else:
                item = flow.send(out if out is not None else _collected(req, seen))
    except StopIteration as done:
        ctx = finish(name, done.value)
        if not emitted:
            yield from _replay(ctx)
        yield Done(ctx)


async def adrive_stream(
    name: str, flow: Flow, inner: AsyncStreamFn, *, turns: bool = False
) -> AsyncIterator[Any]:
    """The async twin of :func:`drive_stream`."""
    emitted = False
    try:
        item: Any = next(flow)
        while True:
            if isinstance(item, Emit):
                emitted = True
                yield item.event
                item = flow.send(None)
                continue
            if isinstance(item, Effect):
                try:
                    result = await _aperform(item)
                except Exception as exc:
                    item = flow.throw(exc)
                else:
                    item = flow.send(result)
                continue
            if emitted and not turns:
                raise _no_restart(name, flow, None)
            pause, req = _prepare(item)
            if pause > 0:
                await asleep(pause)
            out: Request | None = None
            seen: list[Any] = []
            this_turn = False
            try:
                aevents = inner(req)
                async for event in aevents:
                    if isinstance(event, Done):
                        out = event.ctx
                    else:
                        emitted = this_turn = True
                        if turns:
                            seen.append(event)
                        yield event
                if out is None:
                    out = getattr(aevents, "ended", None)
            except Exception as exc:
                item = flow.throw(exc)
                if this_turn and not isinstance(item, Effect | Emit):
                    raise _no_restart(name, flow, exc) from exc
            else:
                item = flow.send(out if out is not None else _collected(req, seen))
    except StopIteration as done:
        ctx = finish(name, done.value)
        if not emitted:
            for event in _replay(ctx):
                yield event
        yield Done(ctx)
