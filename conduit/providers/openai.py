"""OpenAI chat completions and embeddings: pure codecs (also used by every compatible server).

Each decoder turns an answer of the wrong shape (``{"choices": [null]}``, a number where text
belongs, a list at the top level) into a ``ProviderError`` naming the provider and the field
(:func:`~conduit.errors.malformed`): one guard per decoder, with precise messages for the
common shapes and the decoder's own exception as the reason otherwise.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import attrs
from pyrsistent import PMap, PVector, pmap, pvector

from conduit import catalog
from conduit._data import freeze_map, peek, thaw
from conduit._event import Event, event
from conduit._types import Request
from conduit.embeddings import embedding_response, number_row, one_per_text, one_width
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
from conduit.errors import want_count as count
from conduit.errors import want_list as _list
from conduit.errors import want_text as _text
from conduit.registry import lookup
from conduit.response import make_response, make_tool_call, make_usage
from conduit.schema import is_strict_schema
from conduit.sse import SSE
from conduit.streams import collect, parse_arguments

__all__ = [
    "OPENAI",
    "REASONING_FIELDS",
    "WIRE",
    "Dialect",
    "StreamState",
    "compatible",
    "decode_chat",
    "decode_embeddings",
    "decode_usage",
    "dialect_for",
    "encode_chat",
    "encode_embeddings",
    "encode_messages",
    "encode_tool_choice",
    "encode_tools",
    "encoder",
    "from_registry",
    "is_strict_schema",
    "reasoning_text",
    "stream_end",
    "stream_start",
    "stream_step",
    "stream_steps",
    "takes_max_completion_tokens",
]

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}


#: Audio formats OpenAI's ``input_audio`` takes, by media type.
_AUDIO_FORMATS = {"audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/wav": "wav", "audio/x-wav": "wav"}


class Dialect(NamedTuple):
    """How one request is written: the service, and where its reasoning goes back."""

    provider: str
    #: the assistant field a ``reasoning`` block is sent back in (None: it is left out)
    reasoning: str | None = None
    #: send it back only on turns that called tools (DeepSeek's rule)
    reasoning_with_tools_only: bool = False
    #: OpenAI itself (no base URL, or an openai.com or Azure OpenAI host): schemas sent strict
    #: when they qualify, ``max_tokens`` as ``max_completion_tokens`` where the model wants it
    official: bool = False


def dialect_for(provider: str, req: Mapping[str, Any]) -> Dialect:
    """Return how *req* is written for *provider* (reasoning replay, OpenAI-only mappings).

    >>> import conduit as c
    >>> dialect_for("ollama", c.request("qwen3")).reasoning
    'reasoning'
    >>> dialect_for("openai", c.request("deepseek-reasoner", base_url="https://api.deepseek.com"))[1:3]
    ('reasoning_content', True)
    >>> dialect_for("openai", c.request("gpt-5")).official
    True
    """
    if provider == "ollama":
        # Ollama's OpenAI-compatible API reads an assistant message's ``reasoning`` back into
        # its thinking (ollama openai/openai.go Message.Reasoning; the recorded second turn in
        # tests/fixtures/providers/ollama/request_openai_reasoning_replay.json).
        return Dialect(provider, "reasoning")
    if provider == "azure":  # OpenAI's models on Microsoft's servers: OpenAI's own mappings
        return Dialect(provider, official=True)
    if provider == "deepseek":  # its thinking-mode guide: see the rule below
        return Dialect(provider, "reasoning_content", reasoning_with_tools_only=True)
    if provider == "openrouter":
        # OpenRouter's reasoning guide: send an assistant turn's ``reasoning_details`` back as
        # received (signed blocks, for Anthropic and Gemini models calling tools).
        return Dialect(provider, "reasoning_details")
    if provider != "openai":
        # Groq, xAI, Mistral, Together and Fireworks document no way to send chat-completions
        # reasoning back: left out.
        return Dialect(provider)
    base_url = peek(req, "base_url")
    host = urlsplit(base_url).hostname or "" if base_url else "api.openai.com"
    if host.endswith(("openai.com", "openai.azure.com")):
        return Dialect(provider, official=True)  # OpenAI's chat API returns no reasoning text
    # Another server behind the OpenAI wire (DeepSeek, vLLM, ...). DeepSeek's thinking-mode
    # guide (api-docs.deepseek.com/guides/thinking_mode): an assistant turn that called tools
    # must send its ``reasoning_content`` back in every later request (else 400); on other
    # turns it is not needed and ignored, so it is left out there.
    return Dialect(provider, "reasoning_content", reasoning_with_tools_only=True)


def _block(block: Mapping[str, Any], provider: str) -> dict[str, Any]:
    kind_ = block["type"]
    if kind_ == "text":
        return {"type": "text", "text": block["text"]}
    if kind_ == "image":
        src = block["source"]
        url = (
            src["url"] if src["type"] == "url" else f"data:{src['media_type']};base64,{src['data']}"
        )
        return {"type": "image_url", "image_url": {"url": url}}
    if kind_ == "document":
        return _document(block, provider)
    if kind_ == "audio":
        return _audio(block, provider)
    raise ValidationError(f"{provider} messages cannot hold a {kind_!r} block")


#: Which OpenAI-wire services take PDF ``file`` parts and ``input_audio`` parts, and where else
#: to send each (the providers with a codec of their own that take them).
_TAKES = {
    "document": (("openai", "azure", "openrouter"), "openai, azure, anthropic, gemini, bedrock"),
    "audio": (("openai", "azure"), "openai, azure, gemini"),
}


def _only_some(kind_: str, what: str, provider: str) -> None:
    takers, elsewhere = _TAKES[kind_]
    if provider not in takers:
        msg = (
            f"{provider} cannot take {what} in chat messages; send it to a provider that can "
            f"({elsewhere}), or pass its text instead"
        )
        raise ValidationError(msg, data={"provider": provider})


def _document(block: Mapping[str, Any], provider: str) -> dict[str, Any]:
    _only_some("document", "a 'document' block (PDF)", provider)
    src = block["source"]
    if src["type"] != "base64":
        msg = (
            f"{provider} takes documents as base64 file data, not by URL: download the PDF and "
            "use document_base64"
        )
        raise ValidationError(msg, data={"provider": provider})
    data = f"data:{src.get('media_type') or 'application/pdf'};base64,{src['data']}"
    return {
        "type": "file",
        "file": {"filename": block.get("title") or "document.pdf", "file_data": data},
    }


def _audio(block: Mapping[str, Any], provider: str) -> dict[str, Any]:
    _only_some("audio", "audio", provider)
    src = block["source"]
    media_type = src.get("media_type") or ""
    fmt = _AUDIO_FORMATS.get(media_type) or media_type.rpartition("/")[2]
    return {"type": "input_audio", "input_audio": {"data": src["data"], "format": fmt}}


def _content(value: Any, provider: str) -> Any:
    return value if isinstance(value, str) else [_block(b, provider) for b in value]


def _tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    args = call.get("raw_arguments")
    if args is None:
        args = json.dumps(thaw(call.get("arguments") or {}))
    return {
        "id": call["id"],
        "type": "function",
        "function": {"name": call["name"], "arguments": args},
    }


#: Encoded messages by the identity of the (immutable) message they encode, one table per way
#: of writing (a conversation re-sends its whole history every turn, and a frozen message
#: encodes the same every time). The dicts are shared between bodies: nothing may mutate one.
_ENCODED: dict[Dialect, dict[int, tuple[Mapping[str, Any], dict[str, Any]]]] = {}
_ENCODED_MAX = 4096
_DEFAULT_DIALECT = _GENERIC = Dialect("openai")


def _message(msg: Mapping[str, Any], wire: Dialect, cache: dict[int, Any]) -> dict[str, Any]:
    hit = cache.get(id(msg))
    if hit is not None and hit[0] is msg:
        return hit[1]  # type: ignore[no-any-return]
    out = _encode_message(msg, wire)
    if isinstance(msg, PMap):  # only frozen messages are sure to encode the same next time
        if len(cache) >= _ENCODED_MAX:
            cache.clear()
        cache[id(msg)] = (msg, out)
    return out


def _assistant_blocks(body: Any, out: dict[str, Any], wire: Dialect, calls: bool) -> None:
    """Write an assistant turn's blocks: its text as the content, its reasoning as *wire* says."""
    thoughts = [b for b in body if b["type"] == "reasoning"]
    rest = [b for b in body if b["type"] != "reasoning"]
    if all(b["type"] == "text" for b in rest):
        out["content"] = "".join(b["text"] for b in rest)
    else:
        out["content"] = [_block(b, wire.provider) for b in rest]
    if not thoughts or not wire.reasoning or (wire.reasoning_with_tools_only and not calls):
        return
    if wire.reasoning == "reasoning_details":
        out["reasoning_details"] = [_detail(b, i) for i, b in enumerate(thoughts)]
    else:
        out[wire.reasoning] = "".join(b.get("text") or "" for b in thoughts)


