"""Issue 16's providers on the OpenAI wire: Azure OpenAI, Mistral, DeepSeek, OpenRouter,
Together and Fireworks, on their recorded payloads and against the official SDKs' bodies."""

import asyncio
import json
import time

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

import conduit as c
from conduit.providers import azure, mistral, openai, openrouter
from conduit.registry import lookup
from conduit.sse import SSEDecoder
from conduit.streams import collect
from tests.providers.helpers import chunkings, load, raw
from tests.providers.test_fixtures import assert_design_response

KEY = "sk-compatible-test-key-123"


def sse_of_chunks(name):
    """A ``.chunks.txt`` fixture (one data payload per line) as server-sent event bytes."""
    lines = [line for line in raw(name).decode().splitlines() if line.strip()]
    return "".join(f"data: {line}\n\n" for line in [*lines, "[DONE]"]).encode()


def stream_events(provider, data, pieces=None):
    """Decode stream bytes (given whole, or as *pieces*) with the OpenAI stream decoder."""
    decoder, state, events = SSEDecoder(), openai.stream_start(provider), []
    for chunk in pieces or [data]:
        state, out = openai.stream_steps(state, decoder.feed(chunk))
        events += out
    state, out = openai.stream_steps(state, decoder.flush())
    return events + out + openai.stream_end(state)


# --- recorded answers decode to DESIGN shapes -----------------------------------------------

CALLS = {
    # fixture: (provider, stop reason, text starts, tool names, usage extras)
    "mistral/chat_text.json": ("mistral", "end_turn", "", (), {}),
    "mistral/chat_tool_call.json": ("mistral", "tool_use", "", ("weather",), {}),
    "mistral/chat_tool_call_parsed.json": ("mistral", "tool_use", "", None, {}),
    "deepseek/chat_text.json": ("deepseek", "max_tokens", "## **Holiday", (), {}),
    "deepseek/chat_reasoning_tool_call_parsed.json": (
        "deepseek",
        "tool_use",
        "Let me load",
        ("load_capability",),
        {"cache_read_tokens": 512, "reasoning_tokens": 60},
    ),
    "openrouter/chat_text.json": ("openrouter", "end_turn", "", (), {}),
    "openrouter/chat_tool_call.json": ("openrouter", "tool_use", "", None, {}),
    "azure/chat_completion.json": ("azure", "end_turn", "The capital of France", (), {}),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_recorded_answers_decode_to_design_shapes(name):
    provider, stop, starts, tools, extras = CALLS[name]
    resp = openai.decode_chat(c.request("m"), load(name), provider)["response"]
    assert_design_response(resp)
    assert resp["stop_reason"] == stop and c.content(resp).startswith(starts)
    if tools is not None:
        assert tuple(t["name"] for t in resp["tool_calls"]) == tools
    for key, value in extras.items():
        assert resp["usage"][key] == value
    body = load(name)
    assert resp["usage"]["input_tokens"] == body["usage"]["prompt_tokens"]


def test_deepseek_reasoning_and_cache_hits_are_read():
    resp = openai.decode_chat(
        c.request("m"), load("deepseek/chat_reasoning_tool_call_parsed.json"), "deepseek"
    )["response"]
    thought = resp["content"][0]
    assert thought["type"] == "reasoning" and thought["text"].startswith("The user wants")
    # only DeepSeek's own counter: the cache hits are read from it too
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "prompt_cache_hit_tokens": 8}
    assert openai.decode_usage(usage)["cache_read_tokens"] == 8


STREAMS = {
    # fixture: (provider, text, tool names, reasoning starts)
    "mistral/stream_text.chunks.txt": ("mistral", None, (), None),
    "mistral/stream_tool_call.chunks.txt": ("mistral", "", ("weather",), None),
    "mistral/stream_thinking.sse": ("mistral", None, (), "Okay, the user is asking"),
    "deepseek/stream_tool_call.chunks.txt": ("deepseek", None, None, ""),
    "openrouter/stream_text.sse": ("openrouter", None, (), None),
    "openrouter/stream_reasoning.sse": (
        "openrouter",
        "2 + 2 = 4",
        (),
        "This is a simple arithmetic question.",
    ),
}


