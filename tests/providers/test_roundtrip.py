"""Every provider through real httpx (respx-served real payloads): sync, async, streams, errors."""

import asyncio
import json
import logging

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

import conduit as c
from conduit.providers import anthropic, openai
from conduit.sse import feed, flush, iter_sse
from tests.providers.helpers import chunkings, raw

KEY = "sk-roundtrip-0123456789"

PROVIDERS = {
    # name: (url, chat fixture, stream fixture, env var, expected text start)
    "openai": (
        "https://api.openai.com/v1/chat/completions",
        "openai/chat_text.json",
        "openai/stream_text.sse",
        "OPENAI_API_KEY",
    ),
    "anthropic": (
        "https://api.anthropic.com/v1/messages",
        "anthropic/message_text.json",
        "anthropic/stream_text.sse",
        "ANTHROPIC_API_KEY",
    ),
    "groq": (
        "https://api.groq.com/openai/v1/chat/completions",
        "groq/chat_text.json",
        "groq/stream_text.sse",
        "GROQ_API_KEY",
    ),
    "grok": (
        "https://api.x.ai/v1/chat/completions",
        "openai/chat_text.json",
        "xai/stream_text.sse",
        "XAI_API_KEY",
    ),
    "ollama": (
        "http://localhost:11434/v1/chat/completions",
        "ollama/openai_chat_text.json",
        "ollama/openai_stream_text.sse",
        None,
    ),
}


def handlers(name):
    return tuple(getattr(c, f"{name}_{kind}") for kind in ("call", "acall", "stream", "astream"))


def sse_response(fixture):
    return httpx.Response(200, content=raw(fixture), headers={"content-type": "text/event-stream"})


@pytest.fixture(autouse=True)
def no_env_keys(monkeypatch):
    for var in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GROQ_API_KEY",
        "XAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_BASE_URL",
        "GROQ_BASE_URL",
        "XAI_BASE_URL",
        "OLLAMA_BASE_URL",
    ):
        monkeypatch.delenv(var, raising=False)


def expected_response(name, fixture):
    module = anthropic if name == "anthropic" else openai
    return module.decode_chat(c.request("m"), json.loads(raw(fixture)))["response"]


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@respx.mock
def test_sync_and_async_calls(name):
    url, chat, _, _ = PROVIDERS[name]
    route = respx.post(url).mock(return_value=httpx.Response(200, content=raw(chat)))
    call, acall, _, _ = handlers(name)
    req = c.request("some-model", [c.user("hi")], api_key=KEY)
    ctx = call(req)
    actx = asyncio.run(acall(req))
    assert ctx["response"] == actx["response"] == expected_response(name, chat)
    assert ctx["messages"] == req["messages"]  # the request travels with its response
    assert route.call_count == 2
    sent = json.loads(route.calls.last.request.content)
    assert sent["model"] == "some-model"


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@respx.mock
def test_sync_and_async_streams(name):
    url, _, stream_fixture, _ = PROVIDERS[name]
    route = respx.post(url).mock(side_effect=lambda r: sse_response(stream_fixture))
    _, _, stream, astream = handlers(name)
    req = c.request("some-model", "hi", api_key=KEY)
    events = list(stream(req))

    async def consume():
        return [e async for e in astream(req)]

    aevents = asyncio.run(consume())
    assert events == aevents
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_end"
    resp = c.collect(events)
    assert resp["content"]
    if name != "ollama":  # Ollama's recorded stream carries no usage
        assert resp["usage"]["total_tokens"] > 0
    assert json.loads(route.calls.last.request.content)["stream"] is True


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@respx.mock
def test_middleware_runs_around_provider_calls_and_streams(name):
    url, chat, stream_fixture, _ = PROVIDERS[name]
    respx.post(url).mock(
        side_effect=lambda r: (
            sse_response(stream_fixture)
            if json.loads(r.content).get("stream")
            else httpx.Response(200, content=raw(chat))
        )
    )
    seen = []

    def spy(req):
        ctx = yield req
        seen.append(ctx["response"]["content"])
        return ctx

    call, _, stream, _ = handlers(name)
    req = c.with_middleware(spy)(c.request("m", "hi", api_key=KEY))
    ctx = call(req)
    streamed = c.collect(stream(req))
    assert seen == [c.content(ctx), streamed["content"]]


@pytest.mark.parametrize("name", ["openai", "anthropic", "groq", "grok"])
def test_missing_key_names_the_environment_variable(name):
    call = handlers(name)[0]
    env = PROVIDERS[name][3]
    with pytest.raises(c.AuthenticationError, match=f"set the {env} environment variable"):
        call(c.request("m", "hi"))