def _detail(block: Mapping[str, Any], index: int) -> dict[str, Any]:
    """A reasoning block as an OpenRouter ``reasoning_details`` item, as it was received: its
    text or encrypted data, its signature and the format it was written in."""
    if block.get("redacted") is not None:
        out = {"type": "reasoning.encrypted", "data": block["redacted"], "index": index}
    else:
        out = {"type": "reasoning.text", "text": block.get("text") or "", "index": index}
    if block.get("signature") is not None:
        out["signature"] = block["signature"]
    if block.get("format") is not None:
        out["format"] = block["format"]
    return out


def _encode_message(msg: Mapping[str, Any], wire: Dialect = _DEFAULT_DIALECT) -> dict[str, Any]:
    body = msg["content"]
    if len(msg) == 2 and type(body) is str:  # role and text only: most of every conversation
        return {"role": msg["role"], "content": body}
    role = msg["role"]
    out: dict[str, Any] = {"role": role}
    if type(body) is not str and any(b["type"] == "reasoning" for b in body):
        if role == "assistant":
            _assistant_blocks(body, out, wire, bool(msg.get("tool_calls")))
        else:
            out["content"] = _content([b for b in body if b["type"] != "reasoning"], wire.provider)
    else:
        out["content"] = _content(body, wire.provider)
    if msg.get("name"):
        out["name"] = msg["name"]
    if role == "tool":
        out["tool_call_id"] = msg["tool_call_id"]
    if msg.get("tool_calls"):
        out["tool_calls"] = [_tool_call(c) for c in msg["tool_calls"]]
        if not out["content"]:
            out["content"] = None
    return out