def stream_bytes(name):
    return sse_of_chunks(name) if name.endswith(".chunks.txt") else raw(name)


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_recorded_streams_collect_to_design_shapes(name):
    provider, text, tools, thought = STREAMS[name]
    resp = collect(stream_events(provider, stream_bytes(name)))
    assert_design_response(resp)
    if text is not None:
        assert c.content(resp) == text
    else:
        assert c.content(resp) or resp["tool_calls"]
    if tools is not None:
        assert tuple(t["name"] for t in resp["tool_calls"]) == tools
    blocks = [b for b in resp["content"] if b["type"] == "reasoning"] if thought is not None else []
    if thought:
        assert blocks and blocks[0]["text"].startswith(thought)


def test_mistral_thinking_parts_are_reasoning_in_calls_and_streams():
    parts = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "Cross at lights."}]},
        {"type": "text", "text": "Look both ways."},
    ]
    body = {
        "id": "x",
        "model": "magistral",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": parts},
            }
        ],
    }
    resp = openai.decode_chat(c.request("m"), body, "mistral")["response"]
    assert list(resp["content"]) == [
        {"type": "reasoning", "text": "Cross at lights."},
        {"type": "text", "text": "Look both ways."},
    ]
    streamed = collect(stream_events("mistral", raw("mistral/stream_thinking.sse")))
    assert streamed["content"][0]["type"] == "reasoning"
    assert streamed["content"][-1]["text"].startswith("To cross the street safely")
    with pytest.raises(c.ProviderError, match="'audio' part"):
        openai.decode_chat(
            c.request("m"),
            {
                **body,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": [{"type": "audio"}]}}
                ],
            },
            "mistral",
        )


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(sorted(STREAMS)), st.data())
def test_streams_decode_the_same_under_any_chunking(name, data):
    provider = STREAMS[name][0]
    body = stream_bytes(name)
    cuts = data.draw(st.lists(st.integers(1, len(body) - 1), max_size=12))
    whole = collect(stream_events(provider, body))
    assert collect(stream_events(provider, body, chunkings(body, cuts))) == whole


def test_the_openrouter_429_is_a_rate_limit():
    err = c.error_from_response("openrouter", 429, {}, raw("openrouter/error_429.json"))
    assert isinstance(err, c.RateLimitError) and c.is_retryable(err)
    assert "Provider returned error" in str(err)


# --- requests: the recorded ones, and the official SDKs' ------------------------------------


def test_recorded_requests_are_reproduced():
    mistral_req = c.request(
        "pixtral-12b-latest",
        [
            c.user(
                [
                    c.text_block(
                        "What fruit is in the image you can get from the get_image tool? "
                        "Call the tool."
                    )
                ]
            )
        ],
        tools=[
            {
                "name": "get_image",
                "description": "",
                "parameters": {"additionalProperties": False, "properties": {}, "type": "object"},
            }
        ],
        tool_choice="auto",
        top_p=1.0,
        n=1,
    )
    body = mistral.encode_chat(mistral_req)
    recorded = load("mistral/request_tools.json")
    recorded.pop("stream")  # false: the default, which Conduit leaves out
    for tool in body["tools"]:
        assert tool.pop("type") == "function"  # the recording's SDK left the default out
    assert body == recorded
    hello = c.request("openai/gpt-4o", "Say hello in one word")
    router = openrouter.OPENROUTER.encode(hello, False)
    assert router == load("openrouter/request_chat.json")
    az = azure.AZURE.encode(c.request("gpt-4o", "What is the capital of France?", n=1), False)
    recorded = load("azure/request_chat_completion.json")
    recorded.pop("stream")
    assert az == recorded