@respx.mock
def test_key_from_environment(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    route = respx.post(PROVIDERS["anthropic"][0]).mock(
        return_value=httpx.Response(200, content=raw("anthropic/message_text.json"))
    )
    c.anthropic_call(c.request("claude", "hi"))
    assert route.calls.last.request.headers["x-api-key"] == KEY


@respx.mock
def test_any_openai_compatible_server_through_base_url():
    route = respx.post("http://127.0.0.1:8000/v1/chat/completions").mock(
        return_value=httpx.Response(200, content=raw("openai/chat_text.json"))
    )
    ctx = c.openai_call(c.request("local-model", "hi", base_url="http://127.0.0.1:8000/v1/"))
    assert c.content(ctx) == "\\(4200 + 42 = 4242\\)."
    assert "authorization" not in route.calls.last.request.headers  # local servers need no key


@respx.mock
def test_http_errors_map_through_the_error_function():
    url = PROVIDERS["anthropic"][0]
    respx.post(url).mock(
        return_value=httpx.Response(
            429,
            content=raw("anthropic/error_429_rate_limit.json"),
            headers={"retry-after": "12", "x-should-retry": "true", "request-id": "req_1"},
        )
    )
    with pytest.raises(c.RateLimitError) as exc:
        c.anthropic_call(c.request("claude", "hi", api_key=KEY))
    assert exc.value.retry_after == 12.0 and exc.value.request_id == "req_1"
    assert exc.value.provider == "anthropic" and c.is_retryable(exc.value)
    respx.post(PROVIDERS["openai"][0]).mock(
        return_value=httpx.Response(401, content=raw("openai/error_401_invalid_api_key.json"))
    )
    with pytest.raises(c.AuthenticationError, match="Incorrect API key provided"):
        list(c.openai_stream(c.request("gpt", "hi", api_key=KEY)))


@respx.mock
def test_stream_error_event_mid_stream_raises_after_delivered_events():
    body = raw("anthropic/stream_text.sse").split(b"event: content_block_stop")[0]
    body += raw("anthropic/stream_error_overloaded.sse")
    respx.post(PROVIDERS["anthropic"][0]).mock(
        side_effect=lambda r: httpx.Response(200, content=body)
    )
    got = []
    with pytest.raises(c.ServerError, match="Overloaded"):
        for event in c.anthropic_stream(c.request("claude", "hi", api_key=KEY)):
            got.append(event)
    assert got and got[0]["type"] == "message_start"


@respx.mock
def test_truncated_stream_is_a_connection_error():
    body = raw("openai/stream_text.sse")[:2000]
    respx.post(PROVIDERS["openai"][0]).mock(side_effect=lambda r: httpx.Response(200, content=body))
    with pytest.raises(c.ConnectionError, match="incomplete or malformed stream event"):
        list(c.openai_stream(c.request("gpt", "hi", api_key=KEY)))
    whole_events = raw("openai/stream_text.sse").split(b"\n\n")
    body = b"\n\n".join(whole_events[:5]) + b"\n\n"  # cut cleanly between events
    respx.post(PROVIDERS["openai"][0]).mock(side_effect=lambda r: httpx.Response(200, content=body))
    with pytest.raises(c.ConnectionError, match="stream ended before it was complete"):
        list(c.openai_stream(c.request("gpt", "hi", api_key=KEY)))
    assert c.is_retryable(c.ConnectionError("x"))


@respx.mock
def test_malformed_json_is_a_clear_provider_error():
    respx.post(PROVIDERS["openai"][0]).mock(return_value=httpx.Response(200, content=b"{not json"))
    with pytest.raises(c.ProviderError, match="not JSON"):
        c.openai_call(c.request("gpt", "hi", api_key=KEY))


@respx.mock
def test_transport_failures_map_to_conduit_errors():
    route = respx.post(PROVIDERS["openai"][0])
    route.side_effect = httpx.ConnectError("connection refused")
    with pytest.raises(c.ConnectionError, match="could not talk to openai"):
        c.openai_call(c.request("gpt", "hi", api_key=KEY))
    route.side_effect = httpx.ReadTimeout("slow")
    with pytest.raises(c.TimeoutError):
        asyncio.run(c.openai_acall(c.request("gpt", "hi", api_key=KEY)))
    with pytest.raises(TimeoutError):  # also the builtin
        list(c.openai_stream(c.request("gpt", "hi", api_key=KEY)))


@respx.mock
def test_the_api_key_never_appears_in_errors_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    respx.post(PROVIDERS["openai"][0]).mock(
        return_value=httpx.Response(401, content=raw("openai/error_401_invalid_api_key.json"))
    )
    req = c.request("gpt", "hi", api_key=KEY)
    with pytest.raises(c.AuthenticationError) as exc:
        c.openai_call(req)
    texts = [str(exc.value), repr(exc.value), repr(exc.value.data), repr(req), caplog.text]
    assert all(KEY not in t for t in texts)


def test_dispatch_on_provider_prefix():
    assert c.content(c.call(c.request("mock:x", "hi", mock="via mock"))) == "via mock"
    with pytest.raises(c.ValidationError, match="unknown provider 'nope'"):
        c.call(c.request("m", "hi", provider="nope"))


@respx.mock
def test_dispatch_strips_the_prefix_and_routes():
    route = respx.post(PROVIDERS["anthropic"][0]).mock(
        return_value=httpx.Response(200, content=raw("anthropic/message_text.json"))
    )
    ctx = c.call(c.request("anthropic:claude-sonnet-4-5", "hi", api_key=KEY))
    assert json.loads(route.calls.last.request.content)["model"] == "claude-sonnet-4-5"
    assert c.content(ctx) == "4200 + 42 = 4242"
    ollama_route = respx.post(PROVIDERS["ollama"][0]).mock(
        side_effect=lambda r: sse_response("ollama/openai_stream_text.sse")
    )
    assert c.collect(c.stream(c.request("ollama:llama3.2:3b", "hi")))["content"]
    assert json.loads(ollama_route.calls.last.request.content)["model"] == "llama3.2:3b"

    async def go():
        ctx = await c.acall(c.request("ollama:llama3.2", "hi"))
        return ctx, [e async for e in c.astream(c.request("ollama:llama3.2", "hi"))]

    respx.post(PROVIDERS["ollama"][0]).mock(
        side_effect=lambda r: (
            sse_response("ollama/openai_stream_text.sse")
            if json.loads(r.content).get("stream")
            else httpx.Response(200, content=raw("ollama/openai_chat_text.json"))
        )
    )
    actx, aevents = asyncio.run(go())
    assert c.content(actx) and c.collect(aevents)["content"]


@respx.mock
def test_embeddings_openai_and_ollama_sync_and_async():
    respx.post("https://api.openai.com/v1/embeddings").mock(
        return_value=httpx.Response(200, content=raw("openai/embeddings_float.json"))
    )
    route = respx.post("http://localhost:11434/api/embed").mock(
        return_value=httpx.Response(200, content=raw("ollama/native_embed.json"))
    )
    e = c.openai_embed(["The food was delicious"], api_key=KEY)
    assert e.vectors.shape == (1, 1536) and e.usage["input_tokens"] > 0
    e2 = asyncio.run(c.openai_aembed(["The food was delicious"], api_key=KEY))
    assert (e.vectors == e2.vectors).all()
    o = c.embed(
        c.embedding_request("ollama:all-minilm", ["hi"], base_url="http://localhost:11434/v1")
    )
    assert c.vectors(o).shape == (1, 10)
    assert json.loads(route.calls.last.request.content) == {"model": "all-minilm", "input": ["hi"]}
    assert asyncio.run(c.ollama_aembed(["hi"])).vectors.shape == (1, 10)
    with pytest.raises(c.ValidationError, match="list of texts"):
        c.openai_embed("not a list", api_key=KEY)
    with pytest.raises(c.ValidationError, match="has no embeddings"):
        c.embed(c.embedding_request("anthropic:claude", ["x"]))


# --- the law: any chunking of a real stream yields the same events ---------------------------

STREAMS = [
    (openai, "openai/stream_text.sse"),
    (openai, "openai/stream_tool_call.sse"),
    (anthropic, "anthropic/stream_tool_use.sse"),
    (anthropic, "anthropic/stream_text.sse"),
    (openai, "groq/stream_tool_call.sse"),
    (openai, "xai/stream_tool_call.sse"),
    (openai, "ollama/openai_stream_tool_call.sse"),
]


def decoded(module, chunks):
    state = module.stream_start("x")
    out = []
    for sse in iter_sse(chunks):
        state, events = module.stream_step(state, sse)
        out.extend(events)
    return out + module.stream_end(state)


@settings(max_examples=60)
@given(st.sampled_from(STREAMS), st.data())
def test_any_chunking_of_a_real_stream_yields_the_same_events(stream, data):
    module, name = stream
    body = raw(name)
    cuts = data.draw(st.lists(st.integers(1, len(body) - 1), max_size=40))
    assert decoded(module, chunkings(body, cuts)) == decoded(module, [body])


@given(st.data())
def test_sse_line_endings_and_byte_splits(data):
    events = [("a", "x\ny"), ("message", "é ünïcode"), ("b", "")]
    sep = data.draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    body = b""
    for name, text in events:
        body += b": comment" + sep + f"event: {name}".encode() + sep
        for line in text.split("\n"):
            body += f"data: {line}".encode() + sep
        body += sep
    cuts = data.draw(st.lists(st.integers(1, len(body) - 1), max_size=20))
    buffer, out = b"", []
    for chunk in chunkings(body, cuts):
        buffer, got = feed(buffer, chunk)
        out.extend(got)
    out.extend(flush(buffer))
    assert [(e.event, e.data) for e in out] == events


def test_a_dispatched_conversation_stays_with_its_provider():
    script = c.mock_script(["first", "second", "third"])
    ctx = c.call(c.request("mock:demo", "hi", mock=script))
    assert ctx["model"] == "mock:demo" and "provider" not in ctx  # the caller's request, kept
    assert c.content(c.call(c.reply(ctx, "again"))) == "second"
    assert c.collect(c.stream(c.reply(ctx, "more")))["content"] == "third"


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_handlers_are_named_documented_and_pickle(name):
    import pickle

    for fn in handlers(name):
        assert fn.__name__.startswith(f"{name}_") and fn.__doc__
        assert pickle.loads(pickle.dumps(fn)) is fn
