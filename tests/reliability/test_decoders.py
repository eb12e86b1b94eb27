"""Fuzzing every decoder, the SSE parser and the AWS event-stream framing.

Every registered provider's chat decoder, stream decoder (through the decoder its wire uses:
``_http.decoder(spec, req)``, the spec's framing included) and embeddings decoder is fed
arbitrary JSON and mutated real fixtures (``tests/fixtures/providers``: fields dropped,
replaced or retyped). Each either decodes to a well-formed response or raises a Conduit error
(``ProviderError``; ``ConnectionError`` for a stream cut short) naming the provider, with no
bare AttributeError/KeyError/TypeError/ValueError/IndexError behind it: the codec saw what was
wrong and said so, rather than its guard catching a crash. The valid fixtures still decode;
the SSE parser is linear in the bytes it reads and any chunking of a stream parses the same;
the event-stream framing turns any bytes into messages or a ``ConnectionError``, and any
chunking of a valid frame sequence decodes the same.
"""

from __future__ import annotations

import base64
import importlib
import itertools
import json
import struct
import time
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import conduit as c
from conduit._drive import Done
from conduit.errors import ShapeError
from conduit.providers import (
    _http,
    anthropic,
    azure,
    bedrock,
    deepseek,
    fireworks,
    gemini,
    grok,
    groq,
    mistral,
    ollama,
    openai,
    openrouter,
    responses,
    together,
)
from conduit.providers._eventstream import EventStreamDecoder, Message, encode_message, split
from conduit.providers._wire import Decoder
from conduit.registry import lookup, provider_names
from conduit.response import STOP_REASONS
from conduit.sse import SSE, SSEDecoder, feed, flush, iter_sse

FIXTURES = Path(__file__).parent.parent / "fixtures" / "providers"
REQ = c.request("m", "hi")
EMBED = c.embedding_request("m", ["a", "b"])

#: The wire description of every registered provider (the mock aside: it decodes nothing).
SPECS: dict[str, _http.Provider] = {
    "openai": openai.OPENAI,
    "anthropic": anthropic.ANTHROPIC,
    "groq": groq.GROQ,
    "grok": grok.GROK,
    "ollama": ollama.OLLAMA,
    "responses": responses.RESPONSES,
    "azure": azure.AZURE,
    "gemini": gemini.GEMINI,
    "bedrock": bedrock.BEDROCK,
    "mistral": mistral.MISTRAL,
    "deepseek": deepseek.DEEPSEEK,
    "openrouter": openrouter.OPENROUTER,
    "together": together.TOGETHER,
    "fireworks": fireworks.FIREWORKS,
}