def mistral_sdk_body(call):
    from mistralai.client import Mistral

    seen = []

    def handler(request):
        seen.append(request)
        if json.loads(request.content).get("stream"):
            return httpx.Response(
                200,
                content=raw("mistral/stream_thinking.sse"),
                headers={"content-type": "text/event-stream"},
            )
        return httpx.Response(
            200,
            content=raw("mistral/chat_tool_call.json"),
            headers={"content-type": "application/json"},
        )

    client = Mistral(api_key=KEY, client=httpx.Client(transport=httpx.MockTransport(handler)))
    call(client)
    return seen[-1]


TOOL = {
    "name": "weather",
    "description": "Weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}
SDK_TOOL = {"type": "function", "function": TOOL}

MISTRAL_CASES = {
    "text": (
        dict(messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]),
        [c.system("S"), c.user("hi")],
        {},
    ),
    "options": (
        dict(
            messages=[{"role": "user", "content": "hi"}],
            temperature=0.2,
            max_tokens=10,
            top_p=0.9,
            random_seed=3,
            stop=["END"],
        ),
        [c.user("hi")],
        dict(temperature=0.2, max_tokens=10, top_p=0.9, seed=3, stop=["END"]),
    ),
    "tools": (
        dict(
            messages=[{"role": "user", "content": "weather?"}],
            tools=[SDK_TOOL],
            tool_choice="any",
            parallel_tool_calls=False,
        ),
        [c.user("weather?")],
        dict(tools=[TOOL], tool_choice="any", parallel_tool_calls=False),
    ),
    "tool_result": (
        dict(
            messages=[
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "gSIMJiOkT",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"location": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "gSIMJiOkT", "content": "sunny"},
            ]
        ),
        [
            c.user("weather?"),
            c.assistant(
                "",
                tool_calls=[
                    {"id": "gSIMJiOkT", "name": "weather", "arguments": {"location": "Paris"}}
                ],
            ),
            c.tool_result("gSIMJiOkT", "sunny"),
        ],
        {},
    ),
    "json_schema": (
        dict(
            messages=[{"role": "user", "content": "city?"}],
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": "city",
                    "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
            },
        ),
        [c.user("city?")],
        dict(
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": "city",
                    "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
            }
        ),
    ),
}


def _comparable(body):
    body = dict(body)
    if body.get("stream") is False:
        del body["stream"]  # the SDK writes the default; Conduit leaves it out
    for m in body.get("messages", ()):
        if m.get("role") == "assistant" and m.get("content") in ("", None):
            m.pop("content", None)  # empty either way
        if m.get("prefix") is False:
            del m["prefix"]  # the SDK's default, written out
        for call in m.get("tool_calls") or ():
            call.pop("type", None)
            if call.get("index") == 0:
                del call["index"]  # the SDK numbers a single call
    return body


@pytest.mark.parametrize("case", sorted(MISTRAL_CASES))
def test_mistral_bodies_match_the_official_sdk(case):
    kwargs, messages, options = MISTRAL_CASES[case]
    sent = mistral_sdk_body(lambda m: m.chat.complete(model="mistral-small-latest", **kwargs))
    ours = mistral.encode_chat(c.request("mistral-small-latest", messages, **options))
    assert _comparable(json.loads(sent.content)) == _comparable(ours)
    assert str(sent.url) == "https://api.mistral.ai/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"


def test_mistral_stream_body_matches_the_official_sdk():
    def go(m):
        for _ in m.chat.stream(
            model="mistral-small-latest", messages=[{"role": "user", "content": "hi"}]
        ):
            pass

    sent = json.loads(mistral_sdk_body(go).content)
    assert sent == mistral.encode_chat(c.request("mistral-small-latest", "hi"), stream=True)


