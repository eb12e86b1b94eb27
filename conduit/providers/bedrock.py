"""Amazon Bedrock's Converse API: pure codecs for requests, answers and event streams.

Converse is one request shape for every model Bedrock hosts (Claude, Nova, Llama, Mistral,
...). Its wire differs from the others in four ways, each handled here: the model id is in
the URL (``/model/{modelId}/converse``, ``/converse-stream``); requests are signed with AWS
Signature Version 4 (botocore, the ``bedrock`` extra) or carry a Bedrock API key as a bearer
token; the stream is AWS's binary event stream (:mod:`conduit.providers._eventstream`), not
server-sent events; and errors name their type in the ``x-amzn-ErrorType`` header. The shapes
follow Bedrock's service model (botocore's ``bedrock-runtime/2023-09-30/service-2.json``).
"""

from __future__ import annotations

import base64
import importlib
import logging
import os
import re
import threading
from collections.abc import Mapping
from functools import partial
from typing import Any, NamedTuple
from urllib.parse import quote, unquote_to_bytes

from pyrsistent import PMap, pmap

from conduit._data import reveal, secret_problem, thaw
from conduit._event import Event, event
from conduit._types import Request
from conduit.errors import (
    AuthenticationError,
    ConduitError,
    ConnectionError,
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
from conduit.providers._eventstream import EventStreamDecoder, Message
from conduit.response import joined_content, make_response, make_tool_call, make_usage

__all__ = [
    "BEDROCK",
    "STOP_REASONS",
    "WIRE",
    "StreamState",
    "chat_url",
    "decode_chat",
    "decode_usage",
    "encode_chat",
    "encode_messages",
    "encode_response_format",
    "encode_tool_choice",
    "encode_tools",
    "hidden_secrets",
    "region_of",
    "sign",
    "stream_end",
    "stream_start",
    "stream_step",
]

log = logging.getLogger("conduit")

STOP_REASONS = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "model_context_window_exceeded": "max_tokens",
}

#: Conduit's sampling options that Converse has a field for, in ``inferenceConfig``.
INFERENCE = {"max_tokens": "maxTokens", "temperature": "temperature", "top_p": "topP"}
#: Converse's own top-level fields: an option of one of these names is sent there as given.
TOP_LEVEL = frozenset(
    {
        "guardrailConfig",
        "performanceConfig",
        "requestMetadata",
        "promptVariables",
        "additionalModelResponseFieldPaths",
        "serviceTier",
        "outputConfig",
    }
)
#: Options that have no Converse meaning: not sent, with a warning.
DROPPED = ("n", "logprobs", "top_logprobs", "parallel_tool_calls", "stream_options")
#: Options that choose where the call goes rather than what it asks: never in the body.
CONNECTION = ("region",)
_ELSEWHERE = frozenset(
    {"inferenceConfig", "additionalModelRequestFields", "tool_choice", "response_format"}
)

IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}

_CACHE_POINT = {"cachePoint": {"type": "default"}}


# --- requests -------------------------------------------------------------------------------


def _format(media_type: str, table: Mapping[str, str], what: str) -> str:
    found = table.get(media_type.split(";")[0].strip().lower())
    if found is None:
        raise ValidationError(
            f"bedrock cannot take a {what} of type {media_type!r}: it takes "
            + ", ".join(sorted(table))
        )
    return found


def _data_url(url: str) -> tuple[str, str]:
    """(media type, base64 data) of a ``data:`` URL."""
    head, _, data = url[len("data:") :].partition(",")
    media_type, _, encoding = head.partition(";")
    if encoding == "base64":
        return media_type, data
    return media_type, base64.b64encode(unquote_to_bytes(data)).decode()