def encode_messages(messages: Any, wire: Dialect = _DEFAULT_DIALECT) -> list[dict[str, Any]]:
    """Return OpenAI's ``messages`` for Conduit messages (images as ``image_url`` parts).

    >>> import conduit as c
    >>> encode_messages([c.user("hi", c.image_base64("QUJD", "image/png"))])[0]["content"][1]
    {'type': 'image_url', 'image_url': {'url': 'data:image/png;base64,QUJD'}}
    >>> turn = c.assistant([{"type": "reasoning", "text": "Easy."}, c.text_block("4")])
    >>> encode_messages([turn], dialect_for("ollama", c.request("m")))[0]["reasoning"]
    'Easy.'
    """
    cache = _ENCODED.setdefault(wire, {})
    return [_message(m, wire, cache) for m in messages]


#: (provider, base_url) -> its dialect and that dialect's table of encoded messages
_DIALECTS: dict[tuple[str | None, Any], tuple[Dialect, dict[int, Any]]] = {}


def _dialect(provider: str | None, req: Request) -> tuple[Dialect, dict[int, Any]]:
    key = (provider, peek(req, "base_url"))
    hit = _DIALECTS.get(key)
    if hit is None:
        if len(_DIALECTS) >= 256:
            _DIALECTS.clear()
        dialect = _GENERIC if provider is None else dialect_for(provider, req)
        hit = _DIALECTS[key] = (dialect, _ENCODED.setdefault(dialect, {}))
    return hit


def encode_tools(tools: Any, strict: bool = False) -> list[dict[str, Any]]:
    """Return OpenAI's ``tools`` for Conduit tool maps (``name``, ``description``, ``parameters``).

    With *strict*, a tool whose parameters qualify (:func:`is_strict_schema`) is sent with
    ``"strict": true``; a tool's own ``strict`` (``False`` to opt out) always wins.

    >>> tool = {"name": "f", "description": "d", "parameters": {"type": "object"}}
    >>> encode_tools([tool])[0]["function"]
    {'name': 'f', 'description': 'd', 'parameters': {'type': 'object'}}
    >>> closed = {"type": "object", "properties": {}, "additionalProperties": False}
    >>> encode_tools([{"name": "f", "parameters": closed}], strict=True)[0]["function"]["strict"]
    True
    """
    out = []
    for tool in tools:
        fn = {"name": tool["name"], "description": tool.get("description", "")}
        params = tool.get("parameters") or {"type": "object", "properties": {}}
        fn["parameters"] = thaw(params)
        if tool.get("strict") is not None:
            fn["strict"] = tool["strict"]
        elif strict and is_strict_schema(params):
            fn["strict"] = True
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