def test_mistral_embeddings_body_matches_the_official_sdk():
    from mistralai.client import Mistral

    seen = []

    def handler(request):
        seen.append(json.loads(request.content))
        vec = {"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}
        return httpx.Response(
            200,
            json={
                "id": "e",
                "object": "list",
                "model": "mistral-embed",
                "data": [vec],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            },
        )

    client = Mistral(api_key=KEY, client=httpx.Client(transport=httpx.MockTransport(handler)))
    client.embeddings.create(model="mistral-embed", inputs=["a"], encoding_format="base64")
    ours = mistral.MISTRAL.encode_embed(c.embedding_request("mistral-embed", ["a"]))
    assert seen[-1] == ours


# --- Azure ------------------------------------------------------------------------------------

ENDPOINT = "https://conduit-test.openai.azure.com"


def azure_sdk_request(make_client, call):
    import openai as sdk

    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, content=raw("azure/chat_completion.json"))

    client = make_client(sdk, httpx.Client(transport=httpx.MockTransport(handler)))
    call(client)
    return seen[-1]


@respx.mock
def test_azure_classic_deployment_matches_the_sdk(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "2024-10-21")
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]
    sent = azure_sdk_request(
        lambda sdk, http: sdk.AzureOpenAI(
            azure_endpoint=ENDPOINT, api_key=KEY, api_version="2024-10-21", http_client=http
        ),
        lambda cl: cl.chat.completions.create(
            model="my-gpt-4o", messages=messages, temperature=0, max_tokens=20
        ),
    )
    route = respx.post(str(sent.url)).mock(
        return_value=httpx.Response(200, content=raw("azure/chat_completion.json"))
    )
    ctx = c.azure_call(
        c.request(
            "my-gpt-4o",
            [c.system("S"), c.user("hi")],
            temperature=0,
            max_tokens=20,
            api_key=KEY,
            base_url=ENDPOINT,
        )
    )
    ours = route.calls.last.request
    assert str(ours.url) == str(sent.url)
    deployment = "/openai/deployments/my-gpt-4o/chat/completions?api-version=2024-10-21"
    assert str(sent.url).endswith(deployment)
    assert ours.headers["api-key"] == sent.headers["api-key"] == KEY
    assert "authorization" not in ours.headers
    assert json.loads(ours.content) == json.loads(sent.content)
    assert c.content(ctx) == "The capital of France is **Paris**."


@respx.mock
def test_azure_v1_endpoint_and_entra_tokens_match_the_sdk(monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_API_VERSION", raising=False)
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)
    sent = azure_sdk_request(
        lambda sdk, http: sdk.AzureOpenAI(
            azure_endpoint=ENDPOINT,
            azure_ad_token_provider=lambda: "entra-token-1",
            api_version="2024-10-21",
            http_client=http,
        ),
        lambda cl: cl.chat.completions.create(
            model="dep", messages=[{"role": "user", "content": "hi"}]
        ),
    )
    assert sent.headers["authorization"] == "Bearer entra-token-1"
    route = respx.post(f"{ENDPOINT}/openai/v1/chat/completions").mock(
        return_value=httpx.Response(200, content=raw("azure/chat_completion.json"))
    )
    c.call(c.request("azure:dep", "hi", base_url=ENDPOINT, token_provider=lambda: "entra-token-1"))
    ours = route.calls.last.request
    assert ours.headers["authorization"] == sent.headers["authorization"]
    assert json.loads(ours.content) == json.loads(sent.content)


def test_azure_urls_keep_what_they_are_given():
    assert (
        azure.azure_url(
            f"{ENDPOINT}/openai/deployments/d?api-version=2025-01-01-preview", "x", "/embeddings"
        )
        == f"{ENDPOINT}/openai/deployments/d/embeddings?api-version=2025-01-01-preview"
    )
    assert azure.azure_url(f"{ENDPOINT}/openai/v1/", "d", "/chat/completions") == (
        f"{ENDPOINT}/openai/v1/chat/completions"
    )
    assert azure.azure_url(ENDPOINT, "my dep", "/chat/completions", "v") == (
        f"{ENDPOINT}/openai/deployments/my%20dep/chat/completions?api-version=v"
    )