KEYS = [
    # OpenAI chat completions and its compatible servers
    "choices", "message", "delta", "content", "tool_calls", "function", "name", "arguments",
    "index", "id", "model", "usage", "finish_reason", "type", "text", "refusal", "data",
    "embedding", "error", "prompt_tokens", "completion_tokens", "prompt_tokens_details",
    "completion_tokens_details", "cached_tokens", "reasoning_tokens", "prompt_cache_hit_tokens",
    "x_groq", "reasoning_content", "reasoning", "thinking", "reasoning_details", "summary",
    "signature",
    # Anthropic
    "input", "stop_reason", "content_block", "partial_json", "input_tokens", "output_tokens",
    "stop_details",
    # Ollama
    "embeddings", "done_reason", "prompt_eval_count", "eval_count",
    # Responses
    "output", "output_text", "item", "response", "status", "incomplete_details", "reason",
    "call_id", "output_index", "summary_index", "input_tokens_details", "output_tokens_details",
    "encrypted_content", "code",
    # Gemini
    "candidates", "parts", "functionCall", "args", "thought", "thoughtSignature",
    "finishReason", "usageMetadata", "promptTokenCount", "candidatesTokenCount",
    "thoughtsTokenCount", "toolUsePromptTokenCount", "cachedContentTokenCount",
    "promptFeedback", "blockReason", "modelVersion", "responseId", "values",
    # Bedrock
    "toolUse", "toolUseId", "reasoningContent", "reasoningText", "redactedContent",
    "stopReason", "metrics", "latencyMs", "inputTokens", "outputTokens",
    "cacheReadInputTokens", "cacheWriteInputTokens", "contentBlockIndex", "contentBlockDelta",
    "start",
]  # fmt: skip
WORDS = [
    "text", "tool_use", "text_delta", "input_json_delta", "thinking_delta", "signature_delta",
    "stop", "tool_calls", "length", "message", "output_text", "function_call", "reasoning",
    "refusal", "thinking", "reasoning.text", "reasoning.encrypted", "reasoning.summary",
    "response.created", "response.output_text.delta", "response.function_call_arguments.delta",
    "response.output_item.added", "response.output_item.done", "response.completed",
    "response.incomplete", "response.failed", "response.reasoning_summary_text.delta",
    "response.reasoning_summary_part.added", "response.refusal.delta", "error", "incomplete",
    "failed", "STOP", "MAX_TOKENS", "SAFETY", "end_turn", "max_tokens", "[DONE]", "",
]  # fmt: skip
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
values = st.recursive(
    scalars | st.sampled_from(WORDS),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


def _module(name: str) -> Any:
    return importlib.import_module(lookup(name).codec)


def test_every_registered_provider_is_fuzzed():
    """A provider added to the registry fails here until its decoders are fuzzed below."""
    assert set(SPECS) == set(provider_names()) - {"mock"}
    for name, spec in SPECS.items():
        wire = _module(name).WIRE
        assert spec.name == name and wire.decoder.args == (spec,), name  # the wire's own spec
        assert wire.call.args == (spec,), name
    assert set(EMBEDS) == {n for n in SPECS if lookup(n).embeddings}
    assert all(SPECS[n].decode_embed is _module(n).WIRE.embed.args[0].decode_embed for n in EMBEDS)


# --- what a decoder may give ----------------------------------------------------------------


def _well_formed(resp: Mapping[str, Any]) -> None:
    assert isinstance(resp["content"], str | tuple) or type(resp["content"]).__name__ == "PVector"
    if not isinstance(resp["content"], str):
        for block in resp["content"]:
            assert block["type"] in ("text", "reasoning") and isinstance(block["text"], str)
            for field in ("signature", "redacted"):
                assert field not in block or isinstance(block[field], str), block
    assert isinstance(resp["model"], str) and (resp["id"] is None or isinstance(resp["id"], str))
    assert resp["stop_reason"] in STOP_REASONS
    assert all(type(v) is int for v in resp["usage"].values())
    assert resp.get("refusal") is None or isinstance(resp["refusal"], str)
    for call in resp["tool_calls"]:
        assert isinstance(call["id"], str) and isinstance(call["name"], str) and call["name"]
        assert isinstance(call["arguments"], Mapping)


def _well_formed_events(events: list[Any]) -> None:
    for e in events:
        optional = e["type"] == "message_start"  # model and id may be unknown (None)
        for field in ("text", "arguments_delta", "id", "name", "model", "signature", "redacted"):
            ok = field not in e or isinstance(e[field], str) or (optional and e[field] is None)
            assert ok, e
        assert "index" not in e or type(e["index"]) is int, e
        if e["type"] == "message_end":
            assert e["stop_reason"] in STOP_REASONS, e
            assert all(type(v) is int for v in e["usage"].values()), e


#: What a decoder may have run into and said so: its own shape check, or a Conduit error.
NAMED = (ShapeError, c.ConduitError)


def _said(err: BaseException, provider: str, kinds: Any = c.ProviderError) -> None:
    """*err* is a Conduit error of *kinds* naming *provider*, and no crash is behind it."""
    if not isinstance(err, kinds):
        raise err
    found = err.data.get("provider")
    assert found == provider, (found, provider, err)
    cause = err.__cause__
    while cause is not None:
        assert isinstance(cause, NAMED), f"{type(cause).__name__}: {cause} behind: {err}"
        cause = cause.__cause__


# --- chat answers ---------------------------------------------------------------------------


def _decode_with(spec: _http.Provider) -> Callable[[Any], Any]:
    return lambda body: spec.decode(REQ, body, spec.name)  # as call_flow calls it


CHATS: dict[str, Callable[[Any], Any]] = {name: _decode_with(s) for name, s in SPECS.items()}
CHATS["ollama-native"] = lambda body: ollama.decode_native_chat(REQ, body)
EMBEDS: dict[str, _http.Provider] = {n: s for n, s in SPECS.items() if s.embed_url or s.embed_path}


def _provider(name: str) -> str:
    return name.partition("-")[0]


def _chat(name: str, body: Any) -> None:
    try:
        ctx = CHATS[name](body)
    except c.ConduitError as err:
        _said(err, _provider(name))
        return
    _well_formed(ctx["response"])


def _embed(name: str, body: Any, req: Any = EMBED) -> None:
    spec = EMBEDS[name]
    assert spec.decode_embed is not None
    try:
        ctx = spec.decode_embed(req, body)
    except c.ConduitError as err:
        _said(err, name)
        return
    assert isinstance(ctx["response"]["model"], str)
    assert all(type(v) is int for v in ctx["response"]["usage"].values())
    matrix = c.vectors(ctx)
    assert matrix.dtype.name == "float32"
    assert matrix.shape[0] == len(ctx["response"]["embeddings"])


# --- streams, framed as each wire frames them -------------------------------------------------

BEDROCK_EVENTS = [
    "messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop",
    "metadata",
]  # fmt: skip
BEDROCK_EXCEPTIONS = [*bedrock.EXCEPTION_STATUS, "accessDeniedException", ""]


class Raw(str):
    """A stream item's data sent as it is, not as JSON (``[DONE]``, a cut-off event)."""


Item = tuple[Mapping[str, Any], Any]  # (SSE event name or event-stream headers, body)


def _payload(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    return (str(body) if isinstance(body, Raw) else json.dumps(body)).encode()


def _frames(name: str, items: list[Item]) -> bytes:
    """The bytes *name*'s server sends for *items*: SSE, or AWS event-stream messages."""
    if SPECS[name].framing is not None:
        return b"".join(_frame(_raw_headers(h), _payload(b)) for h, b in items)
    out = []
    for headers, body in items:
        named = headers.get("event", "message")
        head = "" if named == "message" else f"event: {named}\n"
        out.append(f"{head}data: {_payload(body).decode()}\n\n")
    return "".join(out).encode()


def _stream(name: str, raw: bytes | list[bytes], kinds: Any = None) -> list[Any]:
    """Decode *raw* (bytes, or their pieces) through *name*'s wire decoder; return its events.

    A failure must be a Conduit error naming the provider; the events before it (or all of
    them, and the context they build) must be well-formed.
    """
    decoder = _module(name).WIRE.decoder(REQ)
    events: list[Any] = []
    try:
        for piece in [raw] if isinstance(raw, bytes) else raw:
            events += decoder.feed(piece)
        events += decoder.finish()
    except c.ConduitError as err:  # ConnectionError: the stream never ended, or was garbled
        _said(err, name, (c.ProviderError, c.ConnectionError) if kinds is None else kinds)
        _well_formed_events(events)
        return events
    _well_formed_events(events[:-1])
    assert isinstance(events[-1], Done)
    _well_formed(events[-1].ctx["response"])
    return events


def _items(name: str) -> Any:
    """A strategy of stream items for *name*: the framing's headers, and any JSON."""
    if SPECS[name].framing is None:
        return st.tuples(st.just({}), values | st.sampled_from([Raw("[DONE]"), Raw("{")]))

    def header(*words: str) -> Any:  # mostly one of *words*, else any text or any typed value
        return st.sampled_from(words) | st.text(max_size=6) | typed_headers

    exception = st.fixed_dictionaries(
        {":message-type": header("exception"), ":exception-type": header(*BEDROCK_EXCEPTIONS)}
    )
    error = st.fixed_dictionaries(
        {":message-type": header("error"), ":error-code": header("InternalFailure"),
         ":error-message": header("boom")}
    )  # fmt: skip
    event = st.fixed_dictionaries(
        {":event-type": header(*BEDROCK_EVENTS)},
        optional={":message-type": header("event"), ":content-type": header("application/json")},
    )
    bodies = values | st.sampled_from([Raw(""), Raw("{"), b"\xff{}", b"[1]"])
    return st.tuples(event | exception | error, bodies)


# --- any JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CHATS))
@given(body=values)
def test_any_json_is_a_response_or_a_provider_error(name, body):
    _chat(name, body)


@pytest.mark.parametrize("name", list(EMBEDS))
@given(body=values)
def test_any_json_is_embeddings_or_a_provider_error(name, body):
    _embed(name, body)


@pytest.mark.parametrize("name", list(SPECS))
@given(data=st.data())
def test_any_json_events_are_events_or_a_provider_error(name, data):
    items = data.draw(st.lists(_items(name), min_size=1, max_size=4))
    _stream(name, _frames(name, items))


# --- mutated real fixtures ------------------------------------------------------------------


def _json(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text())


def _glob(*patterns: str) -> list[str]:
    found = sorted({str(p.relative_to(FIXTURES)) for g in patterns for p in FIXTURES.glob(g)})
    assert found, patterns
    return found


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(value: Any, path: tuple[Any, ...], new: Any, delete: bool) -> Any:
    if not path:
        return new
    head, *rest = path
    copy = json.loads(json.dumps(value))
    if delete and not rest:
        del copy[head]
    else:
        copy[head] = _mutate(copy[head], tuple(rest), new, delete)
    return copy


OPENAI_CHATS = _glob("openai/chat_*.json")
OPENAI_STREAMS = _glob("openai/stream_*.sse")
CHAT_FIXTURES = {
    "openai": OPENAI_CHATS,
    "anthropic": _glob("anthropic/message_*.json"),
    "groq": _glob("groq/chat_*.json"),
    "grok": OPENAI_CHATS,  # no recorded xAI answer: its wire is OpenAI's
    "ollama": _glob("ollama/openai_chat_*.json"),
    "ollama-native": _glob("ollama/native_chat*.json"),
    "responses": _glob("openai_responses/response_*.json", "azure/responses_*.json"),
    "azure": _glob("azure/chat_*.json"),
    "gemini": _glob("gemini/generate_content_*.json", "gemini/gemini3_*.json",
                    "gemini/response_*.json", "gemini/safety_*.json"),
    "bedrock": _glob("bedrock/converse_*.json"),
    "mistral": _glob("mistral/chat_*.json"),
    "deepseek": _glob("deepseek/chat_*.json"),
    "openrouter": _glob("openrouter/chat_*.json"),
    "together": OPENAI_CHATS,
    "fireworks": OPENAI_CHATS,
}  # fmt: skip
STREAM_FIXTURES = {
    "openai": OPENAI_STREAMS,
    "anthropic": _glob("anthropic/stream_*.sse"),
    "groq": _glob("groq/stream_*.sse"),
    "grok": _glob("xai/stream_*.sse"),
    "ollama": _glob("ollama/openai_stream_*.sse"),
    "responses": _glob("openai_responses/stream_*"),
    "azure": OPENAI_STREAMS,
    "gemini": _glob("gemini/stream_*", "gemini/*_stream.chunks.txt"),
    "bedrock": _glob("bedrock/*.eventstream.b64"),
    "mistral": _glob("mistral/stream_*"),
    "deepseek": _glob("deepseek/stream_*"),
    "openrouter": _glob("openrouter/stream_*.sse"),
    "together": OPENAI_STREAMS,
    "fireworks": OPENAI_STREAMS,
}  # fmt: skip
EMBED_FIXTURES = {
    "openai": _glob("openai/embeddings_*.json"),
    "ollama": ["ollama/native_embed.json"],
    "azure": _glob("openai/embeddings_*.json"),
    "gemini": ["gemini/batch_embed_contents.json"],
    "mistral": _glob("openai/embeddings_*.json"),
}


def _stream_items(name: str, path: str) -> list[Item]:
    """A recorded stream as items: ``.sse`` bodies, ``.chunks.txt`` lines (one chunk each),
    a ``.json`` array of chunks, or base64 of AWS event-stream bytes."""
    if path.endswith(".eventstream.b64"):
        messages, rest = split(base64.b64decode((FIXTURES / path).read_bytes()))
        assert not rest
        return [(m.headers, json.loads(m.payload)) for m in messages]
    if path.endswith(".sse"):
        sses = iter_sse([(FIXTURES / path).read_bytes()])
        return [({"event": e.event}, Raw(e.data) if e.data == "[DONE]" else json.loads(e.data))
                for e in sses]  # fmt: skip
    if path.endswith(".json"):
        return [({}, chunk) for chunk in _json(path)]
    lines = [json.loads(line) for line in (FIXTURES / path).read_text().splitlines() if line]
    done = [({}, Raw("[DONE]"))] if SPECS[name].stream_steps is openai.stream_steps else []
    return [*[({}, line) for line in lines], *done]


@st.composite
def mutations(draw: Any, fixture: Any) -> Any:
    """*fixture* with one field (at any depth) dropped, or replaced by any JSON (retyped)."""
    paths = _paths(fixture)
    path = draw(st.sampled_from(paths))
    return _mutate(fixture, path, draw(values), draw(st.booleans()) and bool(path))


@st.composite
def mutated_streams(draw: Any, name: str, items: list[Item]) -> list[Item]:
    """*items* with one body mutated, or one item dropped or sent under other headers."""
    items = list(items)
    i = draw(st.integers(0, len(items) - 1))
    headers, body = items[i]
    how = draw(st.sampled_from(["mutate"] * 8 + ["drop", "retag"]))
    if how == "drop" or isinstance(body, Raw):
        del items[i]
    elif how == "retag":
        items[i] = (draw(_items(name))[0], body)
    else:
        items[i] = (headers, draw(mutations(body)))
    return items


@pytest.mark.parametrize("name", list(CHAT_FIXTURES))
@given(data=st.data())
def test_mutated_fixtures_decode_or_raise_a_provider_error(name, data):
    fixture = _json(data.draw(st.sampled_from(CHAT_FIXTURES[name])))
    _chat(name, data.draw(mutations(fixture)))


@pytest.mark.parametrize("name", list(STREAM_FIXTURES))
@given(data=st.data())
def test_mutated_stream_fixtures_decode_or_raise_a_provider_error(name, data):
    items = _stream_items(name, data.draw(st.sampled_from(STREAM_FIXTURES[name])))
    _stream(name, _frames(name, data.draw(mutated_streams(name, items))))


def _rows(body: Any) -> int:
    return len(body.get("data") or body.get("embeddings") or ())


@pytest.mark.parametrize("name", list(EMBED_FIXTURES))
@given(data=st.data())
def test_mutated_embedding_fixtures_decode_or_raise_a_provider_error(name, data):
    fixture = _json(data.draw(st.sampled_from(EMBED_FIXTURES[name])))
    req = c.embedding_request("m", ["t"] * _rows(fixture))
    _embed(name, data.draw(mutations(fixture)), req)


def test_the_valid_fixtures_still_decode():
    for name, paths in CHAT_FIXTURES.items():
        for path in paths:
            _well_formed(CHATS[name](_json(path))["response"])
    for name, paths in STREAM_FIXTURES.items():
        for path in paths:
            raw = _frames(name, _stream_items(name, path))
            if "error" in path:  # a recorded error event: the stream ends in its error
                with pytest.raises(c.ProviderError):
                    _stream(name, raw, kinds=())
                continue
            events = _stream(name, raw, kinds=())
            assert events[-1].ctx["response"]["stop_reason"], path
    for name, paths in EMBED_FIXTURES.items():
        for path in paths:
            fixture = _json(path)
            req = c.embedding_request("m", ["t"] * _rows(fixture))
            ctx = EMBEDS[name].decode_embed(req, fixture)  # type: ignore[misc]
            assert c.vectors(ctx).shape[0] == _rows(fixture) > 0, path


def test_a_stream_block_without_its_index_is_named():
    bad = {"type": "content_block_start", "content_block": {"type": "tool_use", "id": "t"}}
    with pytest.raises(c.ProviderError, match="content_block_start event has no index"):
        anthropic.stream_step(anthropic.stream_start(), SSE("message", json.dumps(bad)))


def test_the_decoder_guard_turns_a_codec_crash_into_a_provider_error():
    def crash(state: Any, items: Any) -> Any:
        raise KeyError("index")

    guard = _http.decoder(openai.OPENAI, REQ).guard
    decoder = Decoder(REQ, None, crash, lambda s: [], sse=True, guard=guard)
    assert decoder.feed(b"data: {}\n\n") == []
    with pytest.raises(c.ProviderError, match="required field 'index' is missing") as caught:
        decoder.finish()
    with pytest.raises(AssertionError, match="KeyError"):  # and the fuzzing would report it
        _said(caught.value, "openai")


def test_the_deadline_is_checked_on_a_keep_alive_that_completes_no_event():
    late = REQ.set("conduit/deadline", time.monotonic() - 0.001)
    decoder = _http.decoder(openai.OPENAI, late)
    with pytest.raises(c.TimeoutError):
        decoder.feed(b": keep-alive\n\n")


# --- the AWS event-stream framing (Bedrock) ---------------------------------------------------


def _header(name: bytes, kind: int, value: bytes) -> bytes:
    return bytes([len(name)]) + name + bytes([kind]) + value


#: (header value type, its encoded value, what it decodes to), for every type the format has.
typed_headers = st.one_of(
    st.booleans().map(lambda b: (0 if b else 1, b"", b)),
    st.integers(-(2**7), 2**7 - 1).map(lambda n: (2, struct.pack(">b", n), n)),
    st.integers(-(2**15), 2**15 - 1).map(lambda n: (3, struct.pack(">h", n), n)),
    st.integers(-(2**31), 2**31 - 1).map(lambda n: (4, struct.pack(">i", n), n)),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: (5, struct.pack(">q", n), n)),
    st.binary(max_size=8).map(lambda b: (6, struct.pack(">H", len(b)) + b, b)),
    st.text(max_size=8).map(lambda t: (7, struct.pack(">H", len(t.encode())) + t.encode(), t)),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: (8, struct.pack(">q", n), n)),
    st.uuids().map(lambda u: (9, u.bytes, u)),
)
header_maps = st.dictionaries(st.text(min_size=1, max_size=6), typed_headers, max_size=4)


