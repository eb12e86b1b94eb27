"""Anthropic Messages API: pure codecs for requests, responses and streams.

Like OpenAI's, each decoder turns an answer or event of the wrong shape into a
``ProviderError`` naming the field (:func:`~conduit.errors.malformed`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from pyrsistent import PMap, pmap

from conduit import catalog
from conduit._data import thaw
from conduit._event import Event, event
from conduit._types import Request
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
from conduit.errors import want_count as _count
from conduit.errors import want_list as _list
from conduit.errors import want_text as _text
from conduit.registry import lookup as provider_info
from conduit.response import joined_content, make_response, make_tool_call, make_usage
from conduit.sse import SSE

__all__ = [
    "ANTHROPIC",
    "WIRE",
    "DEFAULT_MAX_TOKENS",
    "StreamState",
    "decode_chat",
    "decode_usage",
    "encode_chat",
    "encode_messages",
    "encode_response_format",
    "encode_tool_choice",
    "encode_tools",
    "refusal_text",
    "stream_end",
    "stream_start",
    "stream_step",
]

log = logging.getLogger("conduit")

#: ``max_tokens`` is required by Anthropic: what is sent when a request sets none (the registry's
#: number, which ``c.estimate`` reads too).
DEFAULT_MAX_TOKENS: int = provider_info("anthropic").default_max_tokens or 4096

STOP_REASONS = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "pause_turn": "end_turn",
    "refusal": "refusal",
    "model_context_window_exceeded": "max_tokens",
}

# Sampling options Anthropic has no equivalent for; dropped with a warning, never silently.
UNSUPPORTED = ("seed", "frequency_penalty", "presence_penalty", "logprobs", "n")
RENAMED = {"stop": "stop_sequences"}


#: Block types Anthropic cannot take: a clear error rather than a 400 from the API.
REJECTED = {"audio": "audio input"}


def _reasoning(block: Mapping[str, Any]) -> dict[str, Any] | None:
    """A reasoning block goes back exactly as Anthropic sent it; one it never signed (another
    provider's reasoning, say) cannot be verified by the API and is left out."""
    if block.get("redacted") is not None:
        return {"type": "redacted_thinking", "data": block["redacted"]}
    if block.get("signature") is None:
        return None
    return {"type": "thinking", "thinking": block["text"], "signature": block["signature"]}


def _block(block: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = block["type"]
    if kind == "text":
        if not block["text"]:
            return None  # Anthropic rejects empty text blocks
        out: dict[str, Any] = {"type": "text", "text": block["text"]}
    elif kind == "reasoning":
        return _reasoning(block)
    elif kind == "image" or kind == "document":
        out = {"type": kind, "source": thaw(block["source"])}
        if block.get("title") is not None:
            out["title"] = block["title"]
    elif kind in REJECTED:
        raise ValidationError(
            f"anthropic cannot take {REJECTED[kind]} ({kind!r} blocks): send it to a provider "
            "that accepts it (openai, azure, gemini), or transcribe it to text first",
            data={"provider": "anthropic"},
        )
    else:
        out = thaw(block)
    if block.get("cache_control"):
        out["cache_control"] = thaw(block["cache_control"])
    return out


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [b for b in map(_block, content) if b is not None]


def _turn(msg: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    role = msg["role"]
    if role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": msg["tool_call_id"]}
        content = msg["content"]
        result["content"] = content if isinstance(content, str) else _blocks(content)
        if msg.get("is_error"):
            result["is_error"] = True
        return "user", [result]
    blocks = _blocks(msg["content"])
    for call in msg.get("tool_calls") or ():
        blocks.append(
            {
                "type": "tool_use",
                "id": call["id"],
                "name": call["name"],
                "input": thaw(call.get("arguments") or {}),
            }
        )
    return role, blocks


def _simple(blocks: list[dict[str, Any]]) -> Any:
    """A lone plain text block is sent as a string, as the official SDK's users write it."""
    if len(blocks) == 1 and blocks[0]["type"] == "text" and set(blocks[0]) == {"type", "text"}:
        return blocks[0]["text"]
    return blocks


def encode_messages(messages: Any) -> tuple[Any, list[dict[str, Any]]]:
    """Return (``system``, ``messages``) for Anthropic: system text moves to the top level,
    tool results become user turns, and consecutive turns of one role merge.

    >>> import conduit as c
    >>> system, msgs = encode_messages([c.system("Be brief."), c.user("Hi"),
    ...     c.assistant("", [{"id": "t1", "name": "f", "arguments": {"x": 1}}]),
    ...     c.tool_result("t1", "42"), c.tool_result("t2", "43")])
    >>> system, [m["role"] for m in msgs], msgs[1]["content"][0]["type"]
    ('Be brief.', ['user', 'assistant', 'user'], 'tool_use')
    >>> [b["tool_use_id"] for b in msgs[2]["content"]]
    ['t1', 't2']
    """
    system_blocks: list[dict[str, Any]] = []
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for i, msg in enumerate(messages):
        if msg["role"] == "system":
            system_blocks.extend(_blocks(msg["content"]))
            continue
        role, blocks = _turn(msg)
        if not blocks:
            raise ValidationError(
                f"message {i} ({msg['role']}) is empty, and Anthropic rejects empty messages: "
                "remove it or give it some text"
            )
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    plain = all(set(b) == {"type", "text"} for b in system_blocks)
    system = "\n\n".join(b["text"] for b in system_blocks) if plain else system_blocks
    return system, [{"role": role, "content": _simple(blocks)} for role, blocks in turns]


def encode_tools(tools: Any) -> list[dict[str, Any]]:
    """Return Anthropic's ``tools`` (``input_schema``; ``cache_control`` passed through).

    >>> encode_tools([{"name": "f", "description": "d", "parameters": {"type": "object"}}])
    [{'name': 'f', 'description': 'd', 'input_schema': {'type': 'object'}}]
    """
    out = []
    for tool in tools:
        spec = {
            "name": tool["name"],
            "description": tool.get("description", ""),
            "input_schema": thaw(tool.get("parameters") or {"type": "object"}),
        }
        if tool.get("cache_control"):
            spec["cache_control"] = thaw(tool["cache_control"])
        out.append(spec)
    return out


def encode_tool_choice(choice: Any) -> dict[str, Any]:
    """Return Anthropic's ``tool_choice`` for Conduit's (auto, none, required, a name).

    >>> encode_tool_choice("required"), encode_tool_choice("get_weather")
    ({'type': 'any'}, {'type': 'tool', 'name': 'get_weather'})
    """
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice in ("required", "any"):
        return {"type": "any"}
    if isinstance(choice, str):
        return {"type": "tool", "name": choice}
    if isinstance(choice, Mapping) and "name" in choice:
        return {"type": "tool", "name": choice["name"]}
    return dict(thaw(choice))


def encode_response_format(fmt: Any) -> dict[str, Any]:
    """Return the tool that carries an OpenAI-style JSON-schema ``response_format`` on Anthropic.

    Anthropic answers in a schema by being forced to call a tool whose input is that schema;
    this works on every Claude model (``output_config`` may be sent as an option directly).
    With thinking on, the API refuses a forced tool call: :func:`encode_chat` then offers the
    tool with ``tool_choice: auto`` and a system instruction to answer through it (an answer
    given as JSON text instead is read too).

    >>> fmt = {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object"}}}
    >>> encode_response_format(fmt)["name"], encode_response_format(fmt)["input_schema"]
    ('city', {'type': 'object'})
    """
    fmt = thaw(fmt)
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema", spec) if isinstance(spec, dict) else spec
        name = spec.get("name", "answer") if isinstance(spec, dict) else "answer"
        return {
            "name": name,
            "description": "Give the answer in this format.",
            "input_schema": schema,
        }
    raise ValidationError(
        f"Anthropic has no response_format {fmt!r:.60}: give a JSON schema "
        '({"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}) '
        "or use c.with_schema"
    )


def _thinking(body: Mapping[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive")


def _default_max_tokens(options: Mapping[str, Any]) -> int:
    """``max_tokens`` must exceed the thinking budget: room for the budget and an answer."""
    return DEFAULT_MAX_TOKENS + (catalog.thinking_budget(options) or 0)


def _with_instruction(system: Any, name: str) -> Any:
    note = f"Give your final answer by calling the {name} tool with it, and nothing else."
    if not system:
        return note
    if isinstance(system, str):
        return f"{system}\n\n{note}"
    return [*system, {"type": "text", "text": note}]


def encode_chat(req: Request, stream: bool = False) -> dict[str, Any]:
    """Return the JSON body of a Messages API call for *req*.

    >>> import conduit as c
    >>> body = encode_chat(c.request("claude-sonnet-4-5", [c.system("S"), c.user("Hi")], stop="x"))
    >>> body["system"], body["max_tokens"], body["stop_sequences"], body["messages"]
    ('S', 4096, ['x'], [{'role': 'user', 'content': 'Hi'}])
    """
    system, messages = encode_messages(req["messages"])
    body: dict[str, Any] = {"model": req["model"], "messages": messages}
    if system:
        body["system"] = system
    if req.get("tools"):
        body["tools"] = encode_tools(req["tools"])
    options = dict(req["options"])
    info = catalog.entry_for("anthropic", req["model"]) if options else None
    if info is not None and info.unsupported_options:  # e.g. sampling options on newer models
        options = dict(catalog.drop_unsupported(f"anthropic:{req['model']}", options))
    body["max_tokens"] = options.pop("max_tokens", None) or _default_max_tokens(options)
    parallel = options.pop("parallel_tool_calls", None)
    answer_tool = None
    if "response_format" in options:
        answer_tool = encode_response_format(options.pop("response_format"))
    for key in UNSUPPORTED:
        if key in options:
            log.warning("anthropic does not support %r; it was not sent", key)
            options.pop(key)
    for key, value in options.items():
        if key == "tool_choice":
            body[key] = encode_tool_choice(value)
        elif key == "stop":
            body["stop_sequences"] = [value] if isinstance(value, str) else list(value)
        else:
            body[RENAMED.get(key, key)] = thaw(value)
    if answer_tool is not None:
        own = bool(body.get("tools")) and body.get("tool_choice") != {"type": "none"}
        body["tools"] = [*body.get("tools", []), answer_tool]
        # offered, not forced, while thinking is on (the API refuses a forced tool call) or
        # beside the caller's tools (an agent: they come first, then the answer, some tool
        # each turn); the system prompt names the answer tool
        if _thinking(body) or own:
            body["tool_choice"] = {"type": "auto" if _thinking(body) else "any"}
            body["system"] = _with_instruction(body.get("system"), answer_tool["name"])
        else:  # forced, whatever tool_choice said
            body["tool_choice"] = {"type": "tool", "name": answer_tool["name"]}
    if parallel is False:
        body.setdefault("tool_choice", {"type": "auto"})["disable_parallel_tool_use"] = True
    if stream:
        body["stream"] = True
    return body


def decode_usage(usage: Mapping[str, Any] | None) -> PMap[str, Any]:
    """Return Conduit's usage: ``input_tokens`` counts cached prompt tokens too;
    ``output_tokens_details.thinking_tokens``, when Anthropic reports it, is ``reasoning_tokens``.

    >>> u = decode_usage({"input_tokens": 10, "cache_read_input_tokens": 90,
    ...                   "cache_creation_input_tokens": 0, "output_tokens": 5})
    >>> u["input_tokens"], u["cache_read_tokens"], u["total_tokens"]
    (100, 90, 105)
    """
    usage = want(usage or {}, Mapping, "usage")
    read = _count(usage, "usage", "cache_read_input_tokens")
    created = _count(usage, "usage", "cache_creation_input_tokens")
    prompt = (_count(usage, "usage", "input_tokens") or 0) + (read or 0) + (created or 0)
    details = usage.get("output_tokens_details")
    where = "usage.output_tokens_details"
    thinking = _count(details, where, "thinking_tokens") if isinstance(details, Mapping) else None
    return make_usage(
        prompt,
        _count(usage, "usage", "output_tokens") or 0,
        cache_read_tokens=read,
        cache_creation_tokens=created,
        reasoning_tokens=thinking or None,  # 0: not a thinker (as on OpenAI's wire)
    )


def decode_chat(req: Request, body: Mapping[str, Any], provider: str = "anthropic") -> Request:
    """Return *req* with the ``response`` decoded from a Messages API *body*.

    >>> import conduit as c
    >>> ctx = decode_chat(c.request("m"), {"id": "msg_1", "model": "claude", "content":
    ...     [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn", "usage": {}})
    >>> c.content(ctx)
    'Hi'
    """
    try:
        return _decode_chat(req, body, provider)
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed(provider, "message", body, exc) from exc


def _tool_use(block: Mapping[str, Any], where: str) -> PMap[str, Any]:
    name = _text(block.get("name"), f"{where}.name")
    if not name:
        raise ShapeError(f"{where}.name is missing")
    args = want(block.get("input") or {}, Mapping, f"{where}.input")
    return make_tool_call(_text(block.get("id"), f"{where}.id") or "", name, args)


def _thought(block: Mapping[str, Any], where: str) -> PMap[str, Any]:
    if block.get("type") == "redacted_thinking":
        data = _text(block.get("data"), f"{where}.data") or ""
        return pmap({"type": "reasoning", "text": "", "redacted": data})
    fields = {"type": "reasoning", "text": _text(block.get("thinking"), f"{where}.thinking") or ""}
    signature = _text(block.get("signature"), f"{where}.signature")
    return pmap(fields if signature is None else {**fields, "signature": signature})


def refusal_text(details: Any) -> str:
    """Return the text of a refusal: Anthropic's ``stop_details.explanation`` when it gives one.

    >>> refusal_text({"type": "refusal", "explanation": "Blocked."}), refusal_text(None)
    ('Blocked.', 'the model declined to answer (stop_reason refusal)')
    """
    explanation = details.get("explanation") if isinstance(details, Mapping) else None
    if isinstance(explanation, str) and explanation:
        return explanation
    return "the model declined to answer (stop_reason refusal)"


def _decode_chat(req: Request, body: Any, provider: str) -> Request:
    want(body, Mapping, "the answer")
    if body.get("type") == "error":
        raise error_from_response(provider, None, {}, body)
    texts: list[str] = []
    calls: list[PMap[str, Any]] = []
    blocks: list[PMap[str, Any]] = []  # only once reasoning shows up
    for i, block in enumerate(_list(body.get("content") or (), "content")):
        want(block, Mapping, f"content[{i}]")
        kind_ = block.get("type")
        if kind_ == "text":
            piece = _text(block.get("text"), f"content[{i}].text") or ""
            texts.append(piece)
            if blocks:
                blocks.append(pmap({"type": "text", "text": piece}))
        elif kind_ == "tool_use":
            calls.append(_tool_use(block, f"content[{i}]"))
        elif kind_ == "thinking" or kind_ == "redacted_thinking":
            if not blocks and texts:
                blocks.append(pmap({"type": "text", "text": "".join(texts)}))
            blocks.append(_thought(block, f"content[{i}]"))
    reason = _text(body.get("stop_reason"), "stop_reason")
    resp = make_response(
        joined_content(blocks, texts),
        model=_text(body.get("model"), "model") or req["model"],
        id=_text(body.get("id"), "id"),
        stop_reason=STOP_REASONS.get(reason or "", "end_turn"),
        usage=decode_usage(body.get("usage")),
        tool_calls=calls,
        refusal=refusal_text(body.get("stop_details")) if reason == "refusal" else None,
    )
    return req.set("response", resp)


class StreamState(NamedTuple):
    """What the Anthropic stream decoder remembers between events."""

    provider: str
    tools: PMap[int, int] = pmap()  # content block index -> tool call ordinal
    usage: PMap[str, Any] = pmap()
    stop_reason: str | None = None
    done: bool = False
    refusal: str | None = None


def stream_start(provider: str = "anthropic") -> StreamState:
    """Return the state before the first event of a stream."""
    return StreamState(provider)


def stream_step(state: StreamState, sse: SSE) -> tuple[StreamState, list[Event]]:
    """Return (state, Conduit events) after one server-sent event of a Messages stream.

    >>> s, ev = stream_step(stream_start(), SSE("message_start", '{"type": "message_start",'
    ...     ' "message": {"id": "m1", "model": "claude", "usage": {"input_tokens": 5}}}'))
    >>> ev[0]["type"], ev[0]["id"]
    ('message_start', 'm1')
    """
    data = decode_event(state.provider, sse.data)
    try:
        return _step(state, want(data, Mapping, "the event"))
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed(state.provider, "stream event", data, exc) from exc


def _index(data: Mapping[str, Any]) -> int:
    index = data.get("index")
    if type(index) is not int:
        what = "has no index" if index is None else f"has {kind(index)} as its index"
        raise ShapeError(f"a {data.get('type')} event {what}, not an integer")
    return index


def _step(state: StreamState, data: Mapping[str, Any]) -> tuple[StreamState, list[Event]]:
    kind_ = data.get("type")
    if kind_ == "content_block_delta":
        delta = want(data.get("delta") or {}, Mapping, "delta")
        text = _text(delta.get("text"), "delta.text")
        if delta.get("type") == "text_delta" and text:
            return state, [event("content_delta", text=text)]
        if delta.get("type") == "thinking_delta":
            thought = _text(delta.get("thinking"), "delta.thinking")
            return state, [event("reasoning_delta", text=thought)] if thought else []
        if delta.get("type") == "signature_delta":
            signature = _text(delta.get("signature"), "delta.signature") or ""
            return state, [event("reasoning_delta", text="", signature=signature)]
        if delta.get("type") == "input_json_delta" and _index(data) in state.tools:
            piece = _text(delta.get("partial_json"), "delta.partial_json") or ""
            if piece:
                index = state.tools[data["index"]]
                return state, [event("tool_call_delta", index=index, arguments_delta=piece)]
        return state, []
    if kind_ == "message_start":
        msg = want(data.get("message") or {}, Mapping, "message")
        usage = want(msg.get("usage") or {}, Mapping, "message.usage")
        state = state._replace(usage=pmap(usage))
        model, id_ = _text(msg.get("model"), "message.model"), _text(msg.get("id"), "message.id")
        return state, [event("message_start", model=model, id=id_)]
    if kind_ == "content_block_start":
        block = want(data.get("content_block") or {}, Mapping, "content_block")
        if block.get("type") == "tool_use":
            ordinal = len(state.tools)
            state = state._replace(tools=state.tools.set(_index(data), ordinal))
            return state, [
                event(
                    "tool_call_start",
                    index=ordinal,
                    id=_text(block.get("id"), "content_block.id") or "",
                    name=_text(block.get("name"), "content_block.name") or "",
                )
            ]
        if block.get("type") == "redacted_thinking":
            data_ = _text(block.get("data"), "content_block.data") or ""
            return state, [event("reasoning_delta", text="", redacted=data_)]
        if block.get("type") == "thinking":
            thought = _text(block.get("thinking"), "content_block.thinking")
            return state, [event("reasoning_delta", text=thought)] if thought else []
        text = _text(block.get("text"), "content_block.text")
        if block.get("type") == "text" and text:
            return state, [event("content_delta", text=text)]
        return state, []
    if kind_ == "content_block_stop" and _index(data) in state.tools:
        return state, [event("tool_call_end", index=state.tools[data["index"]])]
    if kind_ == "message_delta":
        delta = want(data.get("delta") or {}, Mapping, "delta")
        reason = _text(delta.get("stop_reason"), "delta.stop_reason")
        extra = want(data.get("usage") or {}, Mapping, "usage")
        usage = state.usage.update({k: v for k, v in extra.items() if v is not None})
        mapped = STOP_REASONS.get(reason or "", state.stop_reason)
        if reason == "refusal":
            state = state._replace(refusal=refusal_text(delta.get("stop_details")))
        return state._replace(usage=usage, stop_reason=mapped), []
    if kind_ == "message_stop":
        return state._replace(done=True), []
    if kind_ == "error":
        raise error_from_response(state.provider, None, {}, data)
    return state, []  # ping and event types added later


def stream_end(state: StreamState) -> list[Event]:
    """Return the closing event of a finished stream; raise if it was cut short."""
    from conduit.errors import ConnectionError

    if not state.done:
        raise ConnectionError(
            f"{state.provider} stream ended before message_stop; the connection was probably "
            "cut: retry the call",
            data={"provider": state.provider},
        )
    try:
        usage = decode_usage(state.usage)
    except (ShapeError, TypeError, ValueError, OverflowError) as exc:
        raise malformed(state.provider, "stream's usage", thaw(state.usage), exc) from exc
    end = event("message_end", stop_reason=state.stop_reason or "end_turn", usage=usage)
    return [event("refusal_delta", text=state.refusal), end] if state.refusal is not None else [end]


# --- the wire: the shared HTTP shell around this codec ---------------------------------------

from conduit.providers import _http  # noqa: E402  (the codec above stays importable alone)
from conduit.providers._wire import each  # noqa: E402
from conduit.registry import lookup  # noqa: E402

API_VERSION = "2023-06-01"


def _auth(key: str) -> dict[str, str]:
    return {"x-api-key": key}


_INFO = lookup("anthropic")
ANTHROPIC = _http.Provider(
    name=_INFO.name,
    base_url=_INFO.base_url or "",
    base_url_env=_INFO.base_url_env,
    path="/messages",
    env_key=_INFO.env_key,
    encode=encode_chat,
    decode=decode_chat,
    stream_start=stream_start,
    stream_steps=each(stream_step),
    stream_end=stream_end,
    auth=_auth,
    headers={"anthropic-version": API_VERSION},
)
WIRE = _http.wire(ANTHROPIC)