class Token:
    def __init__(self, token, expires_on):
        self.token, self.expires_on = token, expires_on


@respx.mock
def test_an_expiring_entra_token_is_reused_then_refreshed():
    route = respx.post(f"{ENDPOINT}/openai/v1/chat/completions").mock(
        return_value=httpx.Response(200, content=raw("azure/chat_completion.json"))
    )
    issued = []

    def provider():
        issued.append(len(issued))
        lifetime = 3600 if len(issued) == 1 else 30  # the second is nearly expired at once
        return Token(f"tok-{len(issued)}", time.time() + lifetime)

    req = c.request("azure:dep", "hi", base_url=ENDPOINT, token_provider=provider)
    for _ in range(3):
        c.call(req)
    assert len(issued) == 1  # cached until a minute before it expires
    azure._tokens.clear()  # as if the hour had passed
    c.call(req)
    c.call(req)  # the new token expires within the minute: asked for again
    assert len(issued) == 3
    auth = [r.request.headers["authorization"] for r in route.calls]
    assert auth == ["Bearer tok-1"] * 3 + ["Bearer tok-2", "Bearer tok-3"]


def test_azure_says_what_is_missing(monkeypatch):
    for var in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(c.AuthenticationError, match="AZURE_OPENAI_ENDPOINT"):
        c.call(c.request("azure:dep", "hi", api_key=KEY))
    with pytest.raises(c.AuthenticationError, match=r"AZURE_OPENAI_API_KEY.*token_provider"):
        c.call(c.request("azure:dep", "hi", base_url=ENDPOINT))
    with pytest.raises(c.ValidationError, match=r"token_provider.*a function"):
        c.request("azure:dep", "hi", token_provider="a-token-string")
    with pytest.raises(c.ValidationError, match="not a token"):
        c.call(c.request("azure:dep", "hi", base_url=ENDPOINT, token_provider=lambda: None))


