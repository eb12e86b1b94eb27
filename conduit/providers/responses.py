"""OpenAI's Responses API (``POST /v1/responses``): a pure codec on the shared HTTP shell.

Same Conduit shapes in and out as chat completions. Requests are stateless by default
(``store: false``): everything the next turn needs travels in the conversation itself. A
reasoning model is asked for ``include: ["reasoning.encrypted_content"]``, and each reasoning
item it returns becomes a ``reasoning`` block whose ``text`` is the summary (parts joined by
blank lines) and whose ``signature`` is the item as received (compact JSON). Sent back, an item
with its encrypted content goes without its id, as OpenAI's Codex client sends it: nothing has
to be looked up on the server, so neither ``store`` nor the ids of the items that followed it
matter; an item without encrypted content can only be a reference to a stored one and goes back
as received (id and summary), unless ``store`` is false, where it could not be found and is
left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from pyrsistent import PMap, pmap

from conduit import catalog
from conduit._data import peek, thaw
from conduit._event import Event, event
from conduit._types import Request
from conduit.errors import (
    ConduitError,
    ConnectionError,
    ShapeError,
    ValidationError,
    decode_event,
    error_from_response,
    kind,
    malformed,
    want,
)
from conduit.errors import want_count as count
from conduit.errors import want_list as _list
from conduit.errors import want_text as _text
from conduit.providers import _http
from conduit.providers.openai import dialect_for
from conduit.registry import lookup
from conduit.response import make_response, make_tool_call, make_usage
from conduit.schema import is_strict_schema
from conduit.sse import SSE
from conduit.streams import parse_arguments

__all__ = [
    "RESPONSES",
    "WIRE",
    "StreamState",
    "decode_chat",
    "decode_usage",
    "encode_chat",
    "encode_input",
    "encode_text_format",
    "encode_tool_choice",
    "encode_tools",
    "is_reasoning_model",
    "reasoning_block",
    "stream_end",
    "stream_start",
    "stream_step",
    "stream_steps",
]

ENCRYPTED = "reasoning.encrypted_content"
_AUDIO_FORMATS = {"audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/wav": "wav", "audio/x-wav": "wav"}
INCOMPLETE = {"max_output_tokens": "max_tokens", "content_filter": "content_filter"}

#: Reasoning models by name, for models the catalog does not know (o-series, gpt-5, codex).
_REASONING = re.compile(r"(?:ft:)?(?:o\d|gpt-5(?!-chat)|codex)")


def is_reasoning_model(model: str) -> bool:
    """Return True when *model* reasons (the catalog's word, else the name rule).

    >>> is_reasoning_model("gpt-5-mini"), is_reasoning_model("o3"), is_reasoning_model("gpt-4o")
    (True, True, False)
    """
    info = catalog.entry_for("openai", model)
    if info is not None and info.reasoning is not None:
        return info.reasoning
    return _REASONING.match(model) is not None


# --- encoding ---------------------------------------------------------------------------------


def _part(block: Mapping[str, Any]) -> dict[str, Any]:
    """One user content block as a Responses input part."""
    kind_ = block["type"]
    if kind_ == "text":
        return {"type": "input_text", "text": block["text"]}
    src = block.get("source") or {}
    if kind_ == "image":
        url = src["url"] if src["type"] == "url" else _data_url(src, "image/png")
        out = {"type": "input_image", "image_url": url}
        if block.get("detail"):
            out["detail"] = block["detail"]
        return out
    if kind_ == "document":
        if src["type"] == "url":
            return {"type": "input_file", "file_url": src["url"]}
        name = block.get("title") or "document.pdf"
        return {"type": "input_file", "filename": name, "file_data": _data_url(src, "")}
    if kind_ == "audio":
        media_type = src.get("media_type") or ""
        fmt = _AUDIO_FORMATS.get(media_type) or media_type.rpartition("/")[2]
        return {"type": "input_audio", "input_audio": {"data": src["data"], "format": fmt}}
    raise ValidationError(f"responses messages cannot hold a {kind_!r} block")


def _data_url(src: Mapping[str, Any], default: str) -> str:
    return f"data:{src.get('media_type') or default or 'application/pdf'};base64,{src['data']}"


def reasoning_block(item: Mapping[str, Any]) -> PMap[str, Any]:
    """Return the ``reasoning`` block for a reasoning output item: its summary as the text,
    the item itself (compact JSON) as the signature, so that it can go back as received.

    >>> b = reasoning_block({"id": "rs_1", "type": "reasoning",
    ...                      "summary": [{"type": "summary_text", "text": "Hm."}]})
    >>> b["text"], json.loads(b["signature"])["id"]
    ('Hm.', 'rs_1')
    """
    return pmap(
        {
            "type": "reasoning",
            "text": _summary(item, "item"),
            "signature": json.dumps(thaw(item), ensure_ascii=False, separators=(",", ":")),
        }
    )


def _summary(item: Mapping[str, Any], where: str) -> str:
    parts = _list(item.get("summary") or (), f"{where}.summary")
    texts = [_text(want(p, Mapping, f"{where}.summary[]").get("text"), where) for p in parts]
    return "\n\n".join(t or "" for t in texts)


def _replay(block: Mapping[str, Any], stateless: bool) -> dict[str, Any] | None:
    """The input item that sends a reasoning block back, or None when it cannot go back (not
    this API's, or a reference to a stored item while nothing is stored)."""
    try:
        item = json.loads(block.get("signature") or "")
    except ValueError:
        return None
    if not isinstance(item, dict) or item.get("type") != "reasoning":
        return None
    if item.get("encrypted_content"):
        out = {"type": "reasoning", "summary": item.get("summary") or []}
        out["encrypted_content"] = item["encrypted_content"]
        if item.get("content"):
            out["content"] = item["content"]
        return out
    if stateless:
        return None
    return {k: v for k, v in item.items() if k != "status"}


def _assistant(msg: Mapping[str, Any], stateless: bool) -> list[dict[str, Any]]:
    body = msg["content"]
    blocks = [{"type": "text", "text": body}] if isinstance(body, str) else body
    items: list[dict[str, Any]] = []
    texts: list[str] = []
    for block in blocks:
        if block["type"] == "reasoning":
            _flush(texts, items)
            item = _replay(block, stateless)
            if item is not None:
                items.append(item)
        elif block["type"] == "text":
            texts.append(block["text"])
        else:
            raise ValidationError(
                f"responses assistant turns cannot hold a {block['type']!r} block"
            )
    _flush(texts, items)
    for call in msg.get("tool_calls") or ():
        items.append(
            {
                "type": "function_call",
                "call_id": call["id"],
                "name": call["name"],
                "arguments": _arguments(call),
            }
        )
    return items


def _arguments(call: Mapping[str, Any]) -> str:
    raw = call.get("raw_arguments")
    if raw is not None:
        return str(raw)
    args = thaw(call.get("arguments") or {})
    return json.dumps(args, ensure_ascii=False, separators=(",", ":"))


def _flush(texts: list[str], items: list[dict[str, Any]]) -> None:
    text = "".join(texts)
    texts.clear()
    if text:
        content = [{"type": "output_text", "text": text}]
        items.append({"type": "message", "role": "assistant", "content": content})


def _user_content(body: Any) -> Any:
    if isinstance(body, str):
        return body
    return [_part(b) for b in body if b["type"] != "reasoning"]


def _message(msg: Mapping[str, Any], stateless: bool) -> list[dict[str, Any]]:
    role = msg["role"]
    if role == "assistant":
        return _assistant(msg, stateless)
    if role == "tool":
        body = msg["content"]
        output = body if isinstance(body, str) else [_part(b) for b in body]
        return [{"type": "function_call_output", "call_id": msg["tool_call_id"], "output": output}]
    wire_role = "developer" if role == "system" else role
    return [{"role": wire_role, "content": _user_content(msg["content"])}]


def encode_input(messages: Any, stateless: bool = True) -> list[dict[str, Any]]:
    """Return the ``input`` items for Conduit messages.

    System messages are ``developer`` messages in place (as the official SDK's users send
    them); assistant text is an ``output_text`` message; tool calls are ``function_call`` items
    and tool results ``function_call_output`` items; reasoning blocks go back as reasoning items.

    >>> import conduit as c
    >>> encode_input([c.system("Be brief."), c.user("Hi")])
    [{'role': 'developer', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Hi'}]
    >>> call = {"id": "call_1", "name": "f", "arguments": {"x": 1}}
    >>> [i["type"] for i in encode_input([c.assistant("", [call]), c.tool_result("call_1", "2")])]
    ['function_call', 'function_call_output']
    """
    return [item for m in messages for item in _message(m, stateless)]


def encode_tools(tools: Any, strict: bool = False) -> list[dict[str, Any]]:
    """Return Responses ``tools`` for Conduit tool maps (flat: no ``function`` wrapper).

    ``strict`` is always sent: a tool's own ``strict`` wins, else True when *strict* and its
    parameters qualify (:func:`~conduit.schema.is_strict_schema`), else False.

    >>> closed = {"type": "object", "properties": {}, "additionalProperties": False}
    >>> encode_tools([{"name": "f", "description": "d", "parameters": closed}], strict=True)[0] == {
    ...     "type": "function", "name": "f", "description": "d", "parameters": closed,
    ...     "strict": True}
    True
    """
    out = []
    for tool in tools:
        params = tool.get("parameters") or {"type": "object", "properties": {}}
        spec: dict[str, Any] = {"type": "function", "name": tool["name"]}
        if tool.get("description"):
            spec["description"] = tool["description"]
        spec["parameters"] = thaw(params)
        own = tool.get("strict")
        spec["strict"] = own if own is not None else bool(strict and is_strict_schema(params))
        out.append(spec)
    return out


def encode_tool_choice(choice: Any) -> Any:
    """Return the Responses ``tool_choice``: auto, none, required, or a named function.

    >>> encode_tool_choice("auto"), encode_tool_choice("f")
    ('auto', {'type': 'function', 'name': 'f'})
    >>> encode_tool_choice({"type": "function", "function": {"name": "f"}})
    {'type': 'function', 'name': 'f'}
    """
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, str):
        return {"type": "function", "name": choice}
    if isinstance(choice, Mapping):
        fn = choice.get("function")
        if isinstance(fn, Mapping) and "name" in fn:
            return {"type": "function", "name": fn["name"]}
        if "name" in choice and "type" not in choice:
            return {"type": "function", "name": choice["name"]}
    return thaw(choice)


def encode_text_format(fmt: Any, strict: bool = False) -> dict[str, Any]:
    """Return ``text.format`` for a chat-style ``response_format`` (json_schema flattened).

    >>> encode_text_format({"type": "json_schema", "json_schema": {"name": "c",
    ...                     "schema": {"type": "object"}}})["name"]
    'c'
    >>> encode_text_format({"type": "json_object"})
    {'type': 'json_object'}
    """
    fmt = thaw(fmt)
    spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    if not isinstance(spec, dict) or fmt.get("type") != "json_schema":
        return fmt  # type: ignore[no-any-return]
    out = {"type": "json_schema", **spec}
    if "strict" not in out and strict and is_strict_schema(spec.get("schema")):
        out["strict"] = True
    return out


def encode_chat(req: Request, stream: bool = False, provider: str = "responses") -> dict[str, Any]:
    """Return the JSON body of ``POST /responses`` for *req*.

    ``store`` is false unless given; a reasoning model is asked for its encrypted reasoning
    (added to any ``include`` given). ``max_tokens`` is ``max_output_tokens``,
    ``reasoning_effort`` is ``reasoning.effort``, ``response_format`` is ``text.format``;
    other options pass through.

    >>> import conduit as c
    >>> body = encode_chat(c.request("gpt-5-mini", "hi", max_tokens=50, reasoning_effort="low"))
    >>> body["input"], body["max_output_tokens"], body["reasoning"], body["store"]
    ([{'role': 'user', 'content': 'hi'}], 50, {'effort': 'low'}, False)
    >>> body["include"]
    ['reasoning.encrypted_content']
    """
    model = req["model"]
    official = dialect_for("openai", req).official
    options = req["options"] or pmap()
    if options and official:
        info = catalog.entry_for("openai", model)
        if info is not None and info.unsupported_options:
            options = catalog.drop_unsupported(f"openai:{model}", options)
    store = options.get("store", False)
    body: dict[str, Any] = {"model": model, "input": encode_input(req["messages"], not store)}
    tools = peek(req, "tools")
    if tools:
        body["tools"] = encode_tools(tools, strict=official)
    for key, value in options.items():
        _option(body, key, value, official)
    body.setdefault("store", False)
    if is_reasoning_model(model):
        include = list(body.get("include") or ())
        body["include"] = include if ENCRYPTED in include else [*include, ENCRYPTED]
    if stream:
        body["stream"] = True
    return body


def _option(body: dict[str, Any], key: str, value: Any, official: bool) -> None:
    value = thaw(value)
    if key in ("max_tokens", "max_completion_tokens"):
        body.setdefault("max_output_tokens", value)
        if key == "max_completion_tokens":
            body["max_output_tokens"] = value
    elif key == "reasoning_effort":
        body["reasoning"] = {"effort": value, **body.get("reasoning", {})}
    elif key == "reasoning" and isinstance(value, dict):
        body["reasoning"] = {**body.get("reasoning", {}), **value}
    elif key == "response_format":
        body["text"] = {**body.get("text", {}), "format": encode_text_format(value, official)}
    elif key == "text":
        body["text"] = {**value, **body.get("text", {})}
    elif key == "tool_choice":
        body[key] = encode_tool_choice(value)
    else:
        body[key] = value


# --- decoding ---------------------------------------------------------------------------------


def decode_usage(usage: Mapping[str, Any] | None) -> PMap[str, Any]:
    """Return Conduit's usage for a Responses ``usage`` (cached and reasoning token details).

    >>> u = decode_usage({"input_tokens": 32, "output_tokens": 1095, "total_tokens": 1127,
    ...     "input_tokens_details": {"cached_tokens": 4},
    ...     "output_tokens_details": {"reasoning_tokens": 1088}})
    >>> u["total_tokens"], u["cache_read_tokens"], u["reasoning_tokens"]
    (1127, 4, 1088)
    """
    if not usage:
        return make_usage()
    inputs = want(usage.get("input_tokens_details") or {}, Mapping, "usage.input_tokens_details")
    outputs = want(usage.get("output_tokens_details") or {}, Mapping, "usage.output_tokens_details")
    return make_usage(
        count(usage, "usage", "input_tokens") or 0,
        count(usage, "usage", "output_tokens") or 0,
        cache_read_tokens=count(inputs, "usage.input_tokens_details", "cached_tokens"),
        # 0: not a reasoning model
        reasoning_tokens=count(outputs, "usage.output_tokens_details", "reasoning_tokens") or None,
    )


def _call(item: Mapping[str, Any], where: str) -> PMap[str, Any]:
    name = _text(item.get("name"), f"{where}.name")
    if not name:
        raise ShapeError(f"{where}.name is missing")
    raw = _text(item.get("arguments"), f"{where}.arguments") or ""
    args, error = parse_arguments(raw)
    extra = {"raw_arguments": raw, "arguments_error": error} if error else {}
    return make_tool_call(_text(item.get("call_id"), f"{where}.call_id") or "", name, args, **extra)


def _stop(body: Mapping[str, Any], calls: bool) -> str:
    if body.get("status") == "incomplete":
        details = want(body.get("incomplete_details") or {}, Mapping, "incomplete_details")
        reason = _text(details.get("reason"), "incomplete_details.reason")
        return INCOMPLETE.get(reason or "", "end_turn")
    return "tool_use" if calls else "end_turn"


#: Error codes of failed responses that are not the caller's fault, by error type.
_CODE_TYPES = {
    "server_error": "server_error",
    "vector_store_timeout": "server_error",
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "rate_limit_error",
}


def _failure(provider: str, error: Any) -> ConduitError:
    """The error for a failed response or an error event (its error object, or the event)."""
    err = dict(want(error, Mapping, "error"))
    code = err.get("code")
    kind_ = _CODE_TYPES.get(str(code)) or _CODE_TYPES.get(str(err.get("type")))
    if kind_ is None and err.get("type") in (None, "error"):
        kind_ = "invalid_request_error"
    err["type"] = kind_ or err.get("type")
    err.pop("sequence_number", None)
    return error_from_response(provider, None, {}, {"error": err})


def decode_chat(req: Request, body: Mapping[str, Any], provider: str = "responses") -> Request:
    """Return *req* with the ``response`` decoded from a Responses API *body*.

    >>> import conduit as c
    >>> ctx = decode_chat(c.request("m"), {"id": "resp_1", "model": "m", "status": "completed",
    ...     "output": [{"type": "message", "role": "assistant",
    ...                 "content": [{"type": "output_text", "text": "Hi"}]}]})
    >>> c.content(ctx), ctx["response"]["stop_reason"]
    ('Hi', 'end_turn')
    """
    try:
        return _decode(req, body, provider)
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed(provider, "response", body, exc) from exc


def _decode(req: Request, body: Any, provider: str) -> Request:
    want(body, Mapping, "the answer")
    if body.get("status") == "failed" or ("output" not in body and body.get("error")):
        raise _failure(provider, body.get("error") or {"message": "the response failed"})
    if "output" not in body:
        raise malformed(provider, "response", body, "it has no output")
    blocks: list[Any] = []
    texts: list[str] = []
    refusal: list[str] = []
    calls = []
    thinking = False
    for i, item in enumerate(_list(body["output"], "output")):
        where = f"output[{i}]"
        want(item, Mapping, where)
        kind_ = item.get("type")
        if kind_ == "message":
            for j, part in enumerate(_list(item.get("content") or (), f"{where}.content")):
                want(part, Mapping, f"{where}.content[{j}]")
                if part.get("type") == "output_text":
                    texts.append(_text(part.get("text"), f"{where}.content[{j}].text") or "")
                elif part.get("type") == "refusal":
                    refusal.append(_text(part.get("refusal"), f"{where}.content[{j}]") or "")
        elif kind_ == "function_call":
            calls.append(_call(item, where))
        elif kind_ == "reasoning":
            _summary(item, where)  # checks the shape
            _texts_into(blocks, texts)
            blocks.append(reasoning_block(item))
            thinking = True
    _texts_into(blocks, texts)
    content: Any = tuple(blocks) if thinking else "".join(b["text"] for b in blocks)
    refused = "".join(refusal) if refusal else None
    stop = "refusal" if refused is not None else _stop(body, bool(calls))
    resp = make_response(
        content,
        model=_text(body.get("model"), "model") or req["model"],
        id=_text(body.get("id"), "id"),
        stop_reason=stop,
        usage=decode_usage(want(body.get("usage"), (Mapping, type(None)), "usage")),
        tool_calls=calls,
        refusal=refused,
    )
    return req.set("response", resp)


def _texts_into(blocks: list[Any], texts: list[str]) -> None:
    text = "".join(texts)
    texts.clear()
    if text:
        blocks.append(pmap({"type": "text", "text": text}))


# --- streams ----------------------------------------------------------------------------------


class StreamState(NamedTuple):
    """What the Responses stream decoder remembers between events (a value: never mutated)."""

    provider: str
    started: bool = False
    #: output_index -> tool call index, for the function calls seen so far
    calls: PMap[int, int] = pmap()
    #: tool call indexes whose arguments have arrived in deltas
    streamed: frozenset[int] = frozenset()
    #: tool call indexes ended
    ended: frozenset[int] = frozenset()
    #: output_index -> the reasoning summary text sent so far
    thoughts: PMap[int, str] = pmap()
    refused: bool = False
    stop_reason: str | None = None
    usage: PMap[str, Any] | None = None
    done: bool = False


def stream_start(provider: str = "responses") -> StreamState:
    """Return the state before the first event of a stream."""
    return StreamState(provider)


def stream_step(state: StreamState, sse: SSE) -> tuple[StreamState, list[Event]]:
    """Return (state, Conduit events) after one server-sent event of a Responses stream.

    >>> s, ev = stream_step(stream_start(), SSE("response.output_text.delta",
    ...     '{"type": "response.output_text.delta", "output_index": 0, "delta": "Hi"}'))
    >>> [e["type"] for e in ev]
    ['content_delta']
    """
    return stream_steps(state, (sse,))


def stream_steps(state: StreamState, sses: Any) -> tuple[StreamState, list[Event]]:
    """Return (state, Conduit events) after several server-sent events."""
    out: list[Event] = []
    data: Any = None
    try:
        for sse in sses:
            if not sse.data or sse.data == "[DONE]":
                continue
            try:
                data = json.loads(sse.data)
            except ValueError:
                data = decode_event(state.provider, sse.data)  # raises the right error
            want(data, Mapping, "the event")
            state, events = _step(state, data)
            out += events
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed(state.provider, "stream event", data, exc) from exc
    return state, out


def _started(state: StreamState, data: Mapping[str, Any]) -> tuple[StreamState, list[Event]]:
    if state.started:
        return state, []
    resp = want(data.get("response") or {}, Mapping, "response")
    model, id_ = _text(resp.get("model"), "response.model"), _text(resp.get("id"), "response.id")
    return state._replace(started=True), [event("message_start", model=model, id=id_)]


def _step(state: StreamState, data: Mapping[str, Any]) -> tuple[StreamState, list[Event]]:
    kind_ = data.get("type")
    if kind_ == "response.output_text.delta":
        piece = _text(data.get("delta"), "delta")
        return state, [event("content_delta", text=piece)] if piece else []
    if kind_ == "response.reasoning_summary_text.delta":
        return _thought(state, data, _text(data.get("delta"), "delta") or "")
    if kind_ == "response.reasoning_summary_part.added" and data.get("summary_index"):
        return _thought(state, data, "\n\n")
    if kind_ == "response.function_call_arguments.delta":
        index = state.calls.get(_at(data) or 0)
        piece = _text(data.get("delta"), "delta")
        if index is None or not piece:
            return state, []
        state = state._replace(streamed=state.streamed | {index})
        return state, [event("tool_call_delta", index=index, arguments_delta=piece)]
    if kind_ == "response.refusal.delta":
        piece = _text(data.get("delta"), "delta") or ""
        return state._replace(refused=True), [event("refusal_delta", text=piece)]
    if kind_ == "response.output_item.added":
        return _added(state, data)
    if kind_ == "response.output_item.done":
        return _item_done(state, data)
    if kind_ in ("response.created", "response.in_progress", "response.queued"):
        return _started(state, data)
    if kind_ in ("response.completed", "response.incomplete"):
        return _finished(state, data)
    if kind_ == "response.failed":
        resp = want(data.get("response") or {}, Mapping, "response")
        raise _failure(state.provider, resp.get("error") or {"message": "the response failed"})
    if kind_ == "error":
        raise _failure(state.provider, data.get("error") or data)
    return state, []


def _at(data: Mapping[str, Any]) -> int | None:
    """The event's ``output_index`` (None if absent); anything but an integer is named."""
    at = data.get("output_index")
    if at is None or type(at) is int:
        return at
    raise ShapeError(f"output_index is {kind(at)}, not an integer")


def _thought(
    state: StreamState, data: Mapping[str, Any], text: str
) -> tuple[StreamState, list[Event]]:
    at: Any = _at(data)
    if not text or type(at) is not int:
        return state, []
    thoughts = state.thoughts.set(at, state.thoughts.get(at, "") + text)
    return state._replace(thoughts=thoughts), [event("reasoning_delta", text=text)]


def _added(state: StreamState, data: Mapping[str, Any]) -> tuple[StreamState, list[Event]]:
    item = want(data.get("item") or {}, Mapping, "item")
    at: Any = _at(data)
    if item.get("type") != "function_call" or at in state.calls:
        return state, []
    index = len(state.calls)
    name = _text(item.get("name"), "item.name") or ""
    start = event(
        "tool_call_start", index=index, id=_text(item.get("call_id"), "item") or "", name=name
    )
    return state._replace(calls=state.calls.set(at, index)), [start]


def _item_done(state: StreamState, data: Mapping[str, Any]) -> tuple[StreamState, list[Event]]:
    item = want(data.get("item") or {}, Mapping, "item")
    at: Any = _at(data)
    if item.get("type") == "reasoning":
        full, sent = _summary(item, "item"), state.thoughts.get(at, "")
        rest = full[len(sent) :] if full.startswith(sent) else ""
        block = reasoning_block(item)
        return state, [event("reasoning_delta", text=rest, signature=block["signature"])]
    if item.get("type") != "function_call":
        return state, []
    events: list[Event] = []
    if at not in state.calls:  # never announced: the whole call now
        state, events = _added(state, {"item": item, "output_index": at})
    index = state.calls[at]
    if index not in state.streamed and item.get("arguments"):
        args = _text(item["arguments"], "item.arguments")
        events.append(event("tool_call_delta", index=index, arguments_delta=args))
    events.append(event("tool_call_end", index=index))
    return state._replace(ended=state.ended | {index}), events


def _finished(state: StreamState, data: Mapping[str, Any]) -> tuple[StreamState, list[Event]]:
    state, events = _started(state, data)
    resp = want(data.get("response") or {}, Mapping, "response")
    usage = decode_usage(want(resp.get("usage"), (Mapping, type(None)), "response.usage"))
    stop = "refusal" if state.refused else _stop(resp, bool(state.calls))
    return state._replace(stop_reason=stop, usage=usage, done=True), events


def stream_end(state: StreamState) -> list[Event]:
    """Return the closing events of a finished stream; raise if it was cut short."""
    if not state.done:
        raise ConnectionError(
            f"{state.provider} stream ended before it was complete (no response.completed); "
            "the connection was probably cut: retry the call",
            data={"provider": state.provider},
        )
    open_ = sorted(set(state.calls.values()) - state.ended)
    ends = [event("tool_call_end", index=i) for i in open_]
    stop = state.stop_reason or "end_turn"
    return [*ends, event("message_end", stop_reason=stop, usage=state.usage or make_usage())]


# --- the wire ---------------------------------------------------------------------------------

_INFO = lookup("responses")

RESPONSES = _http.Provider(
    name=_INFO.name,
    base_url=_INFO.base_url or "",
    base_url_env=_INFO.base_url_env,
    path="/responses",
    env_key=_INFO.env_key,
    encode=encode_chat,
    decode=decode_chat,
    stream_start=stream_start,
    stream_steps=stream_steps,
    stream_end=stream_end,
    auth=_http.bearer,
)
WIRE = _http.wire(RESPONSES)
