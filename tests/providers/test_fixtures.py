"""Every real payload in tests/fixtures/providers decodes to DESIGN §2 shapes with the right values,
and every real request body is what Conduit's encoder writes for the same conversation."""

import numpy as np
import pytest

import conduit as c
from conduit.providers import anthropic, ollama, openai
from conduit.sse import iter_sse
from tests.providers.helpers import load, raw


def decode_stream(module, name, provider="x"):
    state = module.stream_start(provider)
    events = []
    for sse in iter_sse([raw(name)]):
        state, out = module.stream_step(state, sse)
        events.extend(out)
    return events + module.stream_end(state)


def assert_design_response(resp):
    assert set(resp) >= {"role", "content", "model", "id", "stop_reason", "usage", "tool_calls"}
    assert resp["role"] == "assistant"
    assert resp["stop_reason"] in c.response.STOP_REASONS if hasattr(c, "response") else True
    u = resp["usage"]
    assert u["total_tokens"] == u["input_tokens"] + u["output_tokens"]
    for call in resp["tool_calls"]:
        assert set(call) >= {"id", "name", "arguments"}


# --- OpenAI ----------------------------------------------------------------------------------


def test_openai_chat_text():
    resp = openai.decode_chat(c.request("gpt-4o"), load("openai/chat_text.json"))["response"]
    assert_design_response(resp)
    assert resp["content"] == "\\(4200 + 42 = 4242\\)."
    assert resp["id"] == "chatcmpl-CRkJFgcA6BuMrBur38ZHUXgT6zRjg"
    assert resp["model"] == "gpt-4o-2024-08-06"
    assert resp["stop_reason"] == "end_turn"
    assert resp["usage"] == {
        "input_tokens": 16,
        "output_tokens": 12,
        "total_tokens": 28,
        "cache_read_tokens": 0,
    }


def test_openai_chat_tool_calls():
    resp = openai.decode_chat(c.request("gpt-4o"), load("openai/chat_tool_calls.json"))["response"]
    assert_design_response(resp)
    assert resp["stop_reason"] == "tool_use"
    assert resp["content"] == ""
    assert resp["tool_calls"] == [
        {
            "id": "call_CUdUoJpsWWVdxXntucvnol1M",
            "name": "get_weather",
            "arguments": {"city": "San Francisco", "state": "CA"},
        }
    ]
    assert resp["usage"]["total_tokens"] == 67


def test_openai_stream_text():
    events = decode_stream(openai, "openai/stream_text.sse")
    assert events[0] == {
        "type": "message_start",
        "model": "gpt-4o-2024-08-06",
        "id": "chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL",
    }
    resp = c.collect(events)
    assert resp["content"].endswith(" weather app.")
    assert resp["stop_reason"] == "end_turn"
    assert resp["usage"] == {"input_tokens": 14, "output_tokens": 30, "total_tokens": 44}
    assert events[-1]["type"] == "message_end"


def test_openai_stream_tool_call():
    events = decode_stream(openai, "openai/stream_tool_call.sse")
    kinds = [e["type"] for e in events]
    assert kinds.count("tool_call_start") == 1 and kinds.count("tool_call_end") == 1
    assert kinds.count("tool_call_delta") > 3  # the arguments really arrive in pieces
    resp = c.collect(events)
    assert resp["tool_calls"] == [
        {
            "id": "call_CTf1nWJLqSeRgDqaCG27xZ74",
            "name": "get_weather",
            "arguments": {"city": "San Francisco", "state": "CA"},
        }
    ]
    assert resp["stop_reason"] == "tool_use"


def test_openai_embeddings():
    ctx = openai.decode_embeddings(
        c.embedding_request("text-embedding-ada-002", ["x"]), load("openai/embeddings_float.json")
    )
    m = c.Embeddings(vectors=c.vectors(ctx), model="text-embedding-ada-002", usage=c.usage(ctx))
    assert m.vectors.shape == (1, 1536) and m.vectors.dtype == np.float32
    assert not m.vectors.flags.writeable
    assert m.usage["input_tokens"] == load("openai/embeddings_float.json")["usage"]["prompt_tokens"]
    assert m.vectors[0, 0] == np.float32(
        load("openai/embeddings_float.json")["data"][0]["embedding"][0]
    )