def _frame(headers: bytes, payload: bytes, total: int | None = None, size: int | None = None,
           crc: int | None = None) -> bytes:  # fmt: skip
    """One event-stream message; *total*, *size* and *crc* override what the format says."""
    total = 16 + len(headers) + len(payload) if total is None else total
    prelude = struct.pack(">II", total, len(headers) if size is None else size)
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return body + struct.pack(">I", zlib.crc32(body) if crc is None else crc)


def _raw_headers(headers: Mapping[str, Any]) -> bytes:
    """Headers as the format writes them: text as type 7, or (type, encoded value, value)."""
    return b"".join(
        _header(k.encode(), 7, struct.pack(">H", len(v.encode())) + v.encode())
        if isinstance(v, str)
        else _header(k.encode(), v[0], v[1])
        for k, v in headers.items()
    )


@st.composite
def crafted_frames(draw: Any) -> bytes:
    """A message whose prelude CRC holds (so the parser reads on) but whose lengths, headers
    and message CRC may be anything."""
    headers = draw(st.binary(max_size=24) | header_maps.map(_raw_headers))
    if draw(st.booleans()):  # a header's length or value type cut or garbled
        headers = headers[: draw(st.integers(0, len(headers)))] + draw(st.binary(max_size=3))
    payload = draw(st.binary(max_size=24))
    total = draw(st.none() | st.integers(0, 2**32 - 1) | st.integers(0, 64))
    size = draw(st.none() | st.integers(0, 2**32 - 1) | st.integers(0, 64))
    crc = draw(st.none() | st.integers(0, 2**32 - 1))
    return _frame(headers, payload, total, size, crc)


