"""The response map (DESIGN §2) and its usage record: builders that fill the defaults."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pyrsistent import PMap, PVector, pmap, pvector

from conduit._data import freeze, freeze_map
from conduit.errors import ValidationError

__all__ = ["STOP_REASONS", "joined_content", "make_response", "make_tool_call", "make_usage"]

STOP_REASONS = (
    "end_turn",
    "tool_use",
    "max_tokens",
    "stop_sequence",
    "content_filter",
    "refusal",
)


def make_usage(
    input_tokens: int = 0,
    output_tokens: int = 0,
    *,
    cache_read_tokens: int | None = None,
    cache_creation_tokens: int | None = None,
    reasoning_tokens: int | None = None,
) -> PMap[str, Any]:
    """Return a usage map; ``total_tokens`` is derived; cache and reasoning counts appear only
    when known (reasoning tokens are part of ``output_tokens``, never added to the total twice).

    >>> make_usage(10, 5)["total_tokens"]
    15
    >>> "cache_read_tokens" in make_usage(1, 1)
    False
    """
    if type(input_tokens) is not int or type(output_tokens) is not int:
        input_tokens, output_tokens = int(input_tokens), int(output_tokens)
    fields: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
    if cache_read_tokens is not None:
        fields["cache_read_tokens"] = int(cache_read_tokens)
    if cache_creation_tokens is not None:
        fields["cache_creation_tokens"] = int(cache_creation_tokens)
    if reasoning_tokens is not None:
        fields["reasoning_tokens"] = int(reasoning_tokens)
    return pmap(fields)


def make_tool_call(
    id: str, name: str, arguments: Mapping[str, Any] | None = None, **extra: Any
) -> PMap[str, Any]:
    """Return a tool call map (arguments already parsed).

    >>> make_tool_call("c1", "add", {"a": 1})["arguments"]["a"]
    1
    """
    if not name:
        raise ValidationError(f"tool call {id!r} has no tool name")
    return freeze_map({"id": id, "name": name, "arguments": dict(arguments or {}), **extra})


def _usage(usage: Mapping[str, Any] | None) -> PMap[str, Any]:
    if usage is None:
        return make_usage()
    if type(usage) is type(_EMPTY):
        return usage  # already frozen (make_usage's, or a decoded one): nothing to walk
    return freeze_map(usage)


_EMPTY: PMap[str, Any] = pmap()
_STOPS = frozenset(STOP_REASONS)
_NO_CALLS: PVector[Any] = pvector()


def make_response(
    content: Any = "",
    *,
    model: str = "",
    id: str | None = None,
    stop_reason: str | None = None,
    usage: Mapping[str, Any] | None = None,
    tool_calls: Iterable[Any] = (),
    refusal: str | None = None,
    **extra: Any,
) -> PMap[str, Any]:
    """Return a response map with every DESIGN §2 key; the stop reason follows the tool calls.

    *content* is text, or a sequence of blocks (``reasoning`` blocks before the text they led
    to). A *refusal* (the provider's text saying why it would not answer) sets ``"refusal"``
    and, unless *stop_reason* says otherwise, ``stop_reason="refusal"``.

    >>> r = make_response("Hi", model="m")
    >>> r["stop_reason"], r["usage"]["total_tokens"], len(r["tool_calls"])
    ('end_turn', 0, 0)
    >>> make_response(tool_calls=[make_tool_call("c", "f")])["stop_reason"]
    'tool_use'
    >>> r = make_response("", refusal="I can't help with that.")
    >>> r["stop_reason"], r["refusal"]
    ('refusal', "I can't help with that.")
    """
    if not tool_calls:
        calls = _NO_CALLS
    elif isinstance(tool_calls, PVector):
        calls = tool_calls
    else:
        calls = pvector(map(freeze, tool_calls))
    reason = stop_reason or (
        "refusal" if refusal is not None else "tool_use" if calls else "end_turn"
    )
    if reason not in _STOPS:
        raise ValidationError(f"stop_reason {reason!r} is not one of {', '.join(STOP_REASONS)}")
    fields = {
        "role": "assistant",
        "content": content if type(content) is str else freeze(content),
        "model": model,
        "id": id,
        "stop_reason": reason,
        "usage": _usage(usage),
        "tool_calls": calls,
    }
    if extra:
        fields.update({k: freeze(v) for k, v in extra.items()})
    if refusal is not None:
        if not isinstance(refusal, str):
            raise ValidationError(f"refusal must be the refusal's text, not {refusal!r:.60}")
        fields["refusal"] = refusal
    return pmap(fields)


def joined_content(blocks: list[PMap[str, Any]], texts: list[str]) -> Any:
    """A decoded answer's content: the text alone when *blocks* is empty; else the blocks in
    order, adjacent text blocks joined and empty ones dropped (reasoning kept in place).

    >>> joined_content([], ["Hi", " there"])
    'Hi there'
    >>> [b["text"] for b in joined_content([pmap({"type": "reasoning", "text": "r"}),
    ...     pmap({"type": "text", "text": "a"}), pmap({"type": "text", "text": "b"})], [])]
    ['r', 'ab']
    """
    if not blocks:
        return "".join(texts)
    out: list[PMap[str, Any]] = []
    for block in blocks:
        if block["type"] == "text" and out and out[-1]["type"] == "text":
            out[-1] = out[-1].set("text", out[-1]["text"] + block["text"])
        elif block["type"] != "text" or block["text"]:
            out.append(block)
    return out