#: Models that take ``max_completion_tokens`` and refuse ``max_tokens`` (o-series, gpt-5), for
#: names the model catalog does not know (a catalog entry's ``max_tokens_param`` wins).
_COMPLETION_TOKENS = re.compile(r"(?:ft:)?(?:o\d|gpt-5)")


def takes_max_completion_tokens(model: str) -> bool:
    """Return True when OpenAI wants ``max_completion_tokens`` instead of ``max_tokens``.

    >>> takes_max_completion_tokens("o3-mini"), takes_max_completion_tokens("gpt-5-mini")
    (True, True)
    >>> takes_max_completion_tokens("gpt-4o")
    False
    """
    info = catalog.entry_for("openai", model)
    if info is not None:
        return info.max_tokens_param == "max_completion_tokens"
    return _COMPLETION_TOKENS.match(model) is not None


def _strict_format(value: Any) -> Any:
    """A ``json_schema`` response format with ``strict: true`` when its schema qualifies."""
    fmt = thaw(value)
    spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    if (
        fmt.get("type") == "json_schema"
        and isinstance(spec, dict)
        and "strict" not in spec
        and is_strict_schema(spec.get("schema"))
    ):
        fmt["json_schema"] = {**spec, "strict": True}
    return fmt


def encode_chat(req: Request, stream: bool = False, provider: str | None = None) -> dict[str, Any]:
    """Return the JSON body of a chat completion for *req* (options pass through as given).

    *provider* is the registry name of the service the body is for (each provider's wire
    passes its own); ``None`` writes for any OpenAI-compatible server. For ``"openai"`` itself
    ``max_tokens`` becomes ``max_completion_tokens`` on o-series and gpt-5 models, and response
    formats and tools whose schemas qualify are sent strict.

    >>> import conduit as c
    >>> body = encode_chat(c.request("gpt-4o-mini", [c.system("Be brief."), c.user("Hi")],
    ...                              temperature=0.2, tool_choice="auto"))
    >>> body["model"], body["messages"][0], body["temperature"]
    ('gpt-4o-mini', {'role': 'system', 'content': 'Be brief.'}, 0.2)
    >>> encode_chat(c.request("m", "hi"), stream=True)["stream_options"]
    {'include_usage': True}
    >>> o3 = c.request("o3", "hi", max_tokens=50)
    >>> encode_chat(o3, provider="openai")["max_completion_tokens"]
    50
    """
    dialect, cache = _dialect(provider, req)
    body: dict[str, Any] = {
        "model": req["model"],
        "messages": [_message(m, dialect, cache) for m in req["messages"]],
    }
    tools = peek(req, "tools")
    if tools:
        body["tools"] = encode_tools(tools, strict=dialect.official)
    options = req["options"]
    if options and provider is not None and (dialect.official or provider != "openai"):
        info = catalog.entry_for(provider, req["model"])  # its own server's model, not a proxy's
        if info is not None and info.unsupported_options:
            options = catalog.drop_unsupported(f"{provider}:{req['model']}", options)
    for key, value in options.items() if options else ():
        if key in _SPECIAL:
            key, value = _special(key, value, req, dialect)
            if key == "max_completion_tokens" and "max_completion_tokens" in options:
                value = thaw(options["max_completion_tokens"])  # given as well: it wins
        else:
            value = thaw(value)
        body[key] = value
    if stream:
        body["stream"] = True
        body.setdefault("stream_options", {"include_usage": True})
    return body


_SPECIAL = frozenset(("tool_choice", "response_format", "max_tokens", "max_completion_tokens"))


def _special(key: str, value: Any, req: Request, dialect: Dialect) -> tuple[str, Any]:
    if key == "tool_choice":
        return key, encode_tool_choice(value)
    if key == "response_format" and dialect.official:
        return key, _strict_format(value)
    if key == "max_tokens" and dialect.official and takes_max_completion_tokens(req["model"]):
        return "max_completion_tokens", value
    return key, thaw(value)