def _source(block: Mapping[str, Any], what: str, table: Mapping[str, str]) -> dict[str, Any]:
    """``format`` and ``source`` of an image or document block: bytes, or an S3 location."""
    source = block["source"]
    if source["type"] == "base64":
        media_type, data = source["media_type"], source["data"]
    elif source["url"].startswith("data:"):
        media_type, data = _data_url(source["url"])
    elif source["url"].startswith("s3://"):
        out: dict[str, Any] = {"source": {"s3Location": {"uri": source["url"]}}}
        extension = source["url"].rsplit(".", 1)[-1].lower()
        if source.get("media_type"):
            out["format"] = _format(source["media_type"], table, what)
        elif extension in table.values():
            out["format"] = extension
        return out
    else:
        raise ValidationError(
            f"bedrock cannot fetch a {what} from a URL ({source['url'][:60]!r}): send its bytes "
            "(c.image_base64 / c.document_base64), a data: URL, or an s3:// location"
        )
    return {"format": _format(media_type, table, what), "source": {"bytes": data}}


def _reasoning(block: Mapping[str, Any]) -> dict[str, Any] | None:
    """Reasoning goes back exactly as Bedrock sent it; unsigned reasoning (another provider's)
    cannot be verified by the model and is left out, as for Anthropic."""
    if block.get("redacted") is not None:
        return {"reasoningContent": {"redactedContent": block["redacted"]}}
    if block.get("signature") is None:
        return None
    text = {"text": block["text"], "signature": block["signature"]}
    return {"reasoningContent": {"reasoningText": text}}


def _document_name(title: Any, n: int) -> str:
    """A document's Converse ``name``: Bedrock takes letters, digits, single spaces, hyphens,
    parentheses and square brackets, 1 to 200 characters; anything else becomes a hyphen.

    >>> _document_name("Q3 report.pdf", 1), _document_name(None, 2), _document_name("...", 3)
    ('Q3 report-pdf', 'document-2', 'document-3')
    """
    name = re.sub(r"[^A-Za-z0-9\s\-()\[\]]", "-", str(title or ""))
    name = re.sub(r"\s+", " ", name).strip()[:200]
    return name if name.strip("-") else f"document-{n}"


def _block(block: Mapping[str, Any], names: list[str]) -> dict[str, Any] | None:
    kind = block["type"]
    if kind == "text":
        return {"text": block["text"]} if block["text"] else None  # Bedrock rejects blank text
    if kind == "reasoning":
        return _reasoning(block)
    if kind == "image":
        return {"image": _source(block, "image", IMAGE_FORMATS)}
    if kind == "document":
        names.append(_document_name(block.get("title"), len(names) + 1))
        return {"document": {"name": names[-1], **_source(block, "document", DOCUMENT_FORMATS)}}
    raise ValidationError(
        f"bedrock's Converse API cannot take {kind!r} blocks here: send text, images or "
        "documents (audio and video need other Bedrock APIs)"
    )