def _pieces(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(cuts), len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(points)]


def _framed(pieces: list[bytes]) -> list[Message]:
    decoder = EventStreamDecoder("bedrock")
    return [m for p in pieces for m in decoder.feed(p)] + decoder.flush()


@given(
    raw=st.binary(max_size=80) | st.lists(crafted_frames(), min_size=1, max_size=3).map(b"".join),
    data=st.data(),
)
def test_any_bytes_are_messages_or_a_connection_error(raw, data):
    pieces = _pieces(raw, data.draw(st.lists(st.integers(0, len(raw)), max_size=6)))
    try:
        messages = _framed(pieces)
    except c.ConduitError as err:
        _said(err, "bedrock", c.ConnectionError)
    else:
        for m in messages:
            assert all(isinstance(k, str) for k in m.headers) and isinstance(m.payload, bytes)
    _stream("bedrock", pieces)  # the wire's decoder: events, or a Conduit error naming bedrock


@given(headers=header_maps, payload=st.binary(max_size=16))
def test_every_header_value_type_decodes_to_what_was_sent(headers, payload):
    messages, rest = split(_frame(_raw_headers(headers), payload))
    assert rest == b"" and messages == [Message({k: v[2] for k, v in headers.items()}, payload)]
    text = {k: v[2] for k, v in headers.items() if v[0] == 7}  # this file's encoder is the format's
    assert _frame(_raw_headers(text), payload) == encode_message(text, payload)