def decode_usage(usage: Mapping[str, Any] | None) -> PMap[str, Any]:
    """Return Conduit's usage for OpenAI's (``cached_tokens`` become ``cache_read_tokens``).

    >>> decode_usage({"prompt_tokens": 16, "completion_tokens": 12, "total_tokens": 28,
    ...               "prompt_tokens_details": {"cached_tokens": 4}})["cache_read_tokens"]
    4
    >>> decode_usage({"prompt_tokens": 1, "completion_tokens": 9,
    ...               "completion_tokens_details": {"reasoning_tokens": 8}})["reasoning_tokens"]
    8
    """
    if not usage:
        return make_usage()
    usage = want(usage, Mapping, "usage")
    where = "usage.prompt_tokens_details"
    cached = count(
        want(usage.get("prompt_tokens_details") or {}, Mapping, where), where, "cached_tokens"
    )
    if cached is None:  # DeepSeek counts its context cache apart
        cached = count(usage, "usage", "prompt_cache_hit_tokens")
    where = "usage.completion_tokens_details"
    out = want(usage.get("completion_tokens_details") or {}, Mapping, where)
    return make_usage(
        count(usage, "usage", "prompt_tokens") or 0,
        count(usage, "usage", "completion_tokens") or 0,
        cache_read_tokens=cached,
        reasoning_tokens=count(out, where, "reasoning_tokens") or None,  # 0: not a thinker
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


#: Where OpenAI-compatible servers put a model's reasoning: DeepSeek (and xAI, vLLM)
#: ``reasoning_content``; Groq (``reasoning_format: parsed``), Ollama and OpenRouter
#: ``reasoning``; Ollama's native API ``thinking``.
REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")


def reasoning_text(msg: Mapping[str, Any], where: str) -> str | None:
    """Return the reasoning text a message or delta carries, or None.

    >>> reasoning_text({"content": "4", "reasoning_content": "2+2"}, "message")
    '2+2'
    """
    for field in REASONING_FIELDS:
        value = msg.get(field)
        if value:
            return str(_text(value, f"{where}.{field}"))
    return None


def content_parts(parts: Any, where: str) -> tuple[str, str]:
    """Return (text, reasoning text) of a content given as a list of parts, as Mistral sends
    it: ``text`` parts, and ``thinking`` parts holding text parts of their own (Magistral).

    >>> content_parts([{"type": "thinking", "thinking": [{"type": "text", "text": "Hm."}]},
    ...                {"type": "text", "text": "4"}], "content")
    ('4', 'Hm.')
    """
    text_: list[str] = []
    thought: list[str] = []
    for i, part in enumerate(_list(parts, where)):
        want(part, Mapping, f"{where}[{i}]")
        kind_ = part.get("type")
        if kind_ == "text":
            text_.append(_text(part.get("text"), f"{where}[{i}].text") or "")
        elif kind_ == "thinking":
            inner = part.get("thinking") or ()
            if isinstance(inner, str):
                thought.append(inner)
                continue
            for j, sub in enumerate(_list(inner, f"{where}[{i}].thinking")):
                want(sub, Mapping, f"{where}[{i}].thinking[{j}]")
                thought.append(_text(sub.get("text"), f"{where}[{i}].thinking[{j}].text") or "")
        else:
            raise ShapeError(f"{where}[{i}] is a {kind_!r} part, which Conduit cannot read yet")
    return "".join(text_), "".join(thought)


def reasoning_details(details: Any, where: str) -> list[dict[str, Any]]:
    """Return reasoning blocks for OpenRouter's ``reasoning_details`` (text with its signature,
    encrypted as redacted; summaries as text).

    >>> text, secret = reasoning_details([{"type": "reasoning.text", "text": "Hm.", "signature":
    ...     "s"}, {"type": "reasoning.encrypted", "data": "xyz"}], "details")
    >>> text, secret["redacted"]
    ({'type': 'reasoning', 'text': 'Hm.', 'signature': 's'}, 'xyz')
    """
    blocks: list[dict[str, Any]] = []
    for i, item in enumerate(_list(details, where)):
        want(item, Mapping, f"{where}[{i}]")
        kind_ = item.get("type")
        block: dict[str, Any] = {"type": "reasoning", "text": ""}
        if kind_ == "reasoning.encrypted":
            block["redacted"] = _text(item.get("data"), f"{where}[{i}].data") or ""
        else:
            text_ = item.get("text") if kind_ == "reasoning.text" else item.get("summary")
            block["text"] = _text(text_, f"{where}[{i}]") or ""
            if item.get("signature"):
                block["signature"] = _text(item["signature"], f"{where}[{i}].signature")
        if item.get("format"):  # which model family wrote it: goes back with it
            block["format"] = _text(item["format"], f"{where}[{i}].format")
        blocks.append(block)
    return blocks


def _answer_content(msg: Mapping[str, Any], where: str) -> Any:
    value = msg.get("content") or ""
    details = msg.get("reasoning_details")
    thought = None if details else reasoning_text(msg, where)
    if type(value) is not str:  # content parts (Mistral): text and thinking
        value, inner = content_parts(value, f"{where}.content")
        thought = (thought or "") + inner or None
    answer: list[Any] = [{"type": "text", "text": value}] if value else []
    if details:  # OpenRouter: the same reasoning, with signatures
        return [*reasoning_details(details, f"{where}.reasoning_details"), *answer]
    if thought is None:
        return value
    return [{"type": "reasoning", "text": thought}, *answer]


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
            if body.get("error") is not None
            else malformed(provider, "chat completion", body, "it has no choices")
        )
    choices = _list(choices, "choices")
    model = _text(body.get("model"), "model") or req["model"]
    rid = _text(body.get("id"), "id")
    usage = decode_usage(want(body.get("usage"), (Mapping, type(None)), "usage"))
    resp = _choice(choices[0], 0, model, rid, usage)
    if len(choices) > 1:  # n > 1: choice 0 is the response; the others ride along, in order
        others = [_choice(c, i, model, rid, None) for i, c in enumerate(choices) if i]
        resp = resp.set("choices", pvector(others))
    return req.set("response", resp)