def test_openai_request_embeddings_body():
    body = load("openai/request_embeddings.json")
    req = c.embedding_request(body["model"], [body["input"]], encoding_format="float")
    assert openai.encode_embeddings(req) == {
        **body,
        "input": [body["input"]],
    }


def test_openai_request_tools_body():
    body = load("openai/request_tools.json")
    fn = body["tools"][0]["function"]
    req = c.request(
        body["model"],
        [c.user(body["messages"][0]["content"])],
        tool_choice="auto",
        tools=[
            {"name": fn["name"], "description": fn["description"], "parameters": fn["parameters"]}
        ],
    )
    assert openai.encode_chat(req) == body


def test_openai_request_vision_body():
    body = load("openai/request_vision.json")
    parts = body["messages"][0]["content"]
    req = c.request(
        body["model"],
        [c.user(parts[0]["text"], c.image_url(parts[1]["image_url"]["url"]))],
        max_tokens=300,
    )
    assert openai.encode_chat(req) == body


# --- Anthropic -------------------------------------------------------------------------------


def test_anthropic_message_text():
    resp = anthropic.decode_chat(c.request("m"), load("anthropic/message_text.json"))["response"]
    assert_design_response(resp)
    assert (resp["content"], resp["id"], resp["model"]) == (
        "4200 + 42 = 4242",
        "msg_01EXuhhFC9buDpjCcznFPSDs",
        "claude-sonnet-4-20250514",
    )
    assert resp["usage"] == {
        "input_tokens": 17,
        "output_tokens": 15,
        "total_tokens": 32,
        "cache_read_tokens": 0,
        "cache_creation_tokens": 0,
    }


def test_anthropic_message_tool_use():
    resp = anthropic.decode_chat(c.request("m"), load("anthropic/message_tool_use.json"))[
        "response"
    ]
    assert_design_response(resp)
    assert resp["stop_reason"] == "tool_use"
    assert resp["tool_calls"] == [
        {
            "id": "toolu_01A9HHF5Ezy3oBrKmSgfASm9",
            "name": "get_weather",
            "arguments": {"location": "San Francisco, CA", "units": "f"},
        }
    ]
    assert resp["usage"]["input_tokens"] == 656


def test_anthropic_stream_text():
    for name in ["anthropic/stream_text.sse", "anthropic/stream_text_sdk_fixture.sse"]:
        events = decode_stream(anthropic, name)
        assert events[0]["type"] == "message_start" and events[0]["id"].startswith("msg_")
        resp = c.collect(events)
        assert resp["content"] and resp["stop_reason"] in ("end_turn", "max_tokens")
        assert resp["usage"]["output_tokens"] > 0


def test_anthropic_stream_text_values():
    resp = c.collect(decode_stream(anthropic, "anthropic/stream_text_sdk_fixture.sse"))
    expected = "".join(
        e["delta"]["text"]
        for e in map(
            lambda s: __import__("json").loads(s.data),
            iter_sse([raw("anthropic/stream_text_sdk_fixture.sse")]),
        )
        if e.get("type") == "content_block_delta"
    )
    assert resp["content"] == expected


def test_anthropic_stream_tool_use():
    events = decode_stream(anthropic, "anthropic/stream_tool_use.sse")
    resp = c.collect(events)
    assert resp["tool_calls"] == [
        {
            "id": "toolu_01QFtyC73Kpf7dLKmcXVHmmf",
            "name": "return_bool",
            "arguments": {"value": "True"},
        }
    ]
    assert resp["stop_reason"] == "tool_use"
    assert resp["usage"] == {"input_tokens": 418, "output_tokens": 33, "total_tokens": 451}
    assert [e["type"] for e in events].count("tool_call_end") == 1


def test_anthropic_stream_error_raises_overloaded():
    with pytest.raises(c.ServerError) as exc:
        decode_stream(anthropic, "anthropic/stream_error_overloaded.sse")
    assert exc.value.status_code == 529 and c.is_retryable(exc.value)
    assert "Overloaded" in str(exc.value)


