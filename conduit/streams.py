"""Stream events (DESIGN §2): folding them into a response, and a response back into events."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pyrsistent import PMap, pmap, pvector

from conduit._data import freeze, thaw
from conduit._event import Event, event
from conduit.errors import ValidationError
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


#: What a reasoning event may carry besides its text: the signature that ends a block, an
#: opaque (redacted) block, and the format OpenRouter names its reasoning in.
_REASONING_KEYS = ("signature", "redacted", "format")


def _reasoning(parts: list[str], e: Mapping[str, Any]) -> PMap[str, Any]:
    block: dict[str, Any] = {"type": "reasoning", "text": "".join(parts)}
    for key in _REASONING_KEYS:
        if e.get(key) is not None:
            block[key] = e[key]
    return pmap(block)


class _Blocks:
    """The content of a stream that carries reasoning: blocks in the order they arrived."""

    __slots__ = ("blocks", "format", "open", "parts")

    def __init__(self) -> None:
        self.blocks: list[PMap[str, Any]] = []
        self.parts: list[str] = []  # the text of the reasoning block being assembled
        self.open = False
        self.format: str | None = None  # the open block's format, when its events name one

    def text(self, parts: list[str]) -> None:
        """Close the open reasoning block, and move the text gathered so far into a block."""
        self.close()
        if parts:
            joined = "".join(parts)
            parts.clear()
            if joined:
                self.blocks.append(pmap({"type": "text", "text": joined}))

    def close(self) -> None:
        if self.open:
            self.blocks.append(_reasoning(self.parts, {"format": self.format}))
        self.parts, self.open, self.format = [], False, None

    def reasoning(self, e: Mapping[str, Any], text_parts: list[str]) -> None:
        if text_parts:
            self.text(text_parts)
        if e.get("redacted") is not None:  # an opaque block of its own
            self.close()
            self.blocks.append(_reasoning([e.get("text") or ""], e))
            return
        self.parts.append(e.get("text") or "")
        self.open = True
        self.format = e.get("format") or self.format
        if e.get("signature") is not None:  # the signature ends the block it signs
            self.blocks.append(_reasoning(self.parts, {**e, "format": self.format}))
            self.parts, self.open, self.format = [], False, None


_TURNS = (
    "c.collect folds the events of one model answer, and these hold several (an agent's tool "
    "turns): to go on, read the stream to its end and use its ctx, the agent's final context "
    "(stream = c.agent_stream(call, tools)(req); for event in stream: ...; "
    "c.reply(stream.ctx, 'next'))"
)


def collect(events: Iterable[Mapping[str, Any]]) -> PMap[str, Any]:
    """Return the response that a sequence of stream events describes (one linear pass).

    ``reasoning_delta`` events build ``reasoning`` blocks: their texts join, a ``signature``
    ends the block it signs, a ``redacted`` one is a block of its own. With reasoning present
    the content is a sequence of blocks in the order they arrived (reasoning, then the text it
    led to); without, it is the text. ``refusal_delta`` texts join into ``"refusal"``. The
    other choices of an ``n > 1`` stream, carried by ``message_end``, become ``"choices"``.

    >>> events = [{"type": "message_start", "model": "m", "id": "r1"},
    ...           {"type": "content_delta", "text": "Hel"}, {"type": "content_delta", "text": "lo"},
    ...           {"type": "message_end", "stop_reason": "end_turn",
    ...            "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}}]
    >>> r = collect(events)
    >>> r["content"], r["model"], r["usage"]["total_tokens"]
    ('Hello', 'm', 5)
    >>> r = collect([{"type": "reasoning_delta", "text": "Hmm, "},
    ...              {"type": "reasoning_delta", "text": "4.", "signature": "sig"},
    ...              {"type": "content_delta", "text": "4"}])
    >>> [(b["type"], b["text"]) for b in r["content"]], r["content"][0]["signature"]
    ([('reasoning', 'Hmm, 4.'), ('text', '4')], 'sig')
    """
    model, rid, stop_reason, usage, choices = "", None, None, None, None
    text_parts: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    blocks: _Blocks | None = None
    refusal: list[str] | None = None
    append = text_parts.append
    for e in events:
        kind = e["type"]
        if kind == "content_delta":
            if blocks is not None and blocks.open:
                blocks.close()
            append(e["text"])
        elif kind == "reasoning_delta":
            blocks = blocks or _Blocks()
            blocks.reasoning(e, text_parts)
        elif kind == "tool_call_delta":
            call = calls.setdefault(e["index"], {"id": "", "name": "", "args": []})
            call["args"].append(e.get("arguments_delta") or "")
        elif kind == "tool_call_start":
            call = calls.setdefault(e["index"], {"id": "", "name": "", "args": []})
            call.update(id=e.get("id") or call["id"], name=e.get("name") or call["name"])
        elif kind == "message_start":
            if stop_reason is not None:  # a second answer after one ended: an agent's turns
                raise ValidationError(_TURNS)
            model = e.get("model") or model
            rid = e.get("id") if e.get("id") is not None else rid
        elif kind == "message_end":
            stop_reason, usage = e.get("stop_reason"), e.get("usage")
            choices = e.get("choices")
        elif kind == "refusal_delta":
            refusal = refusal or []
            refusal.append(e.get("text") or "")
        elif kind == "tool_result":
            raise ValidationError(_TURNS)
    content: Any = "".join(text_parts)
    if blocks is not None:
        blocks.text(text_parts)
        content = pvector(blocks.blocks)
    extra = {"choices": freeze(choices)} if choices else {}
    return make_response(
        content,
        model=model,
        id=rid,
        stop_reason=stop_reason,
        usage=usage if usage is not None else make_usage(),
        tool_calls=[_tool_call(calls[i]) for i in sorted(calls)],
        refusal="".join(refusal) if refusal is not None else None,
        **extra,
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


def _content_events(content: Any) -> Iterator[Event]:
    if isinstance(content, str) or not any(b.get("type") == "reasoning" for b in content or ()):
        for piece in _chunks(text(content or "")):
            yield event("content_delta", text=piece)
        return
    for block in content:
        kind = block.get("type")
        if kind == "text":
            for piece in _chunks(block.get("text") or ""):
                yield event("content_delta", text=piece)
        elif kind == "reasoning" and block.get("redacted") is not None:
            extra = {"format": block["format"]} if block.get("format") is not None else {}
            text_ = block.get("text") or ""
            yield event("reasoning_delta", text=text_, redacted=block["redacted"], **extra)
        elif kind == "reasoning":
            pieces = list(_chunks(block.get("text") or "")) or [""]
            extra = {"format": block["format"]} if block.get("format") is not None else {}
            for piece in pieces:
                yield event("reasoning_delta", text=piece, **extra)
            if block.get("signature") is not None:
                yield event("reasoning_delta", text="", signature=block["signature"], **extra)


def response_events(response: Mapping[str, Any]) -> Iterator[Event]:
    """Yield stream events that :func:`collect` folds back into *response* (replays, mocks).

    >>> r = make_response("Hi there", model="m", id="x")
    >>> [e["type"] for e in response_events(r)]
    ['message_start', 'content_delta', 'content_delta', 'message_end']
    >>> collect(response_events(r)) == r
    True
    >>> r = make_response([{"type": "reasoning", "text": "Easy.", "signature": "s"},
    ...                    {"type": "text", "text": "Hi"}], refusal="no")
    >>> [e["type"] for e in response_events(r)][1:-1]
    ['reasoning_delta', 'reasoning_delta', 'content_delta', 'refusal_delta']
    >>> collect(response_events(r)) == r
    True
    """
    yield event("message_start", model=response.get("model", ""), id=response.get("id"))
    yield from _content_events(response.get("content", ""))
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
    if response.get("refusal") is not None:
        yield event("refusal_delta", text=response["refusal"])
    others = {"choices": response["choices"]} if response.get("choices") else {}
    yield event(
        "message_end",
        stop_reason=response.get("stop_reason") or "end_turn",
        usage=freeze(response.get("usage") or make_usage()),
        **others,
    )