@functools.lru_cache(maxsize=16)
def _paths(i: int) -> tuple[str, str, str, str]:
    """Where choice *i*, its message, its finish reason and its refusal are, for errors."""
    at = f"choices[{i}]"
    return at, f"{at}.message", f"{at}.finish_reason", f"{at}.message.refusal"


def _choice(choice: Any, i: int, model: str, rid: str | None, usage: Any) -> PMap[str, Any]:
    where, at_msg, at_finish, at_refusal = _paths(i)
    want(choice, Mapping, where)
    msg = want(choice.get("message") or {}, Mapping, at_msg)
    given = msg.get("tool_calls")
    calls = (
        [
            _decode_call(c, f"{at_msg}.tool_calls[{j}]")
            for j, c in enumerate(_list(given, f"{at_msg}.tool_calls"))
        ]
        if given
        else ()
    )
    finish = _text(choice.get("finish_reason"), at_finish)
    reason = STOP_REASONS.get(finish or "", "end_turn")
    if calls and reason == "end_turn":
        reason = "tool_use"  # some compatible servers say "stop" after a tool call
    refusal = _text(msg.get("refusal"), at_refusal) or None
    return make_response(
        _answer_content(msg, at_msg),
        model=model,
        id=rid,
        stop_reason="refusal" if refusal is not None else reason,
        usage=usage,
        tool_calls=calls,
        refusal=refusal,
    )


class StreamState(NamedTuple):
    """What a chat stream decoder remembers between events."""

    provider: str
    started: bool = False
    open_calls: tuple[int, ...] = ()
    stop_reason: str | None = None
    usage: PMap[str, Any] | None = None
    done: bool = False
    had_calls: bool = False
    refused: bool = False
    #: n > 1: each other choice's own state and events, by index (they never reach choice 0's)
    others: PMap[int, tuple[StreamState, PVector[Event]]] | None = None


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
    Only choice 0 makes events; with ``n > 1`` the other choices are gathered apart and come
    as responses in the ``message_end`` event's ``choices``.

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
            # fast path: a plain text delta of choice 0 (any other shape: _chunk_step checks it)
            choices = chunk.get("choices") if type(chunk) is dict else None
            choice: Any = choices[0] if type(choices) is list and len(choices) == 1 else None
            delta: Any = choice.get("delta") if type(choice) is dict else None
            plain = state.started and type(delta) is dict and delta and "usage" not in chunk
            if plain and not choice.get("finish_reason") and not choice.get("index"):
                piece = delta.get("content")
                if type(piece) is str and piece and (len(delta) == 1 or _plain(delta)):
                    out.append(Event(type="content_delta", text=piece))
                    continue
            state, events = _chunk_step(state, chunk)
            out += events
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed(state.provider, "stream event", chunk, exc) from exc
    return state, out


