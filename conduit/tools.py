"""Tools as data: a map with ``name``, ``description``, ``parameters`` (JSON Schema) and ``fn``.

``tool(fn)`` derives the schema from type hints and the docstring. Running a tool call never
crashes the conversation: an unknown tool, arguments that do not fit the schema, or a tool that
raises all become a tool message with ``is_error`` that tells the model what went wrong.

An observer on the context (``conduit/observer``, left there by ``with_tracing``) watches each
run: ``observer.tool(call, spec)`` is a context manager around it, giving ``seen``; the run sets
``seen.error`` to the exception a tool raised and passes its tool message through ``seen(msg)``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, get_type_hints

import attrs
from pyrsistent import PMap, PVector, pvector

from conduit._data import freeze_map, thaw
from conduit._types import Request, Transform
from conduit.errors import ValidationError
from conduit.middleware import OBSERVER
from conduit.request import as_request, tool_calls, tool_result
from conduit.schema import check_schema, convert, describe, schema_of, validate

__all__ = [
    "arun_tool_calls",
    "format_result",
    "run_tool_calls",
    "tool",
    "tool_index",
    "with_tools",
]


def _parameters(fn: Callable[..., Any], docs: Mapping[str, str]) -> dict[str, Any]:
    hints = get_type_hints(fn, include_extras=True)
    properties: dict[str, Any] = {}
    required = []
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        prop = schema_of(hints.get(name, Any))
        if name in docs:
            prop = {**prop, "description": docs[name]}
        if param.default is param.empty:
            required.append(name)
        elif isinstance(param.default, str | int | float | bool) or param.default is None:
            prop = {**prop, "default": param.default}
        properties[name] = prop
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def tool(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None
) -> Any:
    """Return the tool map for *fn* (sync or async); also a decorator, bare or configured.

    >>> @tool
    ... def add(a: int, b: int = 1) -> int:
    ...     '''Add two numbers.
    ...
    ...     Args:
    ...         a: the first number
    ...     '''
    ...     return a + b
    >>> add["name"], add["description"], list(add["parameters"]["required"])
    ('add', 'Add two numbers.', ['a'])
    >>> add["parameters"]["properties"]["a"]["description"]
    'the first number'
    >>> add["fn"](2)
    3
    """
    if fn is None:
        return lambda f: tool(f, name=name, description=description)
    if isinstance(fn, Mapping):
        spec: PMap[str, Any] = freeze_map(fn)
        if "parameters" in spec:
            _check_parameters(spec)
        return spec
    if not callable(fn):
        raise ValidationError(f"tool() takes a function, got {type(fn).__name__}")
    label = str(name or getattr(fn, "__name__", ""))
    if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", label):
        raise ValidationError(
            f"tool name {label!r} is not one a model can call (letters, digits, _ and -): "
            "give one with c.tool(fn, name='...')"
        )
    summary, docs = describe(fn)
    return freeze_map(
        {
            "name": label,
            "description": description if description is not None else summary,
            "parameters": _parameters(fn, docs),
            "fn": fn,
        }
    )


def _check_parameters(spec: PMap[str, Any]) -> None:
    try:
        check_schema(spec["parameters"])
    except ValidationError as exc:
        raise ValidationError(f"tool {spec.get('name', '?')!r}: {exc}") from None


def _as_tool(value: Any) -> PMap[str, Any]:
    spec: PMap[str, Any] = tool(value)
    missing = [k for k in ("name", "parameters") if k not in spec]
    if missing:
        raise ValidationError(f"a tool map needs {', '.join(missing)}: build it with c.tool(fn)")
    return spec


def with_tools(tools: Iterable[Any], tool_choice: Any = None) -> Transform:
    """Return a transform offering *tools* (functions or tool maps) to the model.

    *tool_choice*: ``"auto"``, ``"none"``, ``"required"``, or a tool name.

    >>> import conduit as c
    >>> def now() -> str:
    ...     "The time."
    ...     return "noon"
    >>> req = c.with_tools([now], tool_choice="required")(c.request("m", "time?"))
    >>> [t["name"] for t in req["tools"]], req["options"]["tool_choice"]
    (['now'], 'required')
    """
    if isinstance(tools, Mapping) and "messages" in tools:
        raise ValidationError(
            "with_tools needs the tools first, then the request: "
            "pipe(req, c.with_tools([get_weather])), not pipe(req, c.with_tools)"
        )
    specs = pvector(_as_tool(t) for t in tools)
    names = [s["name"] for s in specs]
    if len(set(names)) != len(names):
        raise ValidationError(f"tool names must be unique, got {names}")

    def with_tools(req: Any) -> Request:
        frozen = as_request(req)
        out: Request = frozen.set("tools", specs)
        if tool_choice is not None:
            out = out.set("options", out["options"].set("tool_choice", tool_choice))
        return out

    return with_tools


def tool_index(tools: Iterable[Any]) -> dict[str, PMap[str, Any]]:
    """Return the tools by name."""
    return {spec["name"]: spec for spec in map(_as_tool, tools)}


def format_result(value: Any) -> str:
    """Return a tool's result as text for the model: strings as they are, the rest as JSON.

    >>> format_result({"temp": 18}), format_result("sunny"), format_result(None)
    ('{"temp": 18}', 'sunny', 'null')
    """
    if isinstance(value, str):
        return value
    if attrs.has(type(value)):
        value = attrs.asdict(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif callable(getattr(value, "model_dump", None)) and not isinstance(value, type):
        value = value.model_dump(mode="json")  # a pydantic model instance
    return json.dumps(thaw(value), default=_json_default)


def _json_default(value: Any) -> Any:
    return getattr(value, "value", None) or str(value)


def _prepare(spec: PMap[str, Any] | None, call: Mapping[str, Any], names: Sequence[str]) -> Any:
    """Return (fn, kwargs) for a valid call, or the error message the model should see."""
    if spec is None:
        return f"unknown tool {call['name']!r}; available tools: {', '.join(names) or 'none'}"
    if call.get("arguments_error"):
        return f"{call['arguments_error']}; send the arguments as one JSON object"
    arguments = thaw(call.get("arguments") or {})
    problems = validate(spec["parameters"], arguments)
    if problems:
        return f"invalid arguments for {spec['name']}: " + "; ".join(problems)
    fn = spec.get("fn")
    if fn is None:
        return f"tool {spec['name']!r} has no function to run"
    hints = get_type_hints(fn) if inspect.isfunction(fn) or inspect.ismethod(fn) else {}
    return fn, {k: convert(hints.get(k, Any), v) for k, v in arguments.items()}


def _failure(spec: PMap[str, Any], exc: BaseException) -> str:
    return f"tool {spec['name']} raised {type(exc).__name__}: {exc}"


def run_tool_calls(ctx: Mapping[str, Any], tools: Iterable[Any]) -> PVector[Any]:
    """Run the tool calls of *ctx*'s response; return the tool messages answering them, in order.

    >>> import conduit as c
    >>> def add(a: int, b: int) -> int:
    ...     return a + b
    >>> ctx = c.mock_call(c.request("m", "2+3?", mock={"tool_calls": [
    ...     {"id": "t1", "name": "add", "arguments": {"a": 2, "b": 3}},
    ...     {"id": "t2", "name": "mul", "arguments": {}}]}))
    >>> [(m["content"], m.get("is_error", False)) for m in run_tool_calls(ctx, [add])]
    [('5', False), ("unknown tool 'mul'; available tools: add", True)]
    """
    index = tool_index(tools)
    observer = ctx.get(OBSERVER)
    out = []
    for call in tool_calls(ctx):
        spec = index.get(call["name"])
        if observer is None:
            out.append(_run_one(spec, call, index))
            continue
        with observer.tool(call, spec) as seen:
            out.append(seen(_run_one(spec, call, index, seen)))
    return pvector(out)


def _run_one(
    spec: PMap[str, Any] | None, call: Any, index: Mapping[str, Any], seen: Any = None
) -> PMap[str, Any]:
    ready = _prepare(spec, call, list(index))
    if isinstance(ready, str):
        return tool_result(call["id"], ready, is_error=True)
    fn, kwargs = ready
    try:
        value = fn(**kwargs)
        if inspect.isawaitable(value):
            value = _run_coroutine(value)
    except Exception as exc:
        if seen is not None:
            seen.error = exc
        return tool_result(call["id"], _failure(spec, exc), is_error=True)  # type: ignore[arg-type]
    return tool_result(call["id"], format_result(value))


def _run_coroutine(awaitable: Any) -> Any:
    import asyncio  # deferred: only async tools called from sync code need it

    async def wrap() -> Any:
        return await awaitable

    return asyncio.run(wrap())


async def arun_tool_calls(ctx: Mapping[str, Any], tools: Iterable[Any]) -> PVector[Any]:
    """The async twin of :func:`run_tool_calls`: the calls of one turn run concurrently
    (async tools awaited, sync tools in worker threads)."""
    import asyncio

    index = tool_index(tools)
    observer = ctx.get(OBSERVER)

    async def run(call: Mapping[str, Any], spec: Any, seen: Any = None) -> PMap[str, Any]:
        ready = _prepare(spec, call, list(index))
        if isinstance(ready, str):
            return tool_result(call["id"], ready, is_error=True)
        fn, kwargs = ready
        try:
            if inspect.iscoroutinefunction(fn):
                value = await fn(**kwargs)
            else:
                value = await asyncio.to_thread(fn, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
        except Exception as exc:
            if seen is not None:
                seen.error = exc
            return tool_result(call["id"], _failure(spec, exc), is_error=True)
        return tool_result(call["id"], format_result(value))

    async def one(call: Mapping[str, Any]) -> PMap[str, Any]:
        spec = index.get(call["name"])
        if observer is None:
            return await run(call, spec)
        with observer.tool(call, spec) as seen:
            msg: PMap[str, Any] = seen(await run(call, spec, seen))
            return msg

    return pvector(await asyncio.gather(*(one(call) for call in tool_calls(ctx))))