def _blocks(content: Any, names: list[str]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    out: list[dict[str, Any]] = []
    for block in content:
        encoded = _block(block, names)
        if encoded is not None:
            out.append(encoded)
            if block.get("cache_control"):
                out.append(dict(_CACHE_POINT))
    return out


def _tool_result(msg: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    content = msg["content"]
    blocks = [{"text": content}] if isinstance(content, str) else _blocks(content, names)
    status = "error" if msg.get("is_error") else "success"
    result = {"toolUseId": msg["tool_call_id"], "content": blocks or [{"text": ""}]}
    return {"toolResult": {**result, "status": status}}


def _turn(msg: Mapping[str, Any], names: list[str]) -> tuple[str, list[dict[str, Any]]]:
    if msg["role"] == "tool":
        return "user", [_tool_result(msg, names)]
    blocks = _blocks(msg["content"], names)
    for call in msg.get("tool_calls") or ():
        use = {"toolUseId": call["id"], "name": call["name"]}
        blocks.append({"toolUse": {**use, "input": thaw(call.get("arguments") or {})}})
    return msg["role"], blocks


def encode_messages(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (``system``, ``messages``) for Converse: system text moves to the top level, tool
    results become ``toolResult`` blocks of a user turn, and consecutive turns of one role
    merge (Bedrock requires the roles to alternate).

    >>> import conduit as c
    >>> system, msgs = encode_messages([c.system("Be brief."), c.user("Hi"),
    ...     c.assistant("", [{"id": "t1", "name": "f", "arguments": {"x": 1}}]),
    ...     c.tool_result("t1", "42"), c.tool_result("t2", "43")])
    >>> system, [m["role"] for m in msgs], msgs[1]["content"][0]["toolUse"]["input"]
    ([{'text': 'Be brief.'}], ['user', 'assistant', 'user'], {'x': 1})
    >>> [b["toolResult"]["toolUseId"] for b in msgs[2]["content"]]
    ['t1', 't2']
    """
    names: list[str] = []
    system: list[dict[str, Any]] = []
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for i, msg in enumerate(messages):
        if msg["role"] == "system":
            system.extend(_blocks(msg["content"], names))
            continue
        role, blocks = _turn(msg, names)
        if not blocks:
            raise ValidationError(
                f"message {i} ({msg['role']}) is empty, and Bedrock rejects empty messages: "
                "remove it or give it some text"
            )
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    return system, [{"role": role, "content": blocks} for role, blocks in turns]


def _tool_spec(name: str, description: str, schema: Any, strict: Any = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name}
    if description:  # Converse refuses an empty description
        spec["description"] = description
    spec["inputSchema"] = {"json": thaw(schema)}
    if strict is not None:
        spec["strict"] = strict
    return {"toolSpec": spec}


def encode_tools(tools: Any) -> list[dict[str, Any]]:
    """Return Converse's ``toolConfig.tools`` (``cache_control`` becomes a ``cachePoint``).

    >>> encode_tools([{"name": "f", "description": "d", "parameters": {"type": "object"}}])
    [{'toolSpec': {'name': 'f', 'description': 'd', 'inputSchema': {'json': {'type': 'object'}}}}]
    """
    out = []
    for tool in tools:
        schema = tool.get("parameters") or {"type": "object"}
        out.append(_tool_spec(tool["name"], tool.get("description") or "", schema))
        if tool.get("cache_control"):
            out.append(dict(_CACHE_POINT))
    return out


def encode_tool_choice(choice: Any) -> dict[str, Any] | None:
    """Return Converse's ``toolChoice`` for Conduit's (auto, required, a name); None for
    ``"none"``, which Converse cannot say (:func:`encode_chat` then leaves the tools out).

    >>> encode_tool_choice("required"), encode_tool_choice("get_weather")
    ({'any': {}}, {'tool': {'name': 'get_weather'}})
    """
    if choice == "none":
        return None
    if choice == "auto":
        return {"auto": {}}
    if choice in ("required", "any"):
        return {"any": {}}
    if isinstance(choice, str):
        return {"tool": {"name": choice}}
    if isinstance(choice, Mapping) and "name" in choice:
        return {"tool": {"name": choice["name"]}}
    return dict(thaw(choice))


def encode_response_format(fmt: Any) -> dict[str, Any]:
    """Return the tool that carries an OpenAI-style JSON-schema ``response_format`` on Converse.

    Converse has no schema mode every model supports; a tool whose input is the schema, which
    the model is made to call, works on every model with tool use (Anthropic's way too).

    >>> fmt = {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object"}}}
    >>> encode_response_format(fmt)["toolSpec"]["inputSchema"]
    {'json': {'type': 'object'}}
    """
    fmt = thaw(fmt)
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema", spec) if isinstance(spec, dict) else spec
        name = spec.get("name", "answer") if isinstance(spec, dict) else "answer"
        strict = spec.get("strict") if isinstance(spec, dict) else None
        return _tool_spec(name, "Give the answer in this format.", schema, strict)
    raise ValidationError(
        f"bedrock has no response_format {fmt!r:.60}: give a JSON schema "
        '({"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}), use '
        "c.with_schema, or send Converse's outputConfig as an option"
    )


def _thinking(fields: Mapping[str, Any]) -> bool:
    thinking = fields.get("thinking")
    return isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive")


def _uses_tools(messages: list[dict[str, Any]]) -> bool:
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


def _options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(inferenceConfig, additionalModelRequestFields, top-level fields) from the options."""
    inference: dict[str, Any] = dict(thaw(options.get("inferenceConfig") or {}))
    extra: dict[str, Any] = dict(thaw(options.get("additionalModelRequestFields") or {}))
    top: dict[str, Any] = {}
    for key, value in options.items():
        if key in _ELSEWHERE or key in CONNECTION:
            continue
        if key in INFERENCE:
            inference[INFERENCE[key]] = thaw(value)
        elif key == "stop":
            inference["stopSequences"] = [value] if isinstance(value, str) else list(value)
        elif key in TOP_LEVEL:
            top[key] = thaw(value)
        elif key in DROPPED:
            log.warning("bedrock's Converse API has no %r; it was not sent", key)
        else:
            extra[key] = thaw(value)
    return inference, extra, top


def encode_chat(req: Request, stream: bool = False) -> dict[str, Any]:
    """Return the JSON body of a Converse (or ConverseStream: the same body) call for *req*.

    ``max_tokens``, ``temperature``, ``top_p`` and ``stop`` go to ``inferenceConfig``;
    Converse's own top-level fields (``guardrailConfig``, ``performanceConfig``, ...) where they
    belong; ``region`` nowhere (it picks the endpoint); every other option to
    ``additionalModelRequestFields``, the model's own parameters (Claude's ``thinking`` and
    ``top_k``, ...).

    >>> import conduit as c
    >>> body = encode_chat(c.request("m", [c.system("S"), c.user("Hi")], stop="x", top_k=5))
    >>> body["system"], body["messages"], body["inferenceConfig"]
    ([{'text': 'S'}], [{'role': 'user', 'content': [{'text': 'Hi'}]}], {'stopSequences': ['x']})
    >>> body["additionalModelRequestFields"]
    {'top_k': 5}
    """
    system, messages = encode_messages(req["messages"])
    options = req["options"]
    inference, extra, top = _options(options)
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    body["inferenceConfig"] = inference
    tools = encode_tools(req["tools"]) if req.get("tools") else []
    choice = encode_tool_choice(options["tool_choice"]) if "tool_choice" in options else None
    if "tool_choice" in options and choice is None and not _uses_tools(messages):
        tools = []  # "none": Converse needs the tools only to read past tool turns
    if "response_format" in options:
        answer = encode_response_format(options["response_format"])
        own = bool(tools) and options.get("tool_choice") != "none"
        tools = [*tools, answer]
        name = answer["toolSpec"]["name"]
        if _thinking(extra) or own:  # offered, not forced: as on Anthropic (encode_chat there)
            choice = {"auto": {}} if _thinking(extra) else {"any": {}}
            note = f"Give your final answer by calling the {name} tool with it, and nothing else."
            body["system"] = [*system, {"text": note}]
        else:
            choice = {"tool": {"name": name}}
    if tools:
        body["toolConfig"] = {"tools": tools, **({"toolChoice": choice} if choice else {})}
    if extra:
        body["additionalModelRequestFields"] = extra
    return {**body, **top}


# --- answers --------------------------------------------------------------------------------


def decode_usage(usage: Mapping[str, Any] | None) -> PMap[str, Any]:
    """Return Conduit's usage: ``input_tokens`` counts cached prompt tokens too (Bedrock's
    ``inputTokens`` does not; its ``totalTokens`` does).

    >>> u = decode_usage({"inputTokens": 13, "outputTokens": 5, "totalTokens": 1522,
    ...                   "cacheReadInputTokens": 1504, "cacheWriteInputTokens": 0})
    >>> u["input_tokens"], u["cache_read_tokens"], u["total_tokens"]
    (1517, 1504, 1522)
    """
    usage = want(usage or {}, Mapping, "usage")
    read = _count(usage, "usage", "cacheReadInputTokens")
    written = _count(usage, "usage", "cacheWriteInputTokens")
    prompt = (_count(usage, "usage", "inputTokens") or 0) + (read or 0) + (written or 0)
    return make_usage(
        prompt,
        _count(usage, "usage", "outputTokens") or 0,
        cache_read_tokens=read,
        cache_creation_tokens=written,
    )


def _thought(block: Mapping[str, Any], where: str) -> PMap[str, Any]:
    if block.get("redactedContent") is not None:
        redacted = _text(block.get("redactedContent"), f"{where}.redactedContent") or ""
        return pmap({"type": "reasoning", "text": "", "redacted": redacted})
    text = want(block.get("reasoningText") or {}, Mapping, f"{where}.reasoningText")
    fields = {"type": "reasoning", "text": _text(text.get("text"), f"{where}.text") or ""}
    signature = _text(text.get("signature"), f"{where}.signature")
    return pmap(fields if signature is None else {**fields, "signature": signature})


def _tool_use(block: Mapping[str, Any], where: str) -> PMap[str, Any]:
    name = _text(block.get("name"), f"{where}.name")
    if not name:
        raise ShapeError(f"{where}.name is missing")
    args = want(block.get("input") or {}, Mapping, f"{where}.input")
    return make_tool_call(_text(block.get("toolUseId"), f"{where}.toolUseId") or "", name, args)


def decode_chat(req: Request, body: Mapping[str, Any], provider: str = "bedrock") -> Request:
    """Return *req* with the ``response`` decoded from a Converse *body*.

    >>> import conduit as c
    >>> ctx = decode_chat(c.request("m"), {"output": {"message": {"role": "assistant",
    ...     "content": [{"text": "Hi"}]}}, "stopReason": "end_turn", "usage": {}})
    >>> c.content(ctx), ctx["response"]["model"]
    ('Hi', 'm')
    """
    try:
        return _decode_chat(req, body, provider)
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed(provider, "Converse answer", body, exc) from exc


def _decode_chat(req: Request, body: Any, provider: str) -> Request:
    want(body, Mapping, "the answer")
    output = want(body.get("output") or {}, Mapping, "output")
    message = want(output.get("message") or {}, Mapping, "output.message")
    texts: list[str] = []
    calls: list[PMap[str, Any]] = []
    blocks: list[PMap[str, Any]] = []  # only once reasoning shows up
    for i, block in enumerate(_list(message.get("content") or (), "output.message.content")):
        where = f"output.message.content[{i}]"
        want(block, Mapping, where)
        if "text" in block:
            piece = _text(block["text"], f"{where}.text") or ""
            texts.append(piece)
            if blocks:
                blocks.append(pmap({"type": "text", "text": piece}))
        elif "toolUse" in block:
            calls.append(_tool_use(want(block["toolUse"], Mapping, f"{where}.toolUse"), where))
        elif "reasoningContent" in block:
            if not blocks and texts:
                blocks.append(pmap({"type": "text", "text": "".join(texts)}))
            thought = want(block["reasoningContent"], Mapping, f"{where}.reasoningContent")
            blocks.append(_thought(thought, f"{where}.reasoningContent"))
    reason = _text(body.get("stopReason"), "stopReason")
    resp = make_response(
        joined_content(blocks, texts),
        model=req["model"],
        id=None,
        stop_reason=STOP_REASONS.get(reason or "", "end_turn"),
        usage=decode_usage(body.get("usage")),
        tool_calls=calls,
    )
    return req.set("response", resp)


# --- streams --------------------------------------------------------------------------------

#: The HTTP status of each exception a ConverseStream may send mid-stream (the service model's).
EXCEPTION_STATUS = {
    "throttlingException": 429,
    "serviceUnavailableException": 503,
    "internalServerException": 500,
    "validationException": 400,
    "modelStreamErrorException": 424,
    "modelTimeoutException": 408,
}


class StreamState(NamedTuple):
    """What the ConverseStream decoder remembers between messages."""

    provider: str
    tools: PMap[int, int] = pmap()  # content block index -> tool call ordinal
    usage: PMap[str, Any] = pmap()
    stop_reason: str | None = None
    done: bool = False
    metered: bool = False  # the closing ``metadata`` (the usage) arrived


def stream_start(provider: str = "bedrock") -> StreamState:
    """Return the state before the first message of a stream."""
    return StreamState(provider)


def _exception(state: StreamState, message: Message) -> ConduitError:
    headers = message.headers
    if headers.get(":message-type") == "error":  # the framing's own error message
        # string headers, as AWS sends them; a header of another type is shown as text
        said = {k: headers.get(f":error-{k}") for k in ("message", "code")}
        body = {k: v if v is None or type(v) is str else str(v) for k, v in said.items()}
        return error_from_response(state.provider, None, {}, body)
    kind = str(headers.get(":exception-type") or "")
    upper = kind[:1].upper() + kind[1:]
    payload = message.payload.decode("utf-8", "replace")
    status = EXCEPTION_STATUS.get(kind, 500)
    return error_from_response(state.provider, status, {"x-amzn-errortype": upper}, payload)


def stream_step(state: StreamState, message: Message) -> tuple[StreamState, list[Event]]:
    """Return (state, Conduit events) after one event-stream message of a ConverseStream.

    >>> s, ev = stream_step(stream_start(), Message({":message-type": "event",
    ...     ":event-type": "contentBlockDelta"}, b'{"contentBlockIndex":0,"delta":{"text":"Hi"}}'))
    >>> ev
    [{'type': 'content_delta', 'text': 'Hi'}]
    """
    if message.headers.get(":message-type", "event") != "event":
        raise _exception(state, message)
    data = decode_event(state.provider, message.payload.decode("utf-8", "replace"))
    try:
        return _step(state, str(message.headers.get(":event-type")), want(data, Mapping, "event"))
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed(state.provider, "stream event", data, exc) from exc


def _index(data: Mapping[str, Any]) -> int:
    index = data.get("contentBlockIndex")
    if type(index) is not int:
        raise ShapeError(f"contentBlockIndex is {index!r}, not an integer")
    return index


def _delta(state: StreamState, data: Mapping[str, Any]) -> list[Event]:
    delta = want(data.get("delta") or {}, Mapping, "delta")
    if "text" in delta:
        text = _text(delta["text"], "delta.text")
        return [event("content_delta", text=text)] if text else []
    if "toolUse" in delta and _index(data) in state.tools:
        piece = _text(want(delta["toolUse"], Mapping, "delta.toolUse").get("input"), "input")
        index = state.tools[data["contentBlockIndex"]]
        return [event("tool_call_delta", index=index, arguments_delta=piece)] if piece else []
    if "reasoningContent" in delta:
        thought = want(delta["reasoningContent"], Mapping, "delta.reasoningContent")
        if thought.get("redactedContent") is not None:
            redacted = _text(thought["redactedContent"], "redactedContent") or ""
            return [event("reasoning_delta", text="", redacted=redacted)]
        if thought.get("signature") is not None:
            signature = _text(thought["signature"], "signature") or ""
            return [event("reasoning_delta", text="", signature=signature)]
        text = _text(thought.get("text"), "reasoningContent.text")
        return [event("reasoning_delta", text=text)] if text else []
    return []  # citations and server-side tool results: not Conduit events (yet)


def _step(
    state: StreamState, kind: str, data: Mapping[str, Any]
) -> tuple[StreamState, list[Event]]:
    if kind == "contentBlockDelta":
        return state, _delta(state, data)
    if kind == "messageStart":
        return state, [event("message_start")]
    if kind == "contentBlockStart":
        start = want(data.get("start") or {}, Mapping, "start")
        if "toolUse" not in start:
            return state, []
        use = want(start["toolUse"], Mapping, "start.toolUse")
        ordinal = len(state.tools)
        state = state._replace(tools=state.tools.set(_index(data), ordinal))
        call_id = _text(use.get("toolUseId"), "start.toolUse.toolUseId") or ""
        name = _text(use.get("name"), "start.toolUse.name") or ""
        return state, [event("tool_call_start", index=ordinal, id=call_id, name=name)]
    if kind == "contentBlockStop" and _index(data) in state.tools:
        return state, [event("tool_call_end", index=state.tools[data["contentBlockIndex"]])]
    if kind == "messageStop":
        reason = _text(data.get("stopReason"), "stopReason") or ""
        return state._replace(stop_reason=STOP_REASONS.get(reason, "end_turn"), done=True), []
    if kind == "metadata":
        usage = pmap(want(data.get("usage") or {}, Mapping, "usage"))
        return state._replace(usage=usage, metered=True), []
    return state, []


def stream_end(state: StreamState) -> list[Event]:
    """Return the closing event of a finished stream; raise if it was cut short: before
    ``messageStop``, or before the ``metadata`` (the usage) ConverseStream always ends with."""
    if not (state.done and state.metered):
        missing = "messageStop" if not state.done else "its closing metadata (the usage)"
        raise ConnectionError(
            f"{state.provider} stream ended before {missing}; the connection was probably "
            "cut: retry the call",
            data={"provider": state.provider},
        )
    try:
        usage = decode_usage(state.usage)
    except (ShapeError, TypeError, ValueError, OverflowError) as exc:
        raise malformed(state.provider, "stream's usage", thaw(state.usage), exc) from exc
    return [event("message_end", stop_reason=state.stop_reason or "end_turn", usage=usage)]


def _steps(state: StreamState, messages: Any) -> tuple[StreamState, list[Event]]:
    out: list[Event] = []
    for message in messages:
        state, events = stream_step(state, message)
        out += events
    return state, out


# --- where the call goes, and how it is signed ----------------------------------------------

SERVICE = "bedrock"  # SigV4's signing name for bedrock-runtime (the service model's)
TOKEN_ENV = "AWS_BEARER_TOKEN_BEDROCK"  # a Bedrock API key, as boto3 and the AWS docs read it
INSTALL = "pip install 'conduit-llm[bedrock]'"


def region_of(req: Request) -> str | None:
    """Return the AWS region of *req*: its ``region`` option, else ``AWS_REGION``,
    ``AWS_DEFAULT_REGION``, else the AWS profile's (read with botocore, when installed).

    >>> import conduit as c
    >>> region_of(c.request("m", region="eu-west-3"))
    'eu-west-3'
    """
    region = req["options"].get("region") or os.environ.get("AWS_REGION")
    region = region or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return str(region)
    try:
        session = _session()
    except ConduitError:
        return None
    found = session.get_config_variable("region")
    return str(found) if found else None


def _region(req: Request) -> str:
    region = region_of(req)
    if not region:
        raise ValidationError(
            "no AWS region for bedrock: pass region='us-east-1' (say) to c.request, or set "
            "AWS_REGION or a region in your AWS profile"
        )
    return region


def chat_url(base: str, req: Request, stream: bool) -> str:
    """Return the Converse URL of *req*: the model id (URL-quoted, as botocore does) in the
    path, on *base* (``BEDROCK_BASE_URL`` or the request's ``base_url``: a VPC endpoint, a
    proxy) or the region's endpoint.

    >>> import conduit as c
    >>> chat_url("", c.request("us.amazon.nova-micro-v1:0", region="us-east-1"), False)
    'https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-micro-v1%3A0/converse'
    """
    root = base or f"https://bedrock-runtime.{_region(req)}.amazonaws.com"
    path = f"/model/{quote(req['model'], safe='')}/{'converse-stream' if stream else 'converse'}"
    return _http.joined_url(root, lambda at: at + path)


class _MaskToken(logging.Filter):
    """botocore logs the canonical request it signs at DEBUG, and the session token is one of
    its signed headers: masked in the record, which is botocore's only one holding a secret."""

    LINE = re.compile(r"^(x-amz-security-token:).*$", re.IGNORECASE | re.MULTILINE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.LINE.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = self.LINE.sub(r"\1***", record.msg)
        return True


_MASK_TOKEN = _MaskToken()


def _botocore() -> Any:
    """botocore, imported when first needed (it is optional, and has no type stubs)."""
    signer = logging.getLogger("botocore.auth")
    if _MASK_TOKEN not in signer.filters:
        signer.addFilter(_MASK_TOKEN)
    try:
        for module in ("botocore.auth", "botocore.awsrequest", "botocore.session"):
            importlib.import_module(module)
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConduitError(
            f"signing Bedrock requests with AWS credentials needs botocore: {INSTALL} (or use "
            f"a Bedrock API key: set {TOKEN_ENV} or pass api_key=...)",
            data={"provider": "bedrock"},
        ) from None
    return importlib.import_module("botocore")


# Credentials are resolved once per set of AWS variables (``_AWS_ENV``, below: profiles, SSO and
# instance roles cost file reads or network calls); botocore refreshes temporary ones itself.
_lock = threading.Lock()
_sessions: dict[tuple[str | None, ...], Any] = {}
_credentials: dict[tuple[str | None, ...], Any] = {}


def _session() -> Any:
    key = tuple(map(os.environ.get, _AWS_ENV))
    found = _sessions.get(key)
    if found is None:
        botocore = _botocore()
        with _lock:
            if len(_sessions) >= 16:
                _sessions.clear()
                _credentials.clear()
            found = _sessions[key] = botocore.session.get_session()
    return found


def _frozen() -> Any:
    """The current AWS credentials (access key, secret key, token) of the standard chain."""
    key = tuple(map(os.environ.get, _AWS_ENV))
    found = _credentials.get(key)
    if found is None:
        session = _session()
        with _lock:
            try:
                found = session.get_credentials()
            except Exception as exc:  # botocore's own errors (a broken profile, SSO expired)
                raise AuthenticationError(
                    f"bedrock could not load AWS credentials: {type(exc).__name__}",
                    provider="bedrock",
                ) from None
            if found is not None:
                _credentials[key] = found
    if found is None:
        raise AuthenticationError(
            "no AWS credentials for bedrock: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            f"AWS_PROFILE (SSO, roles), or a Bedrock API key in {TOKEN_ENV} (or api_key=...)",
            provider="bedrock",
        )
    frozen = found.get_frozen_credentials()
    given = (frozen.access_key, frozen.secret_key, frozen.token)
    for value, name in zip(given, _AWS_NAMES, strict=True):
        problem = secret_problem(value, name) if value else None
        if problem is not None:  # sent (or signed with), it would fail, or leak in h11's error
            raise ValidationError(problem, data={"provider": "bedrock"})
    return frozen


#: How errors name the AWS credentials (from the environment, or a profile's file).
_AWS_NAMES = ("the AWS access key id", "the AWS secret access key", "the AWS session token")


def _token(req: Request) -> str | None:
    token = reveal(req.get("api_key")) or os.environ.get(TOKEN_ENV)
    where = "api_key" if req.get("api_key") else TOKEN_ENV
    problem = secret_problem(token, where) if token else None
    if problem is not None:
        raise ValidationError(problem, data={"provider": "bedrock"})
    return token or None


def credentials(req: Request) -> dict[str, str]:
    """Return the auth headers known before signing: a Bedrock API key's bearer token, or the
    session token of temporary AWS credentials (which SigV4 sends as a header anyway)."""
    token = _token(req)
    if token:
        return {"Authorization": f"Bearer {token}"}
    session_token = _frozen().token
    return {"X-Amz-Security-Token": session_token} if session_token else {}


def hidden_secrets(req: Request) -> list[str]:
    """Return the AWS credentials a signed request relies on, for masking in errors: the
    secret key (never sent), the session token and the access key id (sent, the id inside the
    signature, which AWS's errors quote); none with a Bedrock API key (masked as a key)."""
    if _token(req):
        return []
    frozen = _frozen()
    return [s for s in (frozen.secret_key, frozen.token, frozen.access_key) if s]


def sign(req: Request, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """Return *headers* signed with AWS Signature Version 4 for this exact URL and body
    (botocore's ``SigV4Auth``, service ``bedrock``); a bearer token is left as it is."""
    if any(name.lower() == "authorization" for name in headers):
        return headers
    botocore = _botocore()
    request = botocore.awsrequest.AWSRequest(method="POST", url=url, data=body, headers=headers)
    botocore.auth.SigV4Auth(_frozen(), SERVICE, _region(req)).add_auth(request)
    return dict(request.headers.items())


# --- the wire: the shared HTTP shell around this codec ---------------------------------------

from conduit.providers import _http  # noqa: E402  (the codec above stays importable alone)
from conduit.registry import lookup  # noqa: E402

_INFO = lookup("bedrock")
#: The AWS variables that choose the credentials (the registry's list, less the API key's).
_AWS_ENV = tuple(v for v in _INFO.credential_env if v != TOKEN_ENV)
BEDROCK = _http.Provider(
    name=_INFO.name,
    base_url=_INFO.base_url or "",
    base_url_env=_INFO.base_url_env,
    path="",
    env_key=TOKEN_ENV,
    encode=encode_chat,
    decode=decode_chat,
    stream_start=stream_start,
    stream_steps=_steps,
    stream_end=stream_end,
    auth=_http.bearer,
    url=chat_url,
    sign=sign,
    credentials=credentials,
    hidden=hidden_secrets,
    framing=partial(EventStreamDecoder, "bedrock"),
)
WIRE = _http.wire(BEDROCK)