def _plain(delta: Mapping[str, Any]) -> bool:
    """True when a delta that has text carries nothing else (no tool calls, no reasoning)."""
    return (
        "tool_calls" not in delta
        and not delta.get("reasoning_details")
        and not any(delta.get(f) for f in REASONING_FIELDS)
    )


def _chunk_step(state: StreamState, chunk: Any) -> tuple[StreamState, list[Event]]:
    want(chunk, Mapping, "the event")
    if chunk.get("error") is not None:  # some servers send "error": null on every chunk
        raise error_from_response(state.provider, None, {}, chunk)
    events: list[Event] = []
    model, id_ = _text(chunk.get("model"), "model"), _text(chunk.get("id"), "id")
    if not state.started:
        events.append(event("message_start", model=model, id=id_))
        state = state._replace(started=True)
    usage = chunk.get("usage") or (want(chunk.get("x_groq") or {}, Mapping, "x_groq")).get("usage")
    if usage:
        state = state._replace(usage=decode_usage(want(usage, Mapping, "usage")))
    for i, choice in enumerate(_list(chunk.get("choices") or (), "choices")):
        where = f"choices[{i}]"
        want(choice, Mapping, where)
        index = choice.get("index", i)
        if type(index) is not int:
            raise ShapeError(f"{where}.index is {kind(index)}, not an integer")
        if index == 0:
            state, more = _choice_step(state, choice, where)
            events += more
            continue
        others = state.others or pmap()
        sub, seen = others[index] if index in others else _other_start(state, model, id_)
        sub, more = _choice_step(sub, choice, where)
        state = state._replace(others=others.set(index, (sub, seen.extend(more))))
    return state, events


def _other_start(state: StreamState, model: str | None, id_: str | None) -> Any:
    return StreamState(state.provider, started=True), pvector(
        [event("message_start", model=model, id=id_)]
    )


def _choice_step(state: StreamState, choice: Any, where: str) -> tuple[StreamState, list[Event]]:
    events: list[Event] = []
    delta = want(choice.get("delta") or {}, Mapping, f"{where}.delta")
    details = delta.get("reasoning_details")
    thought = None if details else reasoning_text(delta, f"{where}.delta")
    if details:  # OpenRouter: the reasoning with its signatures, piece by piece
        for block in reasoning_details(details, f"{where}.delta.reasoning_details"):
            del block["type"]
            events.append(event("reasoning_delta", **block))
    piece = delta.get("content")
    if piece and type(piece) is not str:  # content parts (Mistral): text and thinking
        piece, inner = content_parts(piece, f"{where}.delta.content")
        thought = (thought or "") + inner
    else:
        piece = _text(piece, f"{where}.delta.content")
    if thought:
        events.append(event("reasoning_delta", text=thought))
    if piece:
        events.append(event("content_delta", text=piece))
    refusal = _text(delta.get("refusal"), f"{where}.delta.refusal")
    if refusal:
        events.append(event("refusal_delta", text=refusal))
        state = state._replace(refused=True)
    where = f"{where}.delta.tool_calls"
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
    reason = _text(choice.get("finish_reason"), f"{where}.finish_reason")
    if reason:
        state, ends = _close(state)
        events.extend(ends)
        mapped = STOP_REASONS.get(reason, "end_turn")
        if mapped == "end_turn" and state.had_calls:
            mapped = "tool_use"  # Ollama ends a streamed tool call with "stop"
        state = state._replace(stop_reason="refusal" if state.refused else mapped)
    return state, events


def _ending(state: StreamState) -> list[Event]:
    state, ends = _close(state)
    stop = state.stop_reason or ("refusal" if state.refused else "end_turn")
    return [*ends, event("message_end", stop_reason=stop, usage=state.usage or make_usage())]


def stream_end(state: StreamState) -> list[Event]:
    """Return the closing events of a finished stream; raise if it was cut short."""
    from conduit.errors import ConnectionError

    if not state.done and state.stop_reason is None:
        raise ConnectionError(
            f"{state.provider} stream ended before it was complete (no finish_reason, no [DONE]); "
            "the connection was probably cut: retry the call",
            data={"provider": state.provider},
        )
    events = _ending(state)
    if state.others:
        choices = [
            collect([*seen, *_ending(sub)]) for _, (sub, seen) in sorted(state.others.items())
        ]
        events[-1] = Event({**events[-1], "choices": pvector(choices)})
    return events


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


