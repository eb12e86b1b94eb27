"""Google Gemini API (``generateContent``): pure codecs for requests, responses and streams.

The answer of a call and each chunk of a stream have one shape (a ``GenerateContentResponse``),
so both are decoded by one function, :func:`chunk_events`, into Conduit's stream events; a
call's response is those events collected. A call and the stream of the same answer therefore
decode to the same response by construction.

Gemini's function calls carry no ids: the *n*-th call of an answer is ``call_<n>``, and a tool
result finds its function's name by looking up that id in the conversation. A part's
``thoughtSignature`` becomes a ``reasoning`` block's ``signature`` (an empty-text block when
the signed part was not a thought); it goes back where Gemini puts and checks it: on the first
``functionCall`` part of a turn that made calls, else on the turn's last part.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from pyrsistent import PMap

from conduit._data import reveal, secret_problem, thaw
from conduit._event import Event, event
from conduit._types import Request
from conduit.embeddings import embedding_response, number_row, one_per_text, one_width
from conduit.errors import (
    AuthenticationError,
    ConduitError,
    ShapeError,
    ValidationError,
    decode_event,
    error_from_response,
    malformed,
    want,
)
from conduit.errors import want_count as _count
from conduit.errors import want_list as _list
from conduit.errors import want_text as _text
from conduit.response import make_usage
from conduit.sse import SSE
from conduit.streams import collect

__all__ = [
    "GEMINI",
    "WIRE",
    "StreamState",
    "chunk_events",
    "decode_chat",
    "decode_embeddings",
    "decode_usage",
    "encode_chat",
    "encode_contents",
    "encode_embeddings",
    "encode_generation_config",
    "encode_tool_choice",
    "encode_tools",
    "stop_reason",
    "stream_end",
    "stream_start",
    "stream_step",
]

log = logging.getLogger("conduit")

#: finishReason values that mean a filter stopped the answer (DESIGN: ``content_filter``).
FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "LANGUAGE",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)

#: Conduit options sent under another name in ``generationConfig``.
RENAMED = {
    "max_tokens": "maxOutputTokens",
    "max_completion_tokens": "maxOutputTokens",
    "stop": "stopSequences",
    "top_p": "topP",
    "top_k": "topK",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "logprobs": "responseLogprobs",
    "top_logprobs": "logprobs",
}
#: Options that are fields of the request body itself, not of ``generationConfig``.
TOP_LEVEL = {
    "safety_settings": "safetySettings",
    "cached_content": "cachedContent",
    "tool_config": "toolConfig",
    "labels": "labels",
    "service_tier": "serviceTier",
}
# Options Gemini has no equivalent for; left out with a warning, never silently.
UNSUPPORTED = ("n", "parallel_tool_calls", "user", "logit_bias", "stream_options")

_SYNTHETIC = re.compile(r"call_\d+")


def _camel(name: str) -> str:
    """``response_modalities`` -> ``responseModalities`` (a camelCase name passes unchanged)."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


# --- encoding ---------------------------------------------------------------------------------


