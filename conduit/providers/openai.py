"""OpenAI chat completions and embeddings: pure codecs (also used by every compatible server).

Each decoder turns an answer of the wrong shape (``{"choices": [null]}``, a number where text
belongs, a list at the top level) into a ``ProviderError`` naming the provider and the field
(:func:`~conduit.errors.malformed`): one guard per decoder, with precise messages for the
common shapes and the decoder's own exception as the reason otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

import attrs
from pyrsistent import PMap

from conduit._data import freeze_map, peek, thaw
from conduit._event import Event, event
from conduit._types import Request
from conduit.embeddings import embedding_response
from conduit.errors import (
    ConduitError,
    ShapeError,
    ValidationError,
    decode_event,
    error_from_response,
    kind,
    malformed,
    want,
)
from conduit.errors import want_list as _list
from conduit.errors import want_text as _text
from conduit.registry import lookup
from conduit.response import make_response, make_tool_call, make_usage
from conduit.sse import SSE
from conduit.streams import parse_arguments

__all__ = [
    "OPENAI",
    "WIRE",
    "StreamState",
    "compatible",
    "decode_chat",
    "decode_embeddings",
    "decode_usage",
    "encode_chat",
    "encode_embeddings",
    "encode_messages",
    "encode_tool_choice",
    "encode_tools",
    "from_registry",
    "stream_end",
    "stream_start",
    "stream_step",
    "stream_steps",
]

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}


def _block(block: Mapping[str, Any]) -> dict[str, Any]:
    if block["type"] == "text":
        return {"type": "text", "text": block["text"]}
    if block["type"] == "image":
        src = block["source"]
        url = (
            src["url"] if src["type"] == "url" else f"data:{src['media_type']};base64,{src['data']}"
        )
        return {"type": "image_url", "image_url": {"url": url}}
    raise ValidationError(f"OpenAI messages cannot hold a {block['type']!r} block")


def _content(value: Any) -> Any:
    return value if isinstance(value, str) else [_block(b) for b in value]


def _tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    args = call.get("raw_arguments")
    if args is None:
        args = json.dumps(thaw(call.get("arguments") or {}))
    return {
        "id": call["id"],
        "type": "function",
        "function": {"name": call["name"], "arguments": args},
    }


#: Encoded messages by the identity of the (immutable) message they encode: a conversation
#: re-sends its whole history every turn, and a frozen message encodes the same every time.
#: The dicts are shared between bodies, so nothing may mutate an encoded message.
_ENCODED: dict[int, tuple[Mapping[str, Any], dict[str, Any]]] = {}
_ENCODED_MAX = 4096


def _message(msg: Mapping[str, Any]) -> dict[str, Any]:
    hit = _ENCODED.get(id(msg))
    if hit is not None and hit[0] is msg:
        return hit[1]
    out = _encode_message(msg)
    if isinstance(msg, PMap):  # only frozen messages are sure to encode the same next time
        if len(_ENCODED) >= _ENCODED_MAX:
            _ENCODED.clear()
        _ENCODED[id(msg)] = (msg, out)
    return out


def _encode_message(msg: Mapping[str, Any]) -> dict[str, Any]:
    body = msg["content"]
    if len(msg) == 2 and type(body) is str:  # role and text only: most of every conversation
        return {"role": msg["role"], "content": body}
    out: dict[str, Any] = {"role": msg["role"], "content": _content(body)}
    if msg.get("name"):
        out["name"] = msg["name"]
    if msg["role"] == "tool":
        out["tool_call_id"] = msg["tool_call_id"]
    if msg.get("tool_calls"):
        out["tool_calls"] = [_tool_call(c) for c in msg["tool_calls"]]
        if not out["content"]:
            out["content"] = None
    return out


def encode_messages(messages: Any) -> list[dict[str, Any]]:
    """Return OpenAI's ``messages`` for Conduit messages (images as ``image_url`` parts).

    >>> import conduit as c
    >>> encode_messages([c.user("hi", c.image_base64("QUJD", "image/png"))])[0]["content"][1]
    {'type': 'image_url', 'image_url': {'url': 'data:image/png;base64,QUJD'}}
    """
    return [_message(m) for m in messages]


def encode_tools(tools: Any) -> list[dict[str, Any]]:
    """Return OpenAI's ``tools`` for Conduit tool maps (``name``, ``description``, ``parameters``).

    >>> tool = {"name": "f", "description": "d", "parameters": {"type": "object"}}
    >>> encode_tools([tool])[0]["function"]
    {'name': 'f', 'description': 'd', 'parameters': {'type': 'object'}}
    """
    out = []
    for tool in tools:
        fn = {"name": tool["name"], "description": tool.get("description", "")}
        fn["parameters"] = thaw(tool.get("parameters") or {"type": "object", "properties": {}})
        if tool.get("strict") is not None:
            fn["strict"] = tool["strict"]
        out.append({"type": "function", "function": fn})
    return out


def encode_tool_choice(choice: Any) -> Any:
    """Return OpenAI's ``tool_choice``: auto, none, required, or a named function.

    >>> encode_tool_choice("required")
    'required'
    >>> encode_tool_choice({"name": "f"})
    {'type': 'function', 'function': {'name': 'f'}}
    >>> encode_tool_choice("f")
    {'type': 'function', 'function': {'name': 'f'}}
    """
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, str):
        return {"type": "function", "function": {"name": choice}}
    if isinstance(choice, Mapping) and "name" in choice and "type" not in choice:
        return {"type": "function", "function": {"name": choice["name"]}}
    return thaw(choice)


def encode_chat(req: Request, stream: bool = False) -> dict[str, Any]:
    """Return the JSON body of a chat completion for *req* (options pass through as given).

    >>> import conduit as c
    >>> body = encode_chat(c.request("gpt-4o-mini", [c.system("Be brief."), c.user("Hi")],
    ...                              temperature=0.2, tool_choice="auto"))
    >>> body["model"], body["messages"][0], body["temperature"]
    ('gpt-4o-mini', {'role': 'system', 'content': 'Be brief.'}, 0.2)
    >>> encode_chat(c.request("m", "hi"), stream=True)["stream_options"]
    {'include_usage': True}
    """
    body: dict[str, Any] = {"model": req["model"], "messages": encode_messages(req["messages"])}
    tools = peek(req, "tools")
    if tools:
        body["tools"] = encode_tools(tools)
    options = req["options"]
    for key, value in options.items() if options else ():
        body[key] = encode_tool_choice(value) if key == "tool_choice" else thaw(value)
    if stream:
        body["stream"] = True
        body.setdefault("stream_options", {"include_usage": True})
    return body


def decode_usage(usage: Mapping[str, Any] | None) -> PMap[str, Any]:
    """Return Conduit's usage for OpenAI's (``cached_tokens`` become ``cache_read_tokens``).

    >>> decode_usage({"prompt_tokens": 16, "completion_tokens": 12, "total_tokens": 28,
    ...               "prompt_tokens_details": {"cached_tokens": 4}})["cache_read_tokens"]
    4
    """
    if not usage:
        return make_usage()
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if details else None
    return make_usage(
        usage.get("prompt_tokens") or 0,
        usage.get("completion_tokens") or 0,
        cache_read_tokens=cached,
    )


def _decode_call(call: Any, where: str) -> PMap[str, Any]:
    want(call, Mapping, where)
    fn = want(call.get("function") or {}, Mapping, f"{where}.function")
    name = _text(fn.get("name"), f"{where}.function.name")
    if not name:
        raise ShapeError(f"{where}.function.name is missing")
    raw = want(fn.get("arguments") or "", (str, Mapping), f"{where}.function.arguments")
    args, error = parse_arguments(raw) if isinstance(raw, str) else (freeze_map(raw), None)
    extra = {"raw_arguments": raw, "arguments_error": error} if error else {}
    return make_tool_call(_text(call.get("id"), f"{where}.id") or "", name, args, **extra)


def _answer_content(value: Any, where: str) -> Any:
    if value is None or type(value) is str:
        return value or ""
    return _list(value, where)  # content parts, as some compatible servers send


def decode_chat(req: Request, body: Mapping[str, Any], provider: str = "openai") -> Request:
    """Return *req* with the ``response`` decoded from a chat completion *body*.

    >>> import conduit as c
    >>> ctx = decode_chat(c.request("m"), {"id": "x", "model": "m", "choices": [{"message":
    ...     {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}]})
    >>> c.content(ctx), ctx["response"]["stop_reason"]
    ('Hi', 'end_turn')
    >>> decode_chat(c.request("m"), {"choices": [None]})
    Traceback (most recent call last):
    conduit.errors.ProviderError: openai sent a malformed chat completion: choices[0] is null, \
not an object; got {"choices": [null]}
    """
    try:
        return _decode_chat(req, body, provider)
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed(provider, "chat completion", body, exc) from exc


def _decode_chat(req: Request, body: Any, provider: str) -> Request:
    want(body, Mapping, "the answer")
    choices = body.get("choices")
    if not choices:
        raise (
            error_from_response(provider, None, {}, body)
            if "error" in body
            else malformed(provider, "chat completion", body, "it has no choices")
        )
    choice = want(_list(choices, "choices")[0], Mapping, "choices[0]")
    msg = want(choice.get("message") or {}, Mapping, "choices[0].message")
    where = "choices[0].message.tool_calls"
    calls = [
        _decode_call(c, f"{where}[{i}]")
        for i, c in enumerate(_list(msg.get("tool_calls") or (), where))
    ]
    finish = _text(choice.get("finish_reason"), "choices[0].finish_reason")
    reason = STOP_REASONS.get(finish or "", "end_turn")
    if calls and reason == "end_turn":
        reason = "tool_use"  # some compatible servers say "stop" after a tool call
    resp = make_response(
        _answer_content(msg.get("content"), "choices[0].message.content"),
        model=_text(body.get("model"), "model") or req["model"],
        id=_text(body.get("id"), "id"),
        stop_reason=reason,
        usage=decode_usage(want(body.get("usage"), (Mapping, type(None)), "usage")),
        tool_calls=calls,
    )
    return req.set("response", resp)


class StreamState(NamedTuple):
    """What a chat stream decoder remembers between events."""

    provider: str
    started: bool = False
    open_calls: tuple[int, ...] = ()
    stop_reason: str | None = None
    usage: PMap[str, Any] | None = None
    done: bool = False
    had_calls: bool = False


def stream_start(provider: str = "openai") -> StreamState:
    """Return the state before the first event of a stream."""
    return StreamState(provider)


def _close(state: StreamState) -> tuple[StreamState, list[Event]]:
    ends = [event("tool_call_end", index=i) for i in state.open_calls]
    return state._replace(open_calls=()), ends


def stream_step(state: StreamState, sse: SSE) -> tuple[StreamState, list[Event]]:
    """Return (state, Conduit events) after one server-sent event of a chat completion stream.

    >>> s = stream_start()
    >>> s, ev = stream_step(s, SSE("message", '{"id": "c1", "model": "m", "choices": '
    ...                                       '[{"delta": {"content": "Hi"}}]}'))
    >>> [e["type"] for e in ev]
    ['message_start', 'content_delta']
    """
    return stream_steps(state, (sse,))


def stream_steps(state: StreamState, sses: Any) -> tuple[StreamState, list[Event]]:
    """Return (state, Conduit events) after several server-sent events, in one loop.

    The same as :func:`stream_step` over each in turn; the loop is here, not in the caller, so
    the bulk of every stream (a plain text delta) costs one dictionary walk and one event.

    >>> first, hi = '{"choices": [{"delta": {}}]}', '{"choices": [{"delta": {"content": "Hi"}}]}'
    >>> s, ev = stream_steps(stream_start(), [SSE("message", d) for d in (first, hi, "[DONE]")])
    >>> [e["type"] for e in ev], s.done
    (['message_start', 'content_delta'], True)
    """
    out: list[Event] = []
    loads = json.loads
    chunk: Any = None
    try:
        for sse in sses:
            data = sse.data
            if data == "[DONE]":
                state = state._replace(done=True)
                continue
            try:
                chunk = loads(data)
            except ValueError:
                chunk = decode_event(state.provider, data)  # raises the right error
            choices = chunk.get("choices")
            if state.started and choices and len(choices) == 1 and "usage" not in chunk:
                choice = choices[0]  # fast path: a plain text delta
                delta = choice.get("delta")
                if delta and not choice.get("finish_reason") and "tool_calls" not in delta:
                    piece = delta.get("content")
                    if piece:
                        if type(piece) is not str:
                            raise ShapeError(f"the delta's content is {kind(piece)}, not text")
                        out.append(Event(type="content_delta", text=piece))
                    continue
            state, events = _chunk_step(state, chunk)
            out += events
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed(state.provider, "stream event", chunk, exc) from exc
    return state, out


def _chunk_step(state: StreamState, chunk: Any) -> tuple[StreamState, list[Event]]:
    want(chunk, Mapping, "the event")
    if "error" in chunk:
        raise error_from_response(state.provider, None, {}, chunk)
    events: list[Event] = []
    if not state.started:
        model, id_ = _text(chunk.get("model"), "model"), _text(chunk.get("id"), "id")
        events.append(event("message_start", model=model, id=id_))
        state = state._replace(started=True)
    usage = chunk.get("usage") or (want(chunk.get("x_groq") or {}, Mapping, "x_groq")).get("usage")
    if usage:
        state = state._replace(usage=decode_usage(want(usage, Mapping, "usage")))
    for i, choice in enumerate(_list(chunk.get("choices") or (), "choices")):
        want(choice, Mapping, f"choices[{i}]")
        delta = want(choice.get("delta") or {}, Mapping, f"choices[{i}].delta")
        piece = _text(delta.get("content"), f"choices[{i}].delta.content")
        if piece:
            events.append(event("content_delta", text=piece))
        where = f"choices[{i}].delta.tool_calls"
        for j, call in enumerate(_list(delta.get("tool_calls") or (), where)):
            want(call, Mapping, f"{where}[{j}]")
            index = call.get("index", 0)
            if type(index) is not int:
                raise ShapeError(f"{where}[{j}].index is {kind(index)}, not an integer")
            fn = want(call.get("function") or {}, Mapping, f"{where}[{j}].function")
            if index not in state.open_calls:
                events.append(
                    event(
                        "tool_call_start",
                        index=index,
                        id=_text(call.get("id"), f"{where}[{j}].id") or "",
                        name=_text(fn.get("name"), f"{where}[{j}].function.name") or "",
                    )
                )
                state = state._replace(open_calls=(*state.open_calls, index), had_calls=True)
            args = fn.get("arguments")
            if args:
                if not isinstance(args, str):
                    args = json.dumps(want(args, Mapping, f"{where}[{j}].function.arguments"))
                events.append(event("tool_call_delta", index=index, arguments_delta=args))
        reason = _text(choice.get("finish_reason"), f"choices[{i}].finish_reason")
        if reason:
            state, ends = _close(state)
            events.extend(ends)
            mapped = STOP_REASONS.get(reason, "end_turn")
            if mapped == "end_turn" and state.had_calls:
                mapped = "tool_use"  # Ollama ends a streamed tool call with "stop"
            state = state._replace(stop_reason=mapped)
    return state, events


def stream_end(state: StreamState) -> list[Event]:
    """Return the closing events of a finished stream; raise if it was cut short."""
    from conduit.errors import ConnectionError

    if not state.done and state.stop_reason is None:
        raise ConnectionError(
            f"{state.provider} stream ended before it was complete (no finish_reason, no [DONE]); "
            "the connection was probably cut: retry the call",
            data={"provider": state.provider},
        )
    state, ends = _close(state)
    end = event(
        "message_end",
        stop_reason=state.stop_reason or "end_turn",
        usage=state.usage or make_usage(),
    )
    return [*ends, end]


def encode_embeddings(req: Request) -> dict[str, Any]:
    """Return the JSON body of an embeddings request (vectors asked for as base64, as the SDK does).

    >>> import conduit as c
    >>> body = encode_embeddings(c.embedding_request("text-embedding-3-small", ["a"]))
    >>> body["input"], body["encoding_format"]
    (['a'], 'base64')
    """
    return {
        "model": req["model"],
        "input": list(req["input"]),
        "encoding_format": "base64",
        **thaw(req["options"]),
    }


def decode_embeddings(req: Request, body: Mapping[str, Any]) -> Request:
    """Return *req* with the response of an embeddings *body* (base64 or float rows, any order).

    >>> import conduit as c
    >>> ctx = decode_embeddings(c.embedding_request("m", ["a"]), {"model": "m", "data": [
    ...     {"index": 0, "embedding": [1.0, 0.0]}], "usage": {"prompt_tokens": 1}})
    >>> c.vectors(ctx).tolist(), ctx["response"]["usage"]["input_tokens"]
    ([[1.0, 0.0]], 1)
    """
    try:
        return _decode_embeddings(req, body)
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed("openai", "embeddings answer", body, exc) from exc


def _decode_embeddings(req: Request, body: Any) -> Request:
    want(body, Mapping, "the answer")
    if "data" not in body:
        raise (
            error_from_response("openai", None, {}, body)
            if "error" in body
            else malformed("openai", "embeddings answer", body, "it has no data")
        )
    rows = [want(r, Mapping, f"data[{i}]") for i, r in enumerate(_list(body["data"], "data"))]
    rows.sort(key=lambda d: want(d.get("index", 0), int, "data[].index"))
    vectors = [_row(r.get("embedding"), f"data[{i}].embedding") for i, r in enumerate(rows)]
    if len({type(v) for v in vectors}) > 1:
        raise ShapeError("data mixes base64 and number rows")
    usage = want(body.get("usage") or {}, Mapping, "usage")
    resp = embedding_response(
        _text(body.get("model"), "model") or req["model"],
        vectors,
        make_usage(usage.get("prompt_tokens") or 0, 0),
    )
    return req.set("response", resp)


def _row(value: Any, where: str) -> Any:
    """One embedding: base64 text of float32s, or a list of numbers."""
    if type(value) is str:
        if len(value) % 4:
            raise ShapeError(f"{where} is not base64 of float32 numbers")
        return value
    row = _list(value, where)
    if not all(type(x) in (int, float) for x in row):
        raise ShapeError(f"{where} holds something other than numbers")
    return row


# --- the wire: the shared HTTP shell around this codec ---------------------------------------

from conduit.providers import _http  # noqa: E402  (the codec stays importable alone)


def compatible(
    name: str, base_url: str, env_key: str | None, base_url_env: str | None = None
) -> _http.Provider:
    """Return the description of an OpenAI-compatible service (this codec, bearer auth)."""
    return _http.Provider(
        name=name,
        base_url=base_url,
        base_url_env=base_url_env,
        path="/chat/completions",
        env_key=env_key,
        encode=encode_chat,
        decode=decode_chat,
        stream_start=stream_start,
        stream_steps=stream_steps,
        stream_end=stream_end,
        auth=_http.bearer,
        embed_path="/embeddings",
        encode_embed=encode_embeddings,
        decode_embed=decode_embeddings,
    )


def from_registry(name: str) -> _http.Provider:
    """Return the OpenAI-compatible service the registry describes under *name*."""
    info = lookup(name)
    spec = compatible(info.name, info.base_url or "", info.env_key, info.base_url_env)
    return spec if info.embeddings else attrs.evolve(spec, embed_path=None)


OPENAI = from_registry("openai")
WIRE = _http.wire(OPENAI)