BEDROCK_STREAMS = [
    base64.b64decode((FIXTURES / p).read_bytes()) for p in STREAM_FIXTURES["bedrock"]
]


@given(data=st.data())
def test_a_corrupted_real_frame_is_a_connection_error(data):
    raw = data.draw(st.sampled_from(BEDROCK_STREAMS))
    at = data.draw(st.integers(0, len(raw) - 1))
    how = data.draw(st.sampled_from(["flip", "insert", "truncate"]))
    if how == "flip":  # one byte changed: a CRC catches it, wherever it is
        bad = raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1 :]
    elif how == "insert":
        bad = raw[:at] + data.draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    else:
        bad = raw[:at]
    boundaries = [0]
    while boundaries[-1] < len(raw):  # where each message starts: after the one before it
        boundaries.append(boundaries[-1] + struct.unpack_from(">I", raw, boundaries[-1])[0])
    pieces = _pieces(bad, data.draw(st.lists(st.integers(0, len(bad)), max_size=4)))
    if how == "truncate" and at in boundaries:  # cut between messages: the ones before it
        assert _framed(pieces) == split(raw[:at])[0]
    else:
        with pytest.raises(c.ConnectionError) as caught:
            _framed(pieces)
        _said(caught.value, "bedrock", c.ConnectionError)
    events = _stream("bedrock", pieces)
    if how != "truncate":
        assert not events or not isinstance(events[-1], Done), "a corrupted stream was accepted"