def test_anthropic_request_tools_body():
    body = load("anthropic/request_tools.json")
    tool = body["tools"][0]
    req = c.request(
        body["model"],
        [
            {"role": "system", "content": [{**body["system"][0]}]},
            c.user(body["messages"][0]["content"]),
        ],
        max_tokens=16000,
        tools=[
            {
                "name": tool["name"],
                "description": tool["description"],
                "parameters": tool["input_schema"],
                "cache_control": tool["cache_control"],
            }
        ],
    )
    assert anthropic.encode_chat(req) == body


def test_anthropic_request_vision_body():
    body = load("anthropic/request_vision.json")
    parts = body["messages"][0]["content"]
    src = parts[1]["source"]
    req = c.request(
        body["model"],
        [c.user(parts[0]["text"], c.image_base64(src["data"], src["media_type"]))],
        max_tokens=1024,
    )
    assert anthropic.encode_chat(req, stream=True) == body


# --- Groq ------------------------------------------------------------------------------------


def test_groq_chat_text():
    resp = openai.decode_chat(c.request("m"), load("groq/chat_text.json"), "groq")["response"]
    assert_design_response(resp)
    assert resp["content"] == "The capital of France is Paris."
    assert resp["usage"] == {"input_tokens": 48, "output_tokens": 8, "total_tokens": 56}


def test_groq_chat_tool_calls():
    body = load("groq/chat_tool_calls.json")
    resp = openai.decode_chat(c.request("m"), body, "groq")["response"]
    assert_design_response(resp)
    wire = body["choices"][0]["message"]["tool_calls"]
    assert [t["id"] for t in resp["tool_calls"]] == [t["id"] for t in wire]
    assert [t["name"] for t in resp["tool_calls"]] == [t["function"]["name"] for t in wire]
    assert resp["tool_calls"][0]["arguments"] == __import__("json").loads(
        wire[0]["function"]["arguments"]
    )
    assert resp["stop_reason"] == "tool_use"


def test_groq_streams():
    resp = c.collect(decode_stream(openai, "groq/stream_text.sse"))
    assert resp["content"] and resp["stop_reason"] == "end_turn"
    assert resp["usage"]["input_tokens"] == 12 and resp["usage"]["output_tokens"] == 24
    resp = c.collect(decode_stream(openai, "groq/stream_tool_call.sse"))
    assert len(resp["tool_calls"]) >= 1 and resp["stop_reason"] == "tool_use"
    assert all(t["id"] and t["name"] and "arguments_error" not in t for t in resp["tool_calls"])


def test_groq_request_bodies():
    body = load("groq/request_tools.json")
    fn = body["tools"][0]["function"]
    req = c.request(
        body["model"],
        [c.system(body["messages"][0]["content"]), c.user(body["messages"][1]["content"])],
        n=1,
        stream=False,
        tool_choice="auto",
        tools=[{"name": fn["name"], "description": "", "parameters": fn["parameters"]}],
    )
    assert openai.encode_chat(req) == body
    body = load("groq/request_vision.json")
    parts = body["messages"][0]["content"]
    req = c.request(
        body["model"],
        [c.user(parts[0]["text"], c.image_url(parts[1]["image_url"]["url"]))],
        n=1,
        stream=False,
    )
    assert openai.encode_chat(req) == body


# --- xAI -------------------------------------------------------------------------------------


def test_xai_streams():
    resp = c.collect(decode_stream(openai, "xai/stream_text.sse"))
    assert resp["model"] == "grok-2-1212" and resp["content"].endswith("?")
    assert resp["usage"] == {
        "input_tokens": 9,
        "output_tokens": 10,
        "total_tokens": 19,
        "cache_read_tokens": 0,
    }
    resp = c.collect(decode_stream(openai, "xai/stream_tool_call.sse"))
    assert resp["stop_reason"] == "tool_use" and resp["tool_calls"][0]["name"]


