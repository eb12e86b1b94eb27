"""Agents: call the model, run the tools it asks for, feed back the results, until it answers.

The loop is one flow: the model calls are what it yields, and running tools or reporting events
are effects, so the same loop drives ``agent`` (tools one after another), ``aagent`` (the tool
calls of one turn concurrently) and the streaming agents (``agent_stream``, ``aagent_stream``:
the model's events as they arrive, and a ``tool_result`` event per tool run). Middleware on the
request with a scope (``with_tracing``: an ``invoke_agent`` span) wraps the whole loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from functools import partial
from typing import Any

from pyrsistent import pvector

from conduit._drive import Effect, Emit, adrive, adrive_stream, drive, drive_stream
from conduit._event import Event
from conduit._types import AsyncHandler, Flow, Handler, Request
from conduit.errors import MaxIterationsError, ValidationError
from conduit.middleware import AsyncStream, Stream, scoped
from conduit.request import as_request, response_message, tool_calls
from conduit.tools import arun_tool_calls, run_tool_calls, tool, with_tools

__all__ = ["aagent", "aagent_stream", "agent", "agent_flow", "agent_stream"]

EventSink = Callable[[Event], Any]


def _next_turn(ctx: Request, results: Any) -> Request:
    """Return the request for the next step: the assistant turn and the tool results appended."""
    msgs = ctx["messages"].append(response_message(ctx["response"])).extend(results)
    nxt: Request = ctx.discard("response").set("messages", msgs)
    return nxt


def _result_event(msg: Any) -> Event:
    return Event(
        type="tool_result",
        tool_call_id=msg["tool_call_id"],
        content=msg["content"],
        is_error=bool(msg.get("is_error")),
    )


def _too_many(n: int, ctx: Request) -> MaxIterationsError:
    return MaxIterationsError(
        f"the agent made {n} model calls and the model still asks for tools; raise "
        "max_iterations or look at the tool results in err.ctx['messages']",
        ctx=ctx,
        data={"iterations": n},
    )


Report = Callable[[Event], Any]


def agent_flow(
    req: Request, *, tools: tuple[Any, ...], max_iterations: int, report: Report | None = None
) -> Flow:
    """Yield model calls until the model answers without tool calls; tools run as effects.

    *report* turns each event (``model_response``, ``tool_call``, ``tool_result``) into
    something to yield (an Effect calling ``on_event``, or an ``Emit`` into a stream), or None.
    This is the one agent loop: ``agent``, ``aagent`` and the streaming agents all drive it.
    """
    made: list[Any] = []
    costs: list[Any] = []  # each model call's ctx["cost"] (with_cost), to total the run
    history = req
    for iteration in range(1, max_iterations + 1):
        ctx: Request = yield history
        costs.append(ctx.get("cost"))
        events = [Event(type="model_response", response=ctx["response"], iteration=iteration)]
        calls = tool_calls(ctx)
        events.extend(Event(type="tool_call", tool_call=call) for call in calls)
        yield from _reported(report, events)
        if not calls:
            done: Request = ctx.update({"iterations": iteration, "tool_calls_made": pvector(made)})
            return done.set("cost", _total(costs)) if "cost" in ctx else done
        results = yield Effect(
            partial(run_tool_calls, ctx, tools), partial(arun_tool_calls, ctx, tools)
        )
        yield from _reported(report, [_result_event(msg) for msg in results])
        made.extend(calls)
        history = _next_turn(ctx, results)
    raise _too_many(max_iterations, history.set("response", ctx["response"]))


def _total(costs: list[Any]) -> float | None:
    """The cost of an agent's run: every model call's, or None when one had no price.

    >>> _total([0.25, 0.0, 0.5]), _total([0.25, None])
    (0.75, None)
    """
    return None if any(cost is None for cost in costs) else float(sum(costs))


def _reported(report: Report | None, events: list[Event]) -> Iterator[Any]:
    for event in events if report else ():
        item = report(event)  # type: ignore[misc]
        if item is not None:
            yield item


def _on_event(sink: EventSink | None) -> Report | None:
    return (lambda e: Effect(partial(sink, e))) if sink else None


def _stream_report(event: Event) -> Any:
    """In a stream the model's own events are already out: only tool results are added."""
    return Emit(event) if event["type"] == "tool_result" else None


def _own_tools(req: Any, ctx: Request) -> Request:
    """The agent's context keeps the caller's tools: the loop's own stay with the loop."""
    caller = as_request(req)
    if "tools" in caller:
        return ctx if ctx.get("tools") is caller["tools"] else ctx.set("tools", caller["tools"])
    return ctx.discard("tools")