@respx.mock
def test_azure_credentials_never_reach_an_error(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", ENDPOINT)
    secret = "entra-secret-token-xyz"
    respx.post(f"{ENDPOINT}/openai/v1/chat/completions").mock(
        return_value=httpx.Response(401, json={"error": {"message": f"bad token {secret}"}})
    )
    with pytest.raises(c.AuthenticationError) as caught:
        c.call(c.request("azure:dep", "hi", token_provider=lambda: secret))
    assert secret not in str(caught.value) and secret not in repr(caught.value.__dict__)


@respx.mock
def test_azure_embeddings_go_to_the_deployment(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "2024-10-21")
    route = respx.post(f"{ENDPOINT}/openai/deployments/emb/embeddings?api-version=2024-10-21").mock(
        return_value=httpx.Response(
            200,
            json={
                "model": "text-embedding-3-small",
                "data": [{"index": 0, "embedding": [1.0, 0.0]}],
                "usage": {"prompt_tokens": 1},
            },
        )
    )
    ctx = c.azure_embed(c.embedding_request("emb", ["a"], api_key=KEY, base_url=ENDPOINT))
    assert c.vectors(ctx).tolist() == [[1.0, 0.0]] and route.called


def test_azure_gets_openai_s_own_mappings():
    body = azure.AZURE.encode(c.request("o3-mini", "hi", max_tokens=5), False)
    assert body["max_completion_tokens"] == 5
    pdf = c.document_base64("JVBERi0=", title="a.pdf")
    assert (
        azure.AZURE.encode(c.request("d", [c.user("read", pdf)]), False)["messages"][0]["content"][
            1
        ]["type"]
        == "file"
    )


# --- OpenRouter and DeepSeek: what goes back ------------------------------------------------


@respx.mock
def test_openrouter_sends_attribution_and_signed_reasoning_back(monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    monkeypatch.setenv("OPENROUTER_SITE_URL", "https://example.org")
    monkeypatch.setenv("OPENROUTER_APP_NAME", "Conduit tests")
    url = "https://openrouter.ai/api/v1/chat/completions"
    route = respx.post(url).mock(
        return_value=httpx.Response(
            200,
            content=raw("openrouter/stream_reasoning.sse"),
            headers={"content-type": "text/event-stream"},
        )
    )
    req = c.request("openrouter:anthropic/claude-sonnet-4.5", "2+2?", reasoning={"max_tokens": 64})
    events = list(c.stream(req))
    first = collect(events)
    assert first["content"][0]["signature"].startswith("Et0BCkgIChAC")
    sent = route.calls.last.request
    assert sent.headers["HTTP-Referer"] == "https://example.org"
    assert sent.headers["X-Title"] == "Conduit tests"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    route.mock(return_value=httpx.Response(200, content=raw("openrouter/chat_text.json")))
    c.call(c.reply(req.set("response", first), "and 3+3?"))
    again = json.loads(route.calls.last.request.content)["messages"][1]
    assert again["reasoning_details"] == [
        {
            "type": "reasoning.text",
            "index": 0,
            "signature": first["content"][0]["signature"],
            "text": "This is a simple arithmetic question. 2+2 equals 4.",
            "format": "anthropic-claude-v1",  # as received: which family wrote it
        }
    ]
    replayed = collect(c.response_events(first))  # a replayed stream keeps the format too
    assert replayed["content"][0]["format"] == "anthropic-claude-v1"


def test_a_request_s_own_attribution_header_wins(monkeypatch):
    monkeypatch.setenv("OPENROUTER_APP_NAME", "From env")
    headers = openrouter.attributed({}, "u", {"X-Title": "Mine"}, b"")
    assert headers == {"X-Title": "Mine"}


@respx.mock
def test_deepseek_by_prefix_replays_reasoning_on_tool_turns(monkeypatch):
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    route = respx.post("https://api.deepseek.com/chat/completions").mock(
        return_value=httpx.Response(
            200, content=raw("deepseek/chat_reasoning_tool_call_parsed.json")
        )
    )
    first = c.call(c.request("deepseek:deepseek-v4-flash", "roll a die"))
    call_id = c.tool_calls(first)[0]["id"]
    c.call(c.reply(first, c.tool_result(call_id, "loaded")))
    turn = json.loads(route.calls.last.request.content)["messages"][1]
    assert turn["reasoning_content"].startswith("The user wants to play a dice game")


# --- every new provider through the same handlers ------------------------------------------

COMPATIBLE = {
    "mistral": "https://api.mistral.ai/v1/chat/completions",
    "deepseek": "https://api.deepseek.com/chat/completions",
    "openrouter": "https://openrouter.ai/api/v1/chat/completions",
    "together": "https://api.together.xyz/v1/chat/completions",
    "fireworks": "https://api.fireworks.ai/inference/v1/chat/completions",
}


@respx.mock
@pytest.mark.parametrize("name", sorted(COMPATIBLE))
def test_each_provider_answers_by_prefix_sync_async_and_streamed(name, monkeypatch):
    info = lookup(name)
    monkeypatch.setenv(info.env_key, KEY)
    route = respx.post(COMPATIBLE[name]).mock(
        return_value=httpx.Response(200, content=raw("openai/chat_text.json"))
    )
    model = f"{name}:{info.default_model}"
    assert c.content(c.call(c.request(model, "hi"))) == "\\(4200 + 42 = 4242\\)."
    assert c.content(asyncio.run(c.acall(c.request(model, "hi")))).endswith("4242\\).")
    sent = json.loads(route.calls.last.request.content)
    assert sent["model"] == info.default_model
    assert route.calls.last.request.headers["authorization"] == f"Bearer {KEY}"
    route.mock(
        return_value=httpx.Response(
            200,
            content=raw("openai/stream_text.sse"),
            headers={"content-type": "text/event-stream"},
        )
    )
    streamed = collect(c.stream(c.request(model, "hi")))
    assert streamed["content"] and streamed["usage"]["total_tokens"] > 0
    monkeypatch.delenv(info.env_key)
    with pytest.raises(c.AuthenticationError, match=info.env_key):
        c.call(c.request(model, "hi"))


# --- local servers, as their documentation sets them -----------------------------------------


@respx.mock
@pytest.mark.parametrize("base", ["http://localhost:11434", "http://localhost:11434/v1/"])
def test_ollama_base_url_is_the_server_root_with_or_without_v1(base, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", base)
    chat = respx.post("http://localhost:11434/v1/chat/completions").mock(
        return_value=httpx.Response(200, content=raw("openai/chat_text.json"))
    )
    embed = respx.post("http://localhost:11434/api/embed").mock(
        return_value=httpx.Response(200, json={"model": "all-minilm", "embeddings": [[0.5, 1.0]]})
    )
    assert c.content(c.call(c.request("ollama:llama3.2", "hi"))).endswith("4242\\).")
    assert c.vectors(c.embed(c.embedding_request("ollama:all-minilm", ["a"]))).shape == (1, 2)
    assert chat.called and embed.called


@respx.mock
def test_a_local_openai_base_url_needs_no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    route = respx.post("http://127.0.0.1:8000/v1/chat/completions").mock(
        return_value=httpx.Response(200, content=raw("openai/chat_text.json"))
    )
    c.call(c.request("local-model", "hi"))
    assert "authorization" not in route.calls.last.request.headers
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")  # OpenAI's own: a key
    with pytest.raises(c.AuthenticationError, match="OPENAI_API_KEY"):
        c.call(c.request("gpt-4o-mini", "hi"))


def test_an_error_field_that_is_null_is_no_error():
    """Some OpenAI-compatible servers send ``"error": null`` beside a good answer (and on every
    stream chunk): it decodes as the answer; a present error still raises."""
    answer = {**load("openai/chat_text.json"), "error": None}
    assert c.content(openai.decode_chat(c.request("m"), answer)) == c.content(
        openai.decode_chat(c.request("m"), load("openai/chat_text.json"))
    )
    chunks = [
        {"id": "c", "model": "m", "error": None, "choices": [{"delta": {"content": "Hi"}}]},
        {
            "id": "c",
            "model": "m",
            "error": None,
            "choices": [{"delta": {}, "finish_reason": "stop"}],
        },
    ]
    data = "".join(f"data: {json.dumps(ch)}\n\n" for ch in chunks).encode() + b"data: [DONE]\n\n"
    assert collect(stream_events("openai", data))["content"] == "Hi"
    bad = [{"error": {"message": "overloaded", "type": "server_error"}}]
    with pytest.raises(c.ServerError, match="overloaded"):
        stream_events("openai", f"data: {json.dumps(bad[0])}\n\n".encode())
    with pytest.raises(c.ProviderError, match="it has no choices"):
        openai.decode_chat(c.request("m"), {"id": "x", "error": None})


def test_openrouter_reasoning_details_go_back_as_received():
    """Text and encrypted reasoning items, with their signature and format, decode to reasoning
    blocks that encode to the same items (OpenRouter: pass reasoning_details back unmodified)."""
    items = [
        {
            "type": "reasoning.text",
            "text": "Hm.",
            "signature": "sig",
            "format": "anthropic-claude-v1",
            "index": 0,
        },
        {
            "type": "reasoning.encrypted",
            "data": "opaque",
            "format": "openai-responses-v1",
            "index": 1,
        },
        {"type": "reasoning.text", "text": "plain", "index": 2},
    ]
    answer = {
        "id": "x",
        "model": "m",
        "choices": [
            {
                "message": {"role": "assistant", "content": "4", "reasoning_details": items},
                "finish_reason": "stop",
            }
        ],
    }
    ctx = openai.decode_chat(c.request("openrouter:m"), answer, "openrouter")
    body = openai.encode_chat(c.reply(ctx, "next"), provider="openrouter")
    assistant = next(m for m in body["messages"] if m["role"] == "assistant")
    assert assistant["reasoning_details"] == items