@given(
    frames=st.lists(st.tuples(header_maps, st.binary(max_size=40)), max_size=4),
    fixture=st.sampled_from(BEDROCK_STREAMS),
    data=st.data(),
)
def test_any_chunking_of_frames_decodes_the_same(frames, fixture, data):
    """The framing law: however the bytes are cut, the messages (and the wire's events and
    response) are those of the whole."""
    made = b"".join(_frame(_raw_headers(h), p) for h, p in frames)
    sent = [Message({k: v[2] for k, v in h.items()}, p) for h, p in frames]
    cut = {}
    for raw, expected in ((made, sent), (fixture, split(fixture)[0])):
        cut[raw] = _pieces(raw, data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
        assert _framed([raw]) == _framed(cut[raw]) == expected
    whole, pieces = (
        _stream("bedrock", [fixture], kinds=()),
        _stream("bedrock", cut[fixture], kinds=()),
    )
    assert whole[:-1] == pieces[:-1] and len(whole) > 2
    assert whole[-1].ctx["response"] == pieces[-1].ctx["response"]


# --- the SSE parser -------------------------------------------------------------------------


def _one_event(size: int, chunk: int) -> float:
    payload = b"data: " + b"x" * size + b"\n\n"
    pieces = [payload[i : i + chunk] for i in range(0, len(payload), chunk)]
    best = float("inf")
    for _ in range(5):  # the best of five: a loaded machine slows some runs, never speeds one
        start = time.perf_counter()
        events = list(iter_sse(pieces))
        best = min(best, time.perf_counter() - start)
        assert len(events) == 1 and len(events[0].data) == size
    return best


def test_the_sse_parser_is_linear_in_the_bytes_it_reads():
    """16 MiB in 64 KiB chunks took 2.2 s with a quadratic parser, 9x the time of 4 MiB; the
    linear one takes about 0.05 s, 4x. The time bound tells them apart with a wide margin; the
    ratio bound is loose (a loaded machine measured 7.6x) and catches what grows faster still."""
    small, large = _one_event(4 << 20, 64 << 10), _one_event(16 << 20, 64 << 10)
    assert large < 0.5 and large / small < 12, (small, large)
    assert _one_event(256 << 10, 1) < 2.0  # one byte at a time: no per-chunk re-join


sse_bytes = st.lists(
    st.sampled_from(
        [b"data: ", b"data:", b"event: e", b": keep-alive", b"\n", b"\r", b"\r\n", b"x", b"{}",
         "\u00e9\u20ac".encode(), b"id: 1", b"retry: 5", b"\n\n", b"[DONE]"]
    ),
    max_size=30,
).map(b"".join)  # fmt: skip


@given(raw=sse_bytes | st.binary(max_size=200), data=st.data())
def test_any_chunking_of_a_stream_parses_the_same(raw, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=10)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    whole = list(iter_sse([raw]))
    assert list(iter_sse(pieces)) == whole
    buffer, events = b"", []
    for piece in pieces:  # the pure form agrees with the decoder
        buffer, found = feed(buffer, piece)
        events += found
    assert [*events, *flush(buffer)] == whole
    decoder = SSEDecoder()
    assert [e for p in pieces for e in decoder.feed(p)] + list(decoder.flush()) == whole


def test_line_endings_are_equivalent_even_split():
    lf = b"event: a\ndata: 1\ndata: 2\n\n: c\n\ndata: 3\n\n"
    for raw in (lf, lf.replace(b"\n", b"\r\n"), lf.replace(b"\n", b"\r")):
        got = [e for i in range(len(raw)) for e in iter_sse([raw[:i], raw[i:]])]
        assert got == [SSE("a", "1\n2"), SSE("message", "3")] * len(raw)