def decode_embeddings(req: Request, body: Mapping[str, Any], provider: str = "openai") -> Request:
    """Return *req* with the response of an embeddings *body* (base64 or float rows, any order).

    >>> import conduit as c
    >>> ctx = decode_embeddings(c.embedding_request("m", ["a"]), {"model": "m", "data": [
    ...     {"index": 0, "embedding": [1.0, 0.0]}], "usage": {"prompt_tokens": 1}})
    >>> c.vectors(ctx).tolist(), ctx["response"]["usage"]["input_tokens"]
    ([[1.0, 0.0]], 1)
    """
    try:
        return _decode_embeddings(req, body, provider)
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed(provider, "embeddings answer", body, exc) from exc


def _decode_embeddings(req: Request, body: Any, provider: str) -> Request:
    want(body, Mapping, "the answer")
    if "data" not in body:
        raise (
            error_from_response(provider, None, {}, body)
            if body.get("error") is not None
            else malformed(provider, "embeddings answer", body, "it has no data")
        )
    rows = [want(r, Mapping, f"data[{i}]") for i, r in enumerate(_list(body["data"], "data"))]
    for i, r in enumerate(rows):
        want(r.get("index", 0), int, f"data[{i}].index")
    rows.sort(key=lambda d: d.get("index", 0))
    vectors = [_row(r.get("embedding"), f"data[{i}].embedding") for i, r in enumerate(rows)]
    if len({type(v) for v in vectors}) > 1:
        raise ShapeError("data mixes base64 and number rows")
    one_width(map(_width, vectors), "data")
    one_per_text(len(vectors), req)
    usage = want(body.get("usage") or {}, Mapping, "usage")
    resp = embedding_response(
        _text(body.get("model"), "model") or req["model"],
        vectors,
        make_usage(count(usage, "usage", "prompt_tokens") or 0, 0),
    )
    return req.set("response", resp)


def _row(value: Any, where: str) -> Any:
    """One embedding: base64 text of float32s, or a list of finite numbers."""
    if type(value) is str:
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:  # binascii.Error, or text that is not ASCII
            raise ShapeError(f"{where} is not base64") from None
        if len(raw) % 4:
            raise ShapeError(f"{where} is not base64 of float32 numbers")
        return value
    return number_row(value, where)


def _width(row: Any) -> int:
    """The number of floats in a row (base64 text of float32s, or a list)."""
    if type(row) is not str:
        return len(row)
    return (len(row) // 4 * 3 - row[-2:].count("=")) // 4  # checked base64: its bytes, counted


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
        encode=encoder(name),
        decode=decode_chat,
        stream_start=stream_start,
        stream_steps=stream_steps,
        stream_end=stream_end,
        auth=_http.bearer,
        embed_path="/embeddings",
        encode_embed=encode_embeddings,
        decode_embed=partial(decode_embeddings, provider=name),
    )


def encoder(provider: str) -> Callable[[Request, bool], dict[str, Any]]:
    """Return ``encode_chat`` for *provider* (its dialect: reasoning replay, what it accepts).

    >>> import conduit as c
    >>> pdf = {"type": "document", "source": {"type": "base64", "data": "JVBE",
    ...                                       "media_type": "application/pdf"}}
    >>> encoder("groq")(c.request("m", [c.user("x", pdf)]), False)
    Traceback (most recent call last):
    conduit.errors.ValidationError: groq cannot take a 'document' block (PDF) in chat messages; \
send it to a provider that can (openai, azure, anthropic, gemini, bedrock), or pass its text \
instead
    """

    def encode(req: Request, stream: bool = False) -> dict[str, Any]:
        return encode_chat(req, stream, provider)

    encode.__name__ = encode.__qualname__ = f"encode_chat_{provider}"
    return encode


def from_registry(name: str) -> _http.Provider:
    """Return the OpenAI-compatible service the registry describes under *name*."""
    info = lookup(name)
    spec = compatible(info.name, info.base_url or "", info.env_key, info.base_url_env)
    return spec if info.embeddings else attrs.evolve(spec, embed_path=None)


OPENAI = from_registry("openai")
WIRE = _http.wire(OPENAI)