def _check(max_iterations: int) -> None:
    if not isinstance(max_iterations, int) or max_iterations < 1:
        raise ValidationError(f"max_iterations must be a positive number, got {max_iterations!r}")


def agent(
    call: Handler,
    tools: Iterable[Any],
    *,
    max_iterations: int = 10,
    on_event: EventSink | None = None,
) -> Handler:
    """Return a handler running the tool loop with *call* (e.g. ``c.openai_call``).

    The result is the final context: its ``messages`` hold the whole conversation,
    ``iterations`` the model calls made and ``tool_calls_made`` every tool call. *on_event*
    receives ``model_response``, ``tool_call`` and ``tool_result`` events as they happen.

    >>> import conduit as c
    >>> def add(a: int, b: int) -> int:
    ...     "Add two numbers."
    ...     return a + b
    >>> script = c.mock_script([{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]},
    ...                         lambda r: f"The sum is {r['messages'][-1]['content']}."])
    >>> ctx = c.agent(c.mock_call, [add])(c.request("m", "2 + 3?", mock=script))
    >>> c.content(ctx), ctx["iterations"]
    ('The sum is 5.', 2)
    """
    _check(max_iterations)
    specs = tuple(tool(t) for t in tools)

    def run(req: Any) -> Request:
        prepared = with_tools(specs)(as_request(req))
        flow = agent_flow(
            prepared, tools=specs, max_iterations=max_iterations, report=_on_event(on_event)
        )
        flow = scoped("agent", prepared, flow)
        return _own_tools(req, drive("agent", flow, call))

    run.__name__ = run.__qualname__ = "agent"
    return run


def aagent(
    call: AsyncHandler,
    tools: Iterable[Any],
    *,
    max_iterations: int = 10,
    on_event: EventSink | None = None,
) -> AsyncHandler:
    """The async twin of :func:`agent` (pass an async call, e.g. ``c.openai_acall``); the tool
    calls of one turn run concurrently."""
    _check(max_iterations)
    specs = tuple(tool(t) for t in tools)

    async def run(req: Any) -> Request:
        prepared = with_tools(specs)(as_request(req))
        flow = agent_flow(
            prepared, tools=specs, max_iterations=max_iterations, report=_on_event(on_event)
        )
        flow = scoped("agent", prepared, flow)
        return _own_tools(req, await adrive("aagent", flow, call))

    run.__name__ = run.__qualname__ = "aagent"
    return run


def agent_stream(
    stream: Callable[[Request], Iterator[Any]], tools: Iterable[Any], *, max_iterations: int = 10
) -> Callable[[Any], Stream]:
    """Return a function yielding an agent's events as they happen: the model's stream events
    (text deltas, tool calls) and a ``tool_result`` event for each tool run. What it returns is
    a :class:`~conduit.middleware.Stream`: once read, its ``ctx`` is the agent's final context,
    as ``c.agent`` returns it (``c.reply(stream.ctx, ...)`` continues after the tool turns).

    >>> import conduit as c
    >>> def now() -> str:
    ...     "The time."
    ...     return "noon"
    >>> script = c.mock_script([{"tool_calls": [{"name": "now"}]}, "It is noon."])
    >>> run = c.agent_stream(c.mock_stream, [now])
    >>> [e["type"] for e in run(c.request("m", "time?", mock=script))
    ...  if e["type"] in ("tool_call_start", "tool_result", "message_end")]
    ['tool_call_start', 'message_end', 'tool_result', 'message_end']
    """
    _check(max_iterations)
    specs = tuple(tool(t) for t in tools)

    def run(req: Any) -> Stream:
        history = with_tools(specs)(as_request(req))
        flow = agent_flow(
            history, tools=specs, max_iterations=max_iterations, report=_stream_report
        )
        flow = scoped("agent", history, flow)
        items = drive_stream("agent_stream", flow, stream, turns=True)
        return Stream(items, partial(_own_tools, req))

    run.__name__ = run.__qualname__ = "agent_stream"
    return run


def aagent_stream(
    stream: Callable[[Request], AsyncIterator[Any]],
    tools: Iterable[Any],
    *,
    max_iterations: int = 10,
) -> Callable[[Any], AsyncStream]:
    """The async twin of :func:`agent_stream` (tool calls of a turn run concurrently)."""
    _check(max_iterations)
    specs = tuple(tool(t) for t in tools)

    def run(req: Any) -> AsyncStream:
        history = with_tools(specs)(as_request(req))
        flow = agent_flow(
            history, tools=specs, max_iterations=max_iterations, report=_stream_report
        )
        flow = scoped("agent", history, flow)
        items = adrive_stream("aagent_stream", flow, stream, turns=True)
        return AsyncStream(items, partial(_own_tools, req))

    run.__name__ = run.__qualname__ = "aagent_stream"
    return run