def _media(source: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """An image/document/audio source as an ``inlineData`` or ``fileData`` part."""
    if source.get("type") == "base64":
        return {"inlineData": {"mimeType": source["media_type"], "data": source["data"]}}
    url = source["url"]
    if url.startswith("data:") and ";base64," in url:
        media_type, _, data = url[5:].partition(";base64,")
        return {"inlineData": {"mimeType": media_type, "data": data}}
    guessed = mimetypes.guess_type(url.partition("?")[0])[0]
    media_type = source.get("media_type") or guessed
    if media_type is None and kind == "document":
        media_type = "application/pdf"  # DESIGN: document blocks are PDFs
    found: dict[str, Any] = {"fileUri": url}
    if media_type is not None:
        found["mimeType"] = media_type
    return {"fileData": found}


def _part(block: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = block["type"]
    if kind == "text":
        return {"text": block["text"]} if block["text"] else None
    if kind in ("image", "document", "audio"):
        return _media(block["source"], kind)
    if kind == "reasoning":
        if block.get("redacted") is not None or not block.get("text"):
            return None  # another provider's opaque thinking, or only a signature
        return {"text": block["text"], "thought": True}
    raise ValidationError(
        f"gemini cannot take a {kind!r} block: send text, image, document, audio or reasoning "
        "blocks"
    )


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    return [p for p in map(_part, content) if p is not None]


def _signatures(content: Any) -> list[str]:
    if isinstance(content, str):
        return []
    return [b["signature"] for b in content if b["type"] == "reasoning" and b.get("signature")]


def _model_turn(msg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An assistant message as a ``model`` turn's parts, its thought signature put back where
    Gemini puts it: on the first function call, else on the last part."""
    parts = _parts(msg["content"])
    calls: list[dict[str, Any]] = []
    for call in msg.get("tool_calls") or ():
        fn: dict[str, Any] = {"name": call["name"], "args": thaw(call.get("arguments") or {})}
        if not _SYNTHETIC.fullmatch(call["id"] or ""):
            fn["id"] = call["id"]  # an id Gemini gave goes back; one Conduit made up does not
        calls.append({"functionCall": fn})
    signatures = _signatures(msg["content"])
    if signatures:
        signed = calls[0] if calls else parts[-1] if parts else None
        if signed is None:  # a turn of nothing but a signature: an empty signed text part
            signed = {"text": ""}
            parts.append(signed)
        signed["thoughtSignature"] = signatures[-1]
    return parts + calls


def _call_names(messages: Sequence[Any], upto: int) -> dict[str, str]:
    """The function name of each tool call id, the nearest assistant turn before *upto* first."""
    names: dict[str, str] = {}
    for msg in reversed(messages[:upto]):
        if msg["role"] == "assistant":
            for call in msg.get("tool_calls") or ():
                names.setdefault(call["id"], call["name"])
    return names


def _tool_parts(msg: Mapping[str, Any], messages: Sequence[Any], i: int) -> list[dict[str, Any]]:
    call_id = msg.get("tool_call_id") or ""
    name = msg.get("name") or _call_names(messages, i).get(call_id)
    if not name:
        raise ValidationError(
            f"message {i} is the result of tool call {call_id!r}, but no assistant turn before "
            "it made that call; Gemini needs the function's name: give the tool message a "
            "'name' or keep the assistant turn in the conversation"
        )
    content = msg["content"]
    text = (
        content
        if isinstance(content, str)
        else "".join(b["text"] for b in content if b["type"] == "text")
    )
    field = "error" if msg.get("is_error") else "output"
    response: dict[str, Any] = {"name": name, "response": {field: text}}
    if call_id and not _SYNTHETIC.fullmatch(call_id):
        response["id"] = call_id
    others = [] if isinstance(content, str) else [b for b in content if b["type"] != "text"]
    return [{"functionResponse": response}, *_parts(others)]


def encode_contents(messages: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Return (``systemInstruction``, ``contents``) for Gemini: system text moves out, the
    assistant is the ``model``, and consecutive tool results share one ``user`` turn.

    >>> import conduit as c
    >>> system, contents = encode_contents([c.system("Be brief."), c.user("Hi"),
    ...     c.assistant("", [{"id": "call_0", "name": "f", "arguments": {"x": 1}}]),
    ...     c.tool_result("call_0", "42")])
    >>> system["parts"], [turn["role"] for turn in contents]
    ([{'text': 'Be brief.'}], ['user', 'model', 'user'])
    >>> contents[2]["parts"]
    [{'functionResponse': {'name': 'f', 'response': {'output': '42'}}}]
    """
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    previous = None
    for i, msg in enumerate(messages):
        role = msg["role"]
        if role == "system":
            system.extend(_parts(msg["content"]))
            continue
        if role == "tool":
            parts = _tool_parts(msg, messages, i)
            if previous == "tool":
                contents[-1]["parts"].extend(parts)
            else:
                contents.append({"role": "user", "parts": parts})
        else:
            parts = _model_turn(msg) if role == "assistant" else _parts(msg["content"])
            if not parts:
                raise ValidationError(
                    f"message {i} ({role}) is empty, and Gemini rejects a turn with no parts: "
                    "remove it or give it some text"
                )
            contents.append({"role": "model" if role == "assistant" else "user", "parts": parts})
        previous = role
    instruction = {"parts": system, "role": "user"} if system else None
    return instruction, contents


def encode_tools(tools: Any) -> list[dict[str, Any]]:
    """Return Gemini's ``tools``: one entry of ``functionDeclarations``, each tool's JSON Schema
    sent as ``parametersJsonSchema`` unchanged (as the google-genai SDK sends a JSON Schema;
    Gemini reads the keywords it supports and no conversion can lose a constraint).

    >>> encode_tools([{"name": "f", "description": "d", "parameters": {"type": "object"}}])
    [{'functionDeclarations': [{'name': 'f', 'description': 'd', \
'parametersJsonSchema': {'type': 'object'}}]}]
    """
    declarations = []
    for tool in tools:
        spec: dict[str, Any] = {"name": tool["name"], "description": tool.get("description", "")}
        if tool.get("parameters"):
            spec["parametersJsonSchema"] = thaw(tool["parameters"])
        declarations.append(spec)
    return [{"functionDeclarations": declarations}]


def encode_tool_choice(choice: Any) -> dict[str, Any]:
    """Return ``toolConfig`` for Conduit's tool choice (auto, none, required, a name).

    >>> encode_tool_choice("required")
    {'functionCallingConfig': {'mode': 'ANY'}}
    >>> encode_tool_choice("get_weather")
    {'functionCallingConfig': {'mode': 'ANY', 'allowedFunctionNames': ['get_weather']}}
    """
    if choice in ("auto", "none"):
        return {"functionCallingConfig": {"mode": choice.upper()}}
    if choice in ("required", "any"):
        return {"functionCallingConfig": {"mode": "ANY"}}
    name = choice if isinstance(choice, str) else None
    if isinstance(choice, Mapping):
        name = choice.get("name") or (choice.get("function") or {}).get("name")
    if not name:
        raise ValidationError(
            f"tool_choice {choice!r:.60} is not auto, none, required or a tool's name"
        )
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}


def _response_format(fmt: Any) -> dict[str, Any]:
    fmt = thaw(fmt)
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema", spec) if isinstance(spec, dict) else spec
        return {"responseMimeType": "application/json", "responseJsonSchema": schema}
    if kind == "text":
        return {"responseMimeType": "text/plain"}
    raise ValidationError(
        f"gemini has no response_format {fmt!r:.60}: give a JSON schema "
        '({"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}) or '
        '{"type": "json_object"}'
    )


def _thinking(value: Any) -> dict[str, Any]:
    """Anthropic's ``thinking`` shape (or True/False, or Gemini's own thinkingConfig)."""
    if value is True:
        return {"includeThoughts": True}
    if value is False:
        return {"thinkingBudget": 0}
    value = thaw(value)
    if isinstance(value, dict) and value.get("type") == "disabled":
        return {"thinkingBudget": 0}
    if isinstance(value, dict) and value.get("type") in ("enabled", "adaptive"):
        out: dict[str, Any] = {"includeThoughts": True}
        if value.get("budget_tokens") is not None:
            out["thinkingBudget"] = value["budget_tokens"]
        return out
    if isinstance(value, dict):
        return {_camel(k): v for k, v in value.items()}
    raise ValidationError(
        f"thinking={value!r:.60} is not understood: give True, False, "
        '{"type": "enabled", "budget_tokens": N} or Gemini\'s thinkingConfig'
    )


def _effort(level: Any) -> dict[str, Any]:
    if level == "none":
        return {"thinkingBudget": 0}
    if not isinstance(level, str):
        raise ValidationError(f"reasoning_effort must be a level's name, not {level!r:.60}")
    return {"thinkingLevel": level.upper()}


def encode_generation_config(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (``generationConfig``, other top-level fields) for the request's options.

    Known options are renamed (``max_tokens`` -> ``maxOutputTokens``, ``stop`` ->
    ``stopSequences``, ...); ``thinking`` and ``reasoning_effort`` become ``thinkingConfig``;
    ``safety_settings``, ``cached_content`` and ``tool_config`` go to the top level; any other
    option is a ``generationConfig`` field under its camelCase name (``response_modalities``
    -> ``responseModalities``), so Gemini's own settings need no support from Conduit.

    >>> config, top = encode_generation_config({"max_tokens": 50, "stop": "x", "top_k": 3,
    ...     "thinking": {"type": "enabled", "budget_tokens": 1024}})
    >>> config == {"maxOutputTokens": 50, "stopSequences": ["x"], "topK": 3,
    ...     "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}}
    True
    """
    config: dict[str, Any] = {}
    top: dict[str, Any] = {}
    thinking: dict[str, Any] = {}
    for key, value in options.items():
        if key in ("tool_choice",):
            continue
        if key in UNSUPPORTED:
            log.warning("gemini does not support %r; it was not sent", key)
        elif key in TOP_LEVEL:
            top[TOP_LEVEL[key]] = thaw(value)
        elif key == "stop":
            config["stopSequences"] = [value] if isinstance(value, str) else list(value)
        elif key == "response_format":
            config.update(_response_format(value))
        elif key == "thinking":
            thinking.update(_thinking(value))
        elif key in ("thinking_config", "thinkingConfig"):
            thinking.update(thaw(value))
        elif key == "reasoning_effort":
            thinking = {**_effort(value), **thinking}
        else:
            config[RENAMED.get(key, _camel(key))] = thaw(value)
    if thinking:
        config["thinkingConfig"] = thinking
    return config, top


def encode_chat(req: Request, stream: bool = False) -> dict[str, Any]:
    """Return the JSON body of a ``generateContent`` call for *req* (the model is in the URL).

    >>> import conduit as c
    >>> body = encode_chat(c.request("gemini-2.5-flash", [c.system("S"), c.user("Hi")],
    ...                              max_tokens=64))
    >>> body["systemInstruction"]["parts"], body["contents"], body["generationConfig"]
    ([{'text': 'S'}], [{'role': 'user', 'parts': [{'text': 'Hi'}]}], {'maxOutputTokens': 64})
    """
    system, contents = encode_contents(req["messages"])
    body: dict[str, Any] = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = system
    if req.get("tools"):
        body["tools"] = encode_tools(req["tools"])
    options = req["options"]
    if options.get("tool_choice") is not None:
        body["toolConfig"] = encode_tool_choice(options["tool_choice"])
    config, top = encode_generation_config(options)
    body.update(top)
    if config:
        body["generationConfig"] = config
    return body


# --- decoding: calls and stream chunks --------------------------------------------------------


def stop_reason(finish: str | None, has_calls: bool) -> str:
    """Return Conduit's stop reason for Gemini's ``finishReason``.

    >>> stop_reason("MAX_TOKENS", False), stop_reason("SAFETY", False), stop_reason("STOP", True)
    ('max_tokens', 'content_filter', 'tool_use')
    """
    if finish in FILTERED:
        return "content_filter"
    if finish == "MAX_TOKENS":
        return "max_tokens"
    return "tool_use" if has_calls else "end_turn"


def decode_usage(usage: Mapping[str, Any] | None) -> PMap[str, Any]:
    """Return Conduit's usage from ``usageMetadata``: thinking tokens count as output (they are
    billed as output) and are ``reasoning_tokens``; cached prompt tokens are
    ``cache_read_tokens`` (part of ``input_tokens``).

    >>> u = decode_usage({"promptTokenCount": 13, "candidatesTokenCount": 77,
    ...                   "thoughtsTokenCount": 25, "totalTokenCount": 115})
    >>> u["input_tokens"], u["output_tokens"], u["reasoning_tokens"], u["total_tokens"]
    (13, 102, 25, 115)
    """
    usage = want(usage or {}, Mapping, "usageMetadata")

    def count(key: str) -> int | None:
        return _count(usage, "usageMetadata", key)

    thoughts = count("thoughtsTokenCount")
    prompt = (count("promptTokenCount") or 0) + (count("toolUsePromptTokenCount") or 0)
    return make_usage(
        prompt,
        (count("candidatesTokenCount") or 0) + (thoughts or 0),
        cache_read_tokens=count("cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


class StreamState(NamedTuple):
    """What the decoder remembers between chunks (a call's answer is one chunk)."""

    provider: str
    started: bool = False
    calls: int = 0  # function calls so far: the next one is call_<calls>
    usage: PMap[str, Any] | None = None
    finish: str | None = None
    blocked: bool = False


def stream_start(provider: str = "gemini") -> StreamState:
    """Return the state before the first chunk of a stream."""
    return StreamState(provider)


def _part_events(part: Mapping[str, Any], where: str, calls: int) -> tuple[int, list[Event]]:
    out: list[Event] = []
    signature = _text(part.get("thoughtSignature"), f"{where}.thoughtSignature")
    fn = part.get("functionCall")
    if fn is not None:
        fn = want(fn, Mapping, f"{where}.functionCall")
        name = _text(fn.get("name"), f"{where}.functionCall.name")
        if not name:
            raise ShapeError(f"{where}.functionCall.name is missing")
        args = want(fn.get("args") or {}, Mapping, f"{where}.functionCall.args")
        call_id = _text(fn.get("id"), f"{where}.functionCall.id") or f"call_{calls}"
        out += [
            event("tool_call_start", index=calls, id=call_id, name=name),
            event("tool_call_delta", index=calls, arguments_delta=json.dumps(args)),
            event("tool_call_end", index=calls),
        ]
        calls += 1
    elif part.get("thought"):
        text = _text(part.get("text"), f"{where}.text") or ""
        if signature is not None:
            return calls, [event("reasoning_delta", text=text, signature=signature)]
        return calls, [event("reasoning_delta", text=text)] if text else []
    else:
        text = _text(part.get("text"), f"{where}.text")
        if text:
            out.append(event("content_delta", text=text))
    if signature is not None:
        out.append(event("reasoning_delta", text="", signature=signature))
    return calls, out


def chunk_events(state: StreamState, chunk: Any) -> tuple[StreamState, list[Event]]:
    """Return (state, events) for one ``GenerateContentResponse`` (a call's whole answer, or
    one chunk of a stream): candidate 0's parts in order, its finish reason, the usage so far.

    >>> s, ev = chunk_events(stream_start(), {"candidates": [{"content": {"parts": [
    ...     {"text": "Hi"}]}, "finishReason": "STOP"}], "modelVersion": "gemini-2.5-flash"})
    >>> [e["type"] for e in ev], s.finish
    (['message_start', 'content_delta'], 'STOP')
    """
    body = want(chunk, Mapping, "the answer")
    if body.get("error") is not None:
        err = body["error"]
        code = err.get("code") if isinstance(err, Mapping) else None
        raise error_from_response(state.provider, code if type(code) is int else None, {}, body)
    out: list[Event] = []
    if not state.started:
        model = _text(body.get("modelVersion"), "modelVersion")
        out.append(event("message_start", model=model, id=_text(body.get("responseId"), "id")))
        state = state._replace(started=True)
    if body.get("usageMetadata") is not None:
        state = state._replace(usage=decode_usage(body["usageMetadata"]))
    feedback = want(body.get("promptFeedback") or {}, Mapping, "promptFeedback")
    if feedback.get("blockReason"):
        state = state._replace(blocked=True)
    candidates = _list(body.get("candidates") or [], "candidates")
    if not candidates:
        return state, out
    candidate = want(candidates[0], Mapping, "candidates[0]")
    content = want(candidate.get("content") or {}, Mapping, "candidates[0].content")
    calls = state.calls
    for i, part in enumerate(_list(content.get("parts") or [], "candidates[0].content.parts")):
        where = f"candidates[0].content.parts[{i}]"
        calls, events = _part_events(want(part, Mapping, where), where, calls)
        out += events
    finish = _text(candidate.get("finishReason"), "candidates[0].finishReason")
    return state._replace(calls=calls, finish=finish or state.finish), out


def _end(state: StreamState) -> Event:
    reason = "content_filter" if state.blocked else stop_reason(state.finish, state.calls > 0)
    return event("message_end", stop_reason=reason, usage=state.usage or make_usage())


def decode_chat(req: Request, body: Mapping[str, Any], provider: str = "gemini") -> Request:
    """Return *req* with the ``response`` decoded from a ``generateContent`` *body*.

    >>> import conduit as c
    >>> ctx = decode_chat(c.request("m"), {"candidates": [{"content": {"role": "model",
    ...     "parts": [{"text": "Hi"}]}, "finishReason": "STOP"}], "responseId": "r1"})
    >>> c.content(ctx), ctx["response"]["id"], ctx["response"]["model"]
    ('Hi', 'r1', 'm')
    """
    try:
        state, events = chunk_events(stream_start(provider), body)
        resp = collect([*events, _end(state)])
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed(provider, "answer", body, exc) from exc
    return req.set("response", resp if resp["model"] else resp.set("model", req["model"]))


def stream_step(state: StreamState, sse: SSE) -> tuple[StreamState, list[Event]]:
    """Return (state, Conduit events) after one server-sent event of ``streamGenerateContent``
    (``alt=sse``: each event's data is a whole ``GenerateContentResponse``).

    >>> s, ev = stream_step(stream_start(), SSE("message", '{"candidates": [{"content":'
    ...     ' {"parts": [{"text": "4"}]}}], "responseId": "r"}'))
    >>> [(e["type"], e.get("text")) for e in ev]
    [('message_start', None), ('content_delta', '4')]
    """
    data = decode_event(state.provider, sse.data)
    try:
        return chunk_events(state, data)
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed(state.provider, "stream event", data, exc) from exc


def stream_end(state: StreamState) -> list[Event]:
    """Return the closing event of a finished stream; raise if it was cut short (no chunk
    carried a finish reason and the prompt was not blocked)."""
    from conduit.errors import ConnectionError

    if state.finish is None and not state.blocked:
        raise ConnectionError(
            f"{state.provider} stream ended before a finishReason; the connection was probably "
            "cut: retry the call",
            data={"provider": state.provider},
        )
    return [_end(state)]


def _steps(state: StreamState, items: Iterable[SSE]) -> tuple[StreamState, list[Event]]:
    out: list[Event] = []
    for sse in items:
        state, events = stream_step(state, sse)
        out += events
    return state, out


# --- embeddings -------------------------------------------------------------------------------


def _model_name(model: str) -> str:
    return model[len("models/") :] if model.startswith("models/") else model


def encode_embeddings(req: Request) -> dict[str, Any]:
    """Return the JSON body of ``batchEmbedContents``: one request per text; ``dimensions``
    (OpenAI's name) is ``outputDimensionality``, other options go camelCased on each request.

    >>> import conduit as c
    >>> encode_embeddings(c.embedding_request("gemini-embedding-001", ["a"], dimensions=8))
    {'requests': [{'model': 'models/gemini-embedding-001', 'content': {'parts': [{'text': 'a'}]}, \
'outputDimensionality': 8}]}
    """
    model = f"models/{_model_name(req['model'])}"
    extra = {
        "outputDimensionality" if k == "dimensions" else _camel(k): thaw(v)
        for k, v in req["options"].items()
    }
    return {
        "requests": [
            {"model": model, "content": {"parts": [{"text": text}]}, **extra}
            for text in req["input"]
        ]
    }


def decode_embeddings(req: Request, body: Mapping[str, Any]) -> Request:
    """Return *req* with the response of a ``batchEmbedContents`` *body* (float rows, in
    input order; Gemini reports no token usage for it).

    >>> import conduit as c
    >>> ctx = decode_embeddings(c.embedding_request("m", ["a"]),
    ...                         {"embeddings": [{"values": [1.0, 0.0]}]})
    >>> c.vectors(ctx).tolist()
    [[1.0, 0.0]]
    """
    try:
        want(body, Mapping, "the answer")
        if body.get("error") is not None:
            raise error_from_response("gemini", None, {}, body)
        rows = _list(body.get("embeddings"), "embeddings")
        vectors = []
        for i, row in enumerate(rows):
            values = want(row, Mapping, f"embeddings[{i}]").get("values")
            vectors.append(number_row(values, f"embeddings[{i}].values"))
        one_width(map(len, vectors), "embeddings")
        one_per_text(len(vectors), req)
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed("gemini", "embeddings answer", body, exc) from exc
    return req.set("response", embedding_response(req["model"], vectors, make_usage()))


# --- the wire: the shared HTTP shell around this codec ---------------------------------------

from conduit.providers import _http  # noqa: E402  (the codec above stays importable alone)
from conduit.registry import lookup  # noqa: E402

#: Read when ``GEMINI_API_KEY`` is unset, as the google-genai SDK reads it.
FALLBACK_ENV_KEY = "GOOGLE_API_KEY"


def _auth(key: str) -> dict[str, str]:
    return {"x-goog-api-key": key}


def _key(req: Request) -> str | None:
    """The request's ``api_key``, else ``GEMINI_API_KEY``, else ``GOOGLE_API_KEY``."""
    for where, key in (
        ("api_key", reveal(req.get("api_key"))),
        (_INFO.env_key or "", os.environ.get(_INFO.env_key or "")),
        (FALLBACK_ENV_KEY, os.environ.get(FALLBACK_ENV_KEY)),
    ):
        if key:
            problem = secret_problem(key, where)
            if problem is not None:
                raise ValidationError(problem, data={"provider": "gemini"})
            return key
    return None


def _credentials(req: Request) -> dict[str, str]:
    key = _key(req)
    if key:
        return _auth(key)
    if req.get("base_url"):
        return {}  # a proxy or emulator at a custom base_url may need no key
    raise AuthenticationError(
        f"no API key for gemini: set the {_INFO.env_key} (or {FALLBACK_ENV_KEY}) environment "
        "variable or pass api_key=... to c.request",
        provider="gemini",
    )


def _url(base: str, req: Request, stream: bool) -> str:
    model = _model_name(req["model"])
    if stream:
        path = f"/models/{model}:streamGenerateContent?alt=sse"
    else:
        path = f"/models/{model}:generateContent"
    return _http.joined_url(base, lambda root: root + path)


def _embed_url(base: str, req: Request) -> str:
    path = f"/models/{_model_name(req['model'])}:batchEmbedContents"
    return _http.joined_url(base, lambda root: root + path)


_INFO = lookup("gemini")
GEMINI = _http.Provider(
    name=_INFO.name,
    base_url=_INFO.base_url or "",
    base_url_env=_INFO.base_url_env,
    path="",
    env_key=_INFO.env_key,
    encode=encode_chat,
    decode=decode_chat,
    stream_start=stream_start,
    stream_steps=_steps,
    stream_end=stream_end,
    auth=_auth,
    url=_url,
    embed_url=_embed_url,
    credentials=_credentials,
    encode_embed=encode_embeddings,
    decode_embed=decode_embeddings,
)
WIRE = _http.wire(GEMINI)
