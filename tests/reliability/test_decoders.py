"""Fuzzing every decoder and the SSE parser.

Arbitrary JSON and mutated real fixtures (``tests/fixtures/providers``) either decode to a
well-formed response or raise a ``ProviderError``, never AttributeError/KeyError/TypeError;
the valid fixtures still decode; the SSE parser is linear in the bytes it reads and any
chunking of a stream parses the same.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import conduit as c
from conduit.providers import _http, anthropic, ollama, openai
from conduit.providers._wire import Decoder
from conduit.response import STOP_REASONS
from conduit.sse import SSE, SSEDecoder, feed, flush, iter_sse

FIXTURES = Path(__file__).parent.parent / "fixtures" / "providers"
REQ = c.request("m", "hi")
EMBED = c.embedding_request("m", ["a", "b"])

KEYS = [
    "choices", "message", "delta", "content", "tool_calls", "function", "name", "arguments",
    "index", "id", "model", "usage", "finish_reason", "type", "text", "input", "stop_reason",
    "data", "embedding", "embeddings", "error", "content_block", "partial_json", "done_reason",
    "prompt_tokens", "input_tokens", "output_tokens", "prompt_tokens_details", "x_groq",
]  # fmt: skip
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
values = st.recursive(
    scalars | st.sampled_from(["text", "tool_use", "text_delta", "input_json_delta", "stop"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


def _well_formed(resp: Mapping[str, Any]) -> None:
    assert isinstance(resp["content"], str | tuple) or type(resp["content"]).__name__ == "PVector"
    assert isinstance(resp["model"], str) and (resp["id"] is None or isinstance(resp["id"], str))
    assert resp["stop_reason"] in STOP_REASONS
    assert all(type(v) is int for v in resp["usage"].values())
    for call in resp["tool_calls"]:
        assert isinstance(call["id"], str) and isinstance(call["name"], str) and call["name"]
        assert isinstance(call["arguments"], Mapping)


def _well_formed_events(events: list[Any]) -> None:
    for e in events:
        optional = e["type"] == "message_start"  # model and id may be unknown (None)
        for field in ("text", "arguments_delta", "id", "name", "model"):
            ok = field not in e or isinstance(e[field], str) or (optional and e[field] is None)
            assert ok, e
        assert "index" not in e or type(e["index"]) is int, e


CHATS = {
    "openai": lambda body: openai.decode_chat(REQ, body),
    "anthropic": lambda body: anthropic.decode_chat(REQ, body),
    "ollama": lambda body: ollama.decode_native_chat(REQ, body),
}
EMBEDS = {
    "openai": lambda body: openai.decode_embeddings(EMBED, body),
    "ollama": lambda body: ollama.decode_embed(EMBED, body),
}


def _chat(name: str, body: Any) -> None:
    try:
        ctx = CHATS[name](body)
    except c.ProviderError as err:
        assert err.provider == name or name == "ollama"
        return
    _well_formed(ctx["response"])


def _embed(name: str, body: Any) -> None:
    try:
        ctx = EMBEDS[name](body)
    except c.ProviderError:
        return
    assert isinstance(ctx["response"]["model"], str)
    assert c.vectors(ctx).dtype.name == "float32"


def _stream(name: str, bodies: list[Any]) -> None:
    """Decode *bodies* as the events of one stream, through the decoder the wire uses."""
    spec = {"openai": openai.OPENAI, "anthropic": anthropic.ANTHROPIC}[name]
    decoder = _http.decoder(spec, REQ)
    raw = b"".join(b"data: " + json.dumps(b).encode() + b"\n\n" for b in bodies)
    events: list[Any] = []
    try:
        events += decoder.feed(raw)
        events += decoder.finish()
    except (c.ProviderError, c.ConnectionError):  # ConnectionError: the stream never ended
        pass
    _well_formed_events([e for e in events if isinstance(e, Mapping)])


@pytest.mark.parametrize("name", list(CHATS))
@given(body=values)
def test_any_json_is_a_response_or_a_provider_error(name, body):
    _chat(name, body)


@pytest.mark.parametrize("name", list(EMBEDS))
@given(body=values)
def test_any_json_is_embeddings_or_a_provider_error(name, body):
    _embed(name, body)


@pytest.mark.parametrize("name", ["openai", "anthropic"])
@given(bodies=st.lists(values, min_size=1, max_size=4))
def test_any_json_events_are_events_or_a_provider_error(name, bodies):
    _stream(name, bodies)


# --- mutated real fixtures ----------------------------------------------------------------------


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


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


CHAT_FIXTURES = {
    "openai": ["openai/chat_text.json", "openai/chat_tool_calls.json", "groq/chat_text.json",
               "groq/chat_tool_calls.json", "ollama/openai_chat_tool_calls.json"],
    "anthropic": ["anthropic/message_text.json", "anthropic/message_tool_use.json"],
    "ollama": ["ollama/native_chat.json", "ollama/native_chat_tool_calls.json"],
}  # fmt: skip
STREAM_FIXTURES = {
    "openai": ["openai/stream_tool_call.sse", "groq/stream_tool_call.sse",
               "ollama/openai_stream_tool_call.sse"],
    "anthropic": ["anthropic/stream_tool_use.sse", "anthropic/stream_text.sse"],
}  # fmt: skip


@st.composite
def mutations(draw: Any, fixture: Any) -> Any:
    paths = _paths(fixture)
    path = draw(st.sampled_from(paths))
    return _mutate(fixture, path, draw(values), draw(st.booleans()) and bool(path))


@pytest.mark.parametrize("name", list(CHAT_FIXTURES))
@given(data=st.data())
def test_mutated_fixtures_decode_or_raise_a_provider_error(name, data):
    fixture = _json(FIXTURES / data.draw(st.sampled_from(CHAT_FIXTURES[name])))
    _chat(name, data.draw(mutations(fixture)))


@pytest.mark.parametrize("name", list(STREAM_FIXTURES))
@given(data=st.data())
def test_mutated_stream_fixtures_decode_or_raise_a_provider_error(name, data):
    text = (FIXTURES / data.draw(st.sampled_from(STREAM_FIXTURES[name]))).read_bytes()
    bodies = [json.loads(e.data) for e in iter_sse([text]) if e.data != "[DONE]"]
    i = data.draw(st.integers(0, len(bodies) - 1))
    bodies[i] = data.draw(mutations(bodies[i]))
    _stream(name, bodies)


@pytest.mark.parametrize("name", list(EMBEDS))
@given(data=st.data())
def test_mutated_embedding_fixtures_decode_or_raise_a_provider_error(name, data):
    path = {"openai": "openai/embeddings_float.json", "ollama": "ollama/native_embed.json"}[name]
    _embed(name, data.draw(mutations(_json(FIXTURES / path))))


def test_the_valid_fixtures_still_decode():
    for name, paths in CHAT_FIXTURES.items():
        for path in paths:
            _well_formed(CHATS[name](_json(FIXTURES / path))["response"])
    for name, paths in STREAM_FIXTURES.items():
        spec = {"openai": openai.OPENAI, "anthropic": anthropic.ANTHROPIC}[name]
        for path in paths:
            decoder = _http.decoder(spec, REQ)
            events = decoder.feed((FIXTURES / path).read_bytes()) + decoder.finish()
            assert c.collect([e for e in events if isinstance(e, Mapping)])["stop_reason"]
    assert c.vectors(EMBEDS["openai"](_json(FIXTURES / "openai/embeddings_float.json"))).size


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
    with pytest.raises(c.ProviderError, match="required field 'index' is missing"):
        decoder.finish()


def test_the_deadline_is_checked_on_a_keep_alive_that_completes_no_event():
    late = REQ.set("conduit/deadline", time.monotonic() - 0.001)
    decoder = _http.decoder(openai.OPENAI, late)
    with pytest.raises(c.TimeoutError):
        decoder.feed(b": keep-alive\n\n")


# --- the SSE parser -----------------------------------------------------------------------------


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