def test_xai_request_bodies():
    body = load("xai/request_tools.json")
    fn = body["tools"][0]["function"]
    req = c.request(
        body["model"],
        [c.user("Return True.")],
        parallel_tool_calls=False,
        tool_choice="return_bool",
        tools=[{"name": fn["name"], "parameters": fn["parameters"]}],
    )
    encoded = openai.encode_chat(req, stream=True)
    encoded["tools"][0]["function"].pop("description")  # the recorder's SDK sent none
    assert encoded == body
    body = load("xai/request_vision.json")
    parts = body["messages"][0]["content"]
    media, data = parts[1]["image_url"]["url"][5:].split(";base64,")
    req = c.request(
        body["model"],
        [c.user(parts[0]["text"], c.image_base64(data, media))],
        **{
            k: v
            for k, v in body.items()
            if k not in ("model", "messages", "stream", "stream_options")
        },
    )
    encoded = openai.encode_chat(req, stream=body.get("stream", False))
    assert encoded["messages"] == body["messages"]


# --- Ollama ----------------------------------------------------------------------------------


def test_ollama_native_chat():
    resp = ollama.decode_native_chat(c.request("m"), load("ollama/native_chat.json"))["response"]
    assert_design_response(resp)
    assert resp["content"] == "Hello! How are you today?"
    assert resp["usage"] == {"input_tokens": 26, "output_tokens": 298, "total_tokens": 324}


def test_ollama_native_chat_tool_calls():
    resp = ollama.decode_native_chat(c.request("m"), load("ollama/native_chat_tool_calls.json"))[
        "response"
    ]
    assert resp["stop_reason"] == "tool_use"
    assert resp["tool_calls"] == [
        {
            "id": "call_0",
            "name": "get_current_weather",
            "arguments": {"format": "celsius", "location": "Paris, FR"},
        }
    ]


def test_ollama_native_embed():
    ctx = ollama.decode_embed(
        c.embedding_request("all-minilm", ["x"]), load("ollama/native_embed.json")
    )
    usage = c.usage(ctx)
    m = c.Embeddings(vectors=c.vectors(ctx), model="all-minilm", usage=usage)
    assert m.vectors.shape == (1, 10) and m.vectors.dtype == np.float32
    assert m.vectors[0, 0] == np.float32(0.010071029) and usage["input_tokens"] == 8


def test_ollama_openai_compatible_payloads():
    resp = openai.decode_chat(c.request("m"), load("ollama/openai_chat_text.json"), "ollama")[
        "response"
    ]
    assert_design_response(resp)
    assert (
        resp["content"] == load("ollama/openai_chat_text.json")["choices"][0]["message"]["content"]
    )
    body = load("ollama/openai_chat_tool_calls.json")
    resp = openai.decode_chat(c.request("m"), body, "ollama")["response"]
    assert resp["stop_reason"] == "tool_use"
    assert (
        resp["tool_calls"][0]["name"]
        == body["choices"][0]["message"]["tool_calls"][0]["function"]["name"]
    )
    resp = c.collect(decode_stream(openai, "ollama/openai_stream_text.sse"))
    assert resp["content"].startswith("Hello! How") and resp["stop_reason"] == "end_turn"
    resp = c.collect(decode_stream(openai, "ollama/openai_stream_tool_call.sse"))
    assert resp["stop_reason"] == "tool_use" and resp["tool_calls"][0]["arguments"]


def test_ollama_request_bodies():
    body = load("ollama/request_tools_native.json")
    fn = body["tools"][0]["function"]
    req = c.request(
        body["model"],
        body["messages"],
        tools=[
            {"name": fn["name"], "description": fn["description"], "parameters": fn["parameters"]}
        ],
    )
    encoded = openai.encode_chat(req)
    assert encoded["messages"] == body["messages"] and encoded["tools"] == body["tools"]
    body = load("ollama/request_vision_openai.json")
    parts = body["messages"][0]["content"]
    media, data = parts[1]["image_url"][5:].split(";base64,")
    encoded = openai.encode_chat(
        c.request(body["model"], [c.user(parts[0]["text"], c.image_base64(data, media))])
    )
    # Ollama also accepts a bare string here; Conduit sends OpenAI's {"url": ...} form
    assert encoded["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": parts[1]["image_url"]},
    }
