"""Stream events (DESIGN §2): folding them into a response, and a response back into events."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pyrsistent import PMap, pmap

from conduit._data import freeze, thaw
from conduit._event import Event, event
from conduit.request import text
from conduit.response import make_response, make_tool_call, make_usage

__all__ = ["collect", "parse_arguments", "response_events"]


def parse_arguments(raw: str) -> tuple[PMap[str, Any], str | None]:
    """Return (parsed arguments, error) for a tool call's JSON arguments text.

    >>> parse_arguments('{"a": 1}')[0]["a"]
    1
    >>> parse_arguments('{"a": ')[1]
    'invalid JSON in tool arguments: Expecting value at char 6'
    >>> parse_arguments("")[0] == {}
    True
    """
    if not raw.strip():
        return pmap(), None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return pmap(), f"invalid JSON in tool arguments: {exc.msg} at char {exc.pos}"
    if not isinstance(value, dict):
        return pmap(), f"tool arguments must be a JSON object, got {type(value).__name__}"
    return freeze(value), None


def _tool_call(call: Mapping[str, Any]) -> PMap[str, Any]:
    raw = "".join(call["args"])
    args, error = parse_arguments(raw)
    extra = {"raw_arguments": raw, "arguments_error": error} if error else {}
    return make_tool_call(call["id"], call["name"] or "unknown", args, **extra)


def collect(events: Iterable[Mapping[str, Any]]) -> PMap[str, Any]:
    """Return the response that a sequence of stream events describes (one linear pass).

    >>> events = [{"type": "message_start", "model": "m", "id": "r1"},
    ...           {"type": "content_delta", "text": "Hel"}, {"type": "content_delta", "text": "lo"},
    ...           {"type": "message_end", "stop_reason": "end_turn",
    ...            "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}}]
    >>> r = collect(events)
    >>> r["content"], r["model"], r["usage"]["total_tokens"]
    ('Hello', 'm', 5)
    """
    model, rid, stop_reason, usage = "", None, None, None
    text_parts: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    append = text_parts.append
    for e in events:
        kind = e["type"]
        if kind == "content_delta":
            append(e["text"])
        elif kind == "tool_call_delta":
            call = calls.setdefault(e["index"], {"id": "", "name": "", "args": []})
            call["args"].append(e.get("arguments_delta") or "")
        elif kind == "tool_call_start":
            call = calls.setdefault(e["index"], {"id": "", "name": "", "args": []})
            call.update(id=e.get("id") or call["id"], name=e.get("name") or call["name"])
        elif kind == "message_start":
            model = e.get("model") or model
            rid = e.get("id") if e.get("id") is not None else rid
        elif kind == "message_end":
            stop_reason, usage = e.get("stop_reason"), e.get("usage")
    return make_response(
        "".join(text_parts),
        model=model,
        id=rid,
        stop_reason=stop_reason,
        usage=usage if usage is not None else make_usage(),
        tool_calls=[_tool_call(calls[i]) for i in sorted(calls)],
    )


def _chunks(s: str) -> Iterator[str]:
    """Split text into word-sized pieces, whitespace kept with the word before it."""
    start = 0
    for i in range(1, len(s)):
        if s[i - 1].isspace() and not s[i].isspace():
            yield s[start:i]
            start = i
    if start < len(s):
        yield s[start:]


def response_events(response: Mapping[str, Any]) -> Iterator[Event]:
    """Yield stream events that :func:`collect` folds back into *response* (replays, mocks).

    >>> r = make_response("Hi there", model="m", id="x")
    >>> [e["type"] for e in response_events(r)]
    ['message_start', 'content_delta', 'content_delta', 'message_end']
    >>> collect(response_events(r)) == r
    True
    """
    yield event("message_start", model=response.get("model", ""), id=response.get("id"))
    for piece in _chunks(text(response.get("content", ""))):
        yield event("content_delta", text=piece)
    for i, call in enumerate(response.get("tool_calls") or ()):
        yield event("tool_call_start", index=i, id=call["id"], name=call["name"])
        raw = call.get("raw_arguments")
        if raw is None:
            raw = json.dumps(thaw(call.get("arguments") or {}))
        half = len(raw) // 2
        for piece in (raw[:half], raw[half:]):
            if piece:
                yield event("tool_call_delta", index=i, arguments_delta=piece)
        yield event("tool_call_end", index=i)
    yield event(
        "message_end",
        stop_reason=response.get("stop_reason") or "end_turn",
        usage=freeze(response.get("usage") or make_usage()),
    )
