"""OpenAI-compatible wires (issue 15): reasoning, refusals, reasoning tokens, n > 1, strict
schemas, max_completion_tokens, documents and audio, on the recorded payloads."""

import json

import attrs
import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

import conduit as c
from conduit.providers import ollama, openai
from conduit.sse import iter_sse
from conduit.streams import collect, response_events
from tests.providers.helpers import chunkings, load, raw
from tests.providers.test_fixtures import assert_design_response, decode_stream

CHATS = {
    # fixture: (provider, stop reason, reasoning text starts, text starts, reasoning tokens)
    "openai/chat_refusal.json": ("openai", "refusal", None, "", None),
    "openai/chat_reasoning_tokens.json": ("openai", "end_turn", None, "4242", 64),
    "deepseek/chat_reasoning_content.json": ("openai", "end_turn", "We are asked", "The word", 315),
    "deepseek/chat_reasoning_content_pydantic_ai.json": (
        "openai",
        "end_turn",
        "Okay, the user",
        "Crossing",
        415,
    ),
    "deepseek/chat_tool_call_reasoning.json": ("openai", "tool_use", "The user is", "", 48),
    "groq/chat_reasoning.json": ("groq", "end_turn", "The user asks", "4", 95),
    "groq/chat_reasoning_qwen3.json": ("groq", "end_turn", "Okay, so the user", "The word", 570),
    "ollama/openai_chat_reasoning.json": ("ollama", "end_turn", "Okay, the user", '{ "city"', None),
    "ollama/openai_chat_reasoning_tool_calls.json": (
        "ollama",
        "tool_use",
        "The conversation",
        "",
        None,
    ),
}

STREAMS = {
    # fixture: (stop reason, reasoning text starts, text, reasoning tokens)
    "openai/stream_refusal.sse": ("refusal", None, "", None),
    "openai/stream_reasoning_tokens.sse": ("max_tokens", None, "", 50),
    "deepseek/stream_reasoning_content.sse": (
        "end_turn",
        "Hmm",
        "Hello there! 😊 How can I help you today?",
        198,
    ),
    "openai/stream_n3.sse": (
        "end_turn",
        None,
        '{"city":"San Francisco","temperature":65,"units":"f"}',
        None,
    ),
}

REFUSAL = "I'm very sorry, but I can't assist with that request."


def reasoning_of(resp):
    content = resp["content"]
    if isinstance(content, str):
        return None
    return "".join(b["text"] for b in content if b["type"] == "reasoning")


# --- every new payload decodes to DESIGN's shapes and round-trips -----------------------------


@pytest.mark.parametrize("name", sorted(CHATS))
def test_chat_payloads_decode_to_design_shapes(name):
    provider, stop, thought, text, reasoning_tokens = CHATS[name]
    resp = openai.decode_chat(c.request("m"), load(name), provider)["response"]
    assert_design_response(resp)
    assert resp["stop_reason"] == stop
    assert c.content(resp).startswith(text)
    if thought is None:
        assert isinstance(resp["content"], str)
    else:
        blocks = resp["content"]
        assert blocks[0]["type"] == "reasoning" and blocks[0]["text"].startswith(thought)
        assert all(b["type"] == "text" and b["text"] for b in blocks[1:])
    assert resp["usage"].get("reasoning_tokens") == reasoning_tokens
    assert collect(response_events(resp)) == resp


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_stream_payloads_collect_to_design_shapes(name):
    stop, thought, text, reasoning_tokens = STREAMS[name]
    resp = collect(decode_stream(openai, name, "openai"))
    assert_design_response(resp)
    assert resp["stop_reason"] == stop
    assert c.content(resp) == text
    assert (reasoning_of(resp) or None) is None if thought is None else True
    if thought is not None:
        assert reasoning_of(resp).startswith(thought)
    assert resp["usage"].get("reasoning_tokens") == reasoning_tokens
    assert collect(response_events(resp)) == resp


def test_the_deepseek_stream_equals_its_call_shape():
    resp = collect(decode_stream(openai, "deepseek/stream_reasoning_content.sse", "openai"))
    assert [b["type"] for b in resp["content"]] == ["reasoning", "text"]
    assert len(resp["content"][0]["text"]) > 100


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_reasoning_streams_decode_the_same_under_any_chunking(data):
    body = raw("deepseek/stream_reasoning_content.sse")
    cuts = data.draw(st.lists(st.integers(1, len(body) - 1), max_size=12))
    state, events = openai.stream_start("openai"), []
    for sse in iter_sse(chunkings(body, cuts)):
        state, out = openai.stream_step(state, sse)
        events += out
    events += openai.stream_end(state)
    assert collect(events) == collect(
        decode_stream(openai, "deepseek/stream_reasoning_content.sse")
    )


# --- refusals ---------------------------------------------------------------------------------


def test_a_refusal_is_reported_as_such():
    resp = openai.decode_chat(c.request("m"), load("openai/chat_refusal.json"))["response"]
    assert (resp["stop_reason"], resp["refusal"], resp["content"]) == ("refusal", REFUSAL, "")


def test_a_streamed_refusal_collects_like_the_call():
    events = decode_stream(openai, "openai/stream_refusal.sse", "openai")
    assert "refusal_delta" in {e["type"] for e in events}
    assert "content_delta" not in {e["type"] for e in events}
    resp = collect(events)
    assert (resp["stop_reason"], resp["refusal"], resp["content"]) == ("refusal", REFUSAL, "")


def test_no_refusal_means_no_refusal_key():
    resp = openai.decode_chat(c.request("m"), load("openai/chat_reasoning_tokens.json"))["response"]
    assert "refusal" not in resp


# --- n > 1 ------------------------------------------------------------------------------------

N3_TEXTS = [
    '{"city":"San Francisco","temperature":65,"units":"f"}',
    '{"city":"San Francisco","temperature":61,"units":"f"}',
    '{"city":"San Francisco","temperature":59,"units":"f"}',
]


def test_an_n3_stream_collects_to_choice_0_only():
    events = decode_stream(openai, "openai/stream_n3.sse", "openai")
    assert "".join(e["text"] for e in events if e["type"] == "content_delta") == N3_TEXTS[0]
    assert collect(events)["content"] == N3_TEXTS[0]
    assert collect(events)["choices"] == events[-1]["choices"]
    others = events[-1]["choices"]
    assert [r["content"] for r in others] == N3_TEXTS[1:]
    assert all(r["stop_reason"] == "end_turn" for r in others)


def n3_body():
    """The n=3 stream's answer as one chat completion (what the same call returns unstreamed)."""
    return {
        "id": "chatcmpl-ABfw2KKFuVXmEJgVwYfBvejMAdWtq",
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in enumerate(N3_TEXTS)
        ],
        "usage": {"prompt_tokens": 79, "completion_tokens": 42, "total_tokens": 121},
    }


def test_calls_and_streams_agree_on_every_choice():
    call = openai.decode_chat(c.request("m"), n3_body())["response"]
    events = decode_stream(openai, "openai/stream_n3.sse", "openai")
    streamed = collect(events)
    assert call["content"] == streamed["content"] == N3_TEXTS[0]
    assert [r["content"] for r in call["choices"]] == N3_TEXTS[1:]
    assert list(call["choices"]) == list(events[-1]["choices"]) == list(streamed["choices"])
    assert collect(response_events(call)) == call  # a replayed n=3 answer keeps its choices
    assert call["usage"]["total_tokens"] == 121  # the call's usage, on choice 0's response
    assert all(r["usage"]["total_tokens"] == 0 for r in call["choices"])


def test_one_choice_has_no_choices_key():
    resp = openai.decode_chat(c.request("m"), load("openai/chat_text.json"))["response"]
    assert "choices" not in resp


def test_other_choices_events_never_reach_choice_0():
    chunk = {"id": "x", "model": "m", "choices": [{"index": 1, "delta": {"content": "B"}}]}
    first = {"id": "x", "model": "m", "choices": [{"index": 0, "delta": {"content": "A"}}]}
    state, events = openai.stream_start(), []
    for data in (first, chunk, chunk, "[DONE]"):
        sse = type("S", (), {"data": data if isinstance(data, str) else json.dumps(data)})()
        state, out = openai.stream_step(state, sse)
        events += out
    events += openai.stream_end(state)
    assert collect(events)["content"] == "A"
    assert events[-1]["choices"][0]["content"] == "BB"


# --- reasoning sent back as each provider documents -------------------------------------------

THOUGHT = {"type": "reasoning", "text": "Paris is the capital."}
CALL = {"id": "call_1", "name": "final_result", "arguments": {"city": "Paris"}}


def test_ollama_replays_reasoning_as_recorded():
    want = load("ollama/request_openai_reasoning_replay.json")
    msgs = want["messages"]
    fn = want["tools"][0]["function"]
    req = c.request(
        want["model"],
        [
            c.user(msgs[0]["content"]),
            c.assistant(
                [{"type": "reasoning", "text": msgs[1]["reasoning"]}, c.text_block("Paris.")]
            ),
            c.user(msgs[2]["content"]),
        ],
        stream=False,
        tool_choice="auto",
        tools=[fn],
    )
    assert ollama.OLLAMA.encode(req, False) == want


def test_a_decoded_ollama_turn_goes_back_with_its_reasoning():
    ctx = openai.decode_chat(
        c.request("gpt-oss:20b", "Capital of France?"),
        load("ollama/openai_chat_reasoning.json"),
        "ollama",
    )
    body = ollama.OLLAMA.encode(c.reply(ctx, "Thanks"), False)
    assistant = body["messages"][1]
    assert assistant["reasoning"].startswith("Okay, the user is asking")
    assert assistant["content"] == '{ "city": "Paris", "country": "France" }'


def test_deepseek_gets_reasoning_content_back_on_tool_turns_only():
    deepseek = "https://api.deepseek.com"
    plain = c.assistant([THOUGHT, c.text_block("Paris.")])
    tooled = c.assistant([THOUGHT], [CALL])
    req = c.request(
        "deepseek-reasoner",
        [c.user("a"), plain, c.user("b"), tooled, c.tool_result("call_1", "ok")],
        base_url=deepseek,
    )
    msgs = openai.OPENAI.encode(req, False)["messages"]
    assert msgs[1] == {"role": "assistant", "content": "Paris."}
    assert msgs[3]["reasoning_content"] == THOUGHT["text"]
    assert msgs[3]["content"] is None and msgs[3]["tool_calls"][0]["id"] == "call_1"


@pytest.mark.parametrize("spec", ["openai", "groq", "grok"])
def test_services_without_a_replay_field_get_no_reasoning(spec):
    from conduit.providers import grok, groq

    module = {"openai": openai.OPENAI, "groq": groq.GROQ, "grok": grok.GROK}[spec]
    req = c.request(
        "m", [c.user("a"), c.assistant([THOUGHT], [CALL]), c.tool_result("call_1", "x")]
    )
    msg = module.encode(req, False)["messages"][1]
    assert set(msg) == {"role", "content", "tool_calls"}


def test_a_streamed_deepseek_turn_replays_through_the_wire():
    resp = collect(decode_stream(openai, "deepseek/stream_reasoning_content.sse", "openai"))
    ctx = c.request("deepseek-reasoner", "Hi", base_url="https://api.deepseek.com").set(
        "response", resp
    )
    body = openai.OPENAI.encode(c.reply(ctx, "And?"), False)
    assert body["messages"][1] == {"role": "assistant", "content": c.content(resp)}


# --- thinking options pass through ------------------------------------------------------------


def test_groq_reasoning_options_pass_through_as_recorded():
    from conduit.providers import groq

    want = load("groq/request_reasoning_format.json")
    req = c.request(
        want["model"],
        want["messages"][0]["content"],
        n=1,
        reasoning_effort="high",
        reasoning_format="parsed",
        stream=False,
    )
    assert groq.GROQ.encode(req, False) == want


@pytest.mark.parametrize(
    ("think", "effort"), [(True, "medium"), (False, "none"), ("high", "high"), ("low", "low")]
)
def test_ollama_think_becomes_reasoning_effort(think, effort):
    body = ollama.encode_chat(c.request("qwen3", "How many r in strawberry?", think=think))
    assert "think" not in body
    assert body["reasoning_effort"] == effort


def test_ollama_reasoning_effort_wins_over_think():
    body = ollama.encode_chat(c.request("gpt-oss", "x", think=True, reasoning_effort="low"))
    assert body["reasoning_effort"] == "low"


def test_ollama_native_thinking_decodes_to_a_reasoning_block():
    body = {
        "model": "qwen3",
        "done": True,
        "message": {"role": "assistant", "content": "3", "thinking": "s-t-r-a-w..."},
    }
    resp = ollama.decode_native_chat(c.request("qwen3"), body)["response"]
    assert list(resp["content"]) == [THOUGHT | {"text": "s-t-r-a-w..."}, c.text_block("3")]
    assert c.content(resp) == "3"


# --- max_completion_tokens --------------------------------------------------------------------


@pytest.mark.parametrize("model", ["o1", "o3-mini", "o4-mini-2025-04-16", "gpt-5", "gpt-5.1-mini"])
def test_reasoning_models_get_max_completion_tokens(model):
    body = openai.OPENAI.encode(c.request(model, "hi", max_tokens=64), False)
    assert body["max_completion_tokens"] == 64 and "max_tokens" not in body


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1-mini", "omni-moderation-latest"])
def test_other_models_keep_max_tokens(model):
    body = openai.OPENAI.encode(c.request(model, "hi", max_tokens=64), False)
    assert body["max_tokens"] == 64 and "max_completion_tokens" not in body


def test_max_completion_tokens_given_wins_and_other_services_keep_max_tokens():
    from conduit.providers import groq

    req = c.request("o3", "hi", max_tokens=64, max_completion_tokens=10)
    assert openai.OPENAI.encode(req, False)["max_completion_tokens"] == 10
    assert "max_tokens" not in openai.OPENAI.encode(req, False)
    assert groq.GROQ.encode(c.request("o3", "hi", max_tokens=64), False)["max_tokens"] == 64
    other = c.request("o3", "hi", max_tokens=64, base_url="http://localhost:8000/v1")
    assert openai.OPENAI.encode(other, False)["max_tokens"] == 64


def test_the_catalog_decides_the_parameter_mapping(monkeypatch, caplog):
    from conduit import catalog

    monkeypatch.setattr(catalog, "_added", [])
    monkeypatch.setattr(catalog, "_table", None)
    monkeypatch.setattr(catalog, "_warned", set())
    plain = c.request("my-reasoner", "hi", max_tokens=64, temperature=0.5)
    assert openai.OPENAI.encode(plain, False)["max_tokens"] == 64  # unknown: the name decides
    c.register_model(
        {
            "provider": "openai",
            "id": "my-reasoner",
            "max_tokens_param": "max_completion_tokens",
            "unsupported_options": ["temperature"],
        }
    )
    with caplog.at_level("WARNING", logger="conduit"):
        for _ in range(3):
            body = openai.OPENAI.encode(plain, False)
            assert body["max_completion_tokens"] == 64
            assert "temperature" not in body and "max_tokens" not in body
    assert [r.getMessage() for r in caplog.records] == [
        "openai:my-reasoner does not accept temperature: left out of the request (conduit.catalog)"
    ]  # said once, not on every call
    local = plain.set("base_url", "http://localhost:8000/v1")  # someone else's "my-reasoner"
    assert openai.OPENAI.encode(local, False)["temperature"] == 0.5
    c.register_model({"provider": "openai", "id": "o3", "max_tokens_param": "max_tokens"})
    assert openai.OPENAI.encode(c.request("o3", "hi", max_tokens=9), False)["max_tokens"] == 9


def test_catalog_refused_options_are_left_out_on_every_wire(caplog):
    from conduit.providers import anthropic, grok

    sonnet = c.request("claude-sonnet-5", "hi", temperature=0.2, top_k=3, stop="x")
    body = anthropic.encode_chat(sonnet)
    assert "temperature" not in body and "top_k" not in body and body["stop_sequences"] == ["x"]
    assert anthropic.encode_chat(sonnet.set("model", "claude-haiku-4-5"))["temperature"] == 0.2
    grok4 = grok.GROK.encode(c.request("grok-4", "hi", presence_penalty=1, seed=3), False)
    assert "presence_penalty" not in grok4 and grok4["seed"] == 3
    o3 = c.request("o3", "hi", temperature=0.2)
    assert "temperature" not in openai.OPENAI.encode(o3, False)
    assert o3["options"]["temperature"] == 0.2  # the request keeps what the caller asked


# --- strict schemas ---------------------------------------------------------------------------

CLOSED = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "tags": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"k": {"type": "string"}},
                "required": ["k"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["city", "tags"],
    "additionalProperties": False,
}


def fmt(schema, **extra):
    return {"type": "json_schema", "json_schema": {"name": "city", "schema": schema, **extra}}


def test_strict_schemas_qualify_only_when_closed_and_required():
    assert openai.is_strict_schema(CLOSED)
    open_inner = json.loads(json.dumps(CLOSED))
    del open_inner["properties"]["tags"]["items"]["additionalProperties"]
    assert not openai.is_strict_schema(open_inner)
    optional = dict(CLOSED, required=["city"])
    assert not openai.is_strict_schema(optional)
    assert not openai.is_strict_schema({"type": "array", "items": {"type": "string"}})


def test_response_formats_and_tools_are_strict_when_they_qualify():
    tools = [{"name": "f", "description": "", "parameters": CLOSED}]
    req = c.request("gpt-4o", "hi", response_format=fmt(CLOSED), tools=tools)
    body = openai.OPENAI.encode(req, False)
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["tools"][0]["function"]["strict"] is True
    loose = c.request("gpt-4o", "hi", response_format=fmt(dict(CLOSED, required=["city"])))
    assert "strict" not in openai.OPENAI.encode(loose, False)["response_format"]["json_schema"]


def test_strict_false_is_the_way_out():
    tools = [{"name": "f", "description": "", "parameters": CLOSED, "strict": False}]
    req = c.request("gpt-4o", "hi", response_format=fmt(CLOSED, strict=False), tools=tools)
    body = openai.OPENAI.encode(req, False)
    assert body["response_format"]["json_schema"]["strict"] is False
    assert body["tools"][0]["function"]["strict"] is False


def test_strict_is_only_added_for_openai_itself():
    from conduit.providers import groq

    tools = [{"name": "f", "description": "", "parameters": CLOSED}]
    req = c.request("m", "hi", response_format=fmt(CLOSED), tools=tools)
    for body in (groq.GROQ.encode(req, False), ollama.OLLAMA.encode(req, False)):
        assert "strict" not in body["response_format"]["json_schema"]
        assert "strict" not in body["tools"][0]["function"]


def test_function_tools_are_strict_when_every_parameter_is_required():
    def weather(city: str) -> str:
        """Weather in a city."""
        return city

    def forecast(city: str, days: int = 3) -> str:
        """Forecast for a city."""
        return city

    body = openai.OPENAI.encode(
        c.request("gpt-4o", "hi", tools=[c.tool(weather), c.tool(forecast)]), False
    )
    assert [t["function"].get("strict") for t in body["tools"]] == [True, None]


# --- documents and audio ----------------------------------------------------------------------


def test_a_pdf_is_a_file_part_as_recorded():
    want = load("openai/request_file_pdf.json")
    parts = want["messages"][0]["content"]
    data = parts[1]["file"]["file_data"].split(",", 1)[1]
    req = c.request(want["model"], [c.user(parts[0]["text"], c.document_base64(data))])
    assert openai.OPENAI.encode(req, False) == want


def test_audio_is_an_input_audio_part_as_recorded():
    want = load("openai/request_input_audio.json")
    parts = want["messages"][0]["content"]
    audio = parts[1]["input_audio"]
    req = c.request(want["model"], [c.user(parts[0]["text"], c.input_audio(audio["data"], "mp3"))])
    assert openai.OPENAI.encode(req, False) == want


def test_a_document_title_is_its_filename():
    req = c.request("gpt-4o", [c.user("Summarise", c.document_base64("JVBE", title="q3.pdf"))])
    part = openai.OPENAI.encode(req, False)["messages"][0]["content"][1]
    assert part["file"]["filename"] == "q3.pdf"


def test_openai_refuses_a_document_url_by_name():
    req = c.request("gpt-4o", [c.user("x", c.document_url("https://example.com/a.pdf"))])
    with pytest.raises(c.ValidationError, match="openai takes documents as base64"):
        openai.OPENAI.encode(req, False)


@pytest.mark.parametrize("name", ["groq", "grok", "ollama"])
@pytest.mark.parametrize("kind", ["document", "audio"])
def test_services_that_cannot_take_documents_or_audio_say_so(name, kind):
    block = c.document_base64("JVBE") if kind == "document" else c.input_audio("UklGRg==", "wav")
    with pytest.raises(c.ValidationError, match=f"^{name} cannot take"):
        getattr(c, f"{name}_call")(c.request("m", [c.user("x", block)], api_key="k"))


# --- through the shell ------------------------------------------------------------------------


@respx.mock
def test_a_refusal_through_openai_call_and_stream():
    url = "https://api.openai.com/v1/chat/completions"
    respx.post(url).mock(return_value=httpx.Response(200, content=raw("openai/chat_refusal.json")))
    ctx = c.openai_call(c.request("gpt-4o", "x", api_key="k"))
    assert ctx["response"]["stop_reason"] == "refusal" and ctx["response"]["refusal"] == REFUSAL
    respx.post(url).mock(
        return_value=httpx.Response(
            200,
            content=raw("openai/stream_refusal.sse"),
            headers={"content-type": "text/event-stream"},
        )
    )
    events = list(c.openai_stream(c.request("gpt-4o", "x", api_key="k")))
    assert collect(events)["refusal"] == REFUSAL


@respx.mock
def test_deepseek_reasoning_through_the_stream_shell():
    url = "https://api.deepseek.com/chat/completions"
    respx.post(url).mock(
        return_value=httpx.Response(
            200,
            content=raw("deepseek/stream_reasoning_content.sse"),
            headers={"content-type": "text/event-stream"},
        )
    )
    req = c.request("deepseek-reasoner", "Hi", api_key="k", base_url="https://api.deepseek.com")
    events = list(c.openai_stream(req))
    assert events[1]["type"] == "reasoning_delta"
    assert collect(events)["usage"]["reasoning_tokens"] == 198


def test_strict_leaves_out_schemas_with_keywords_strict_mode_lacks():
    unique = json.loads(json.dumps(CLOSED))
    unique["properties"]["tags"]["uniqueItems"] = True
    assert not openai.is_strict_schema(unique)
    tupled = dict(CLOSED, properties={**CLOSED["properties"], "pair": {"prefixItems": []}})
    assert not openai.is_strict_schema(dict(tupled, required=[*CLOSED["required"], "pair"]))


# --- an agent with thinking and tools, against a server that wants its reasoning back ---------

DEEPSEEK = "https://api.deepseek.com"


def deepseek_server(seen):
    """Answer like DeepSeek in thinking mode: a tool turn sent back without its
    ``reasoning_content`` is a 400, as the API documents."""

    def handler(request):
        body = json.loads(request.content)
        seen.append(body)
        turns = [m for m in body["messages"] if m["role"] == "assistant" and m.get("tool_calls")]
        if any(not m.get("reasoning_content") for m in turns):
            error = {
                "error": {
                    "message": "The reasoning_content in the thinking mode must be "
                    "passed back to the API.",
                    "type": "invalid_request_error",
                }
            }
            return httpx.Response(400, json=error)
        if body.get("stream"):
            return httpx.Response(
                200,
                content=raw("deepseek/stream_reasoning_content.sse"),
                headers={"content-type": "text/event-stream"},
            )
        name = (
            "deepseek/chat_reasoning_content.json"
            if turns
            else "deepseek/chat_tool_call_reasoning.json"
        )
        return httpx.Response(200, content=raw(name))

    return handler


def weather(location: str) -> str:
    """Weather for a location."""
    return f"Sunny in {location}"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_agent_with_thinking_and_tools_completes_on_deepseek(mode):
    import asyncio

    seen = []
    req = c.request("deepseek-reasoner", "Weather in SF?", api_key="k", base_url=DEEPSEEK)
    with respx.mock:
        respx.post(f"{DEEPSEEK}/chat/completions").mock(side_effect=deepseek_server(seen))
        if mode == "sync":
            ctx = c.agent(c.openai_call, [c.tool(weather)])(req)
        else:
            ctx = asyncio.run(c.aagent(c.openai_acall, [c.tool(weather)])(req))
    assert ctx["iterations"] == 2
    assert c.content(ctx).startswith('The word "strawberry"')
    assert seen[1]["messages"][1]["reasoning_content"].startswith("The user is asking")


@pytest.mark.parametrize(
    ("base_url", "official"),
    [
        (None, True),
        ("https://api.openai.com/v1", True),
        ("https://my-resource.openai.azure.com/openai/v1", True),
        ("https://api.deepseek.com", False),
        ("http://localhost:8000/v1", False),
    ],
)
def test_openai_itself_is_told_apart_from_compatible_servers(base_url, official):
    assert openai.dialect_for("openai", c.request("m", base_url=base_url)).official is official


# --- with_schema(strict=...) ------------------------------------------------------------------


@attrs.frozen
class Closed:
    city: str
    days: int


@attrs.frozen
class WithDefault:
    city: str
    days: int = 3


def schema_body(schema, model="gpt-4o", **options):
    """The OpenAI body with_schema sends for *schema* (encoded from the mock's wire request)."""
    script = c.mock_script('{"city": "Oslo", "days": 2}')
    ctx = c.mock_call(c.with_schema(schema, **options)(c.request(model, "x", mock=script)))
    assert ctx["parsed"] == schema("Oslo", 2)
    return openai.OPENAI.encode(script.calls[0], False)["response_format"]["json_schema"]


def test_with_schema_is_strict_when_the_schema_qualifies_unless_told_not_to():
    assert schema_body(Closed)["strict"] is True
    assert "strict" not in schema_body(WithDefault)  # an optional field: sent unstrict
    assert schema_body(Closed, strict=False)["strict"] is False
    assert schema_body(Closed, strict=True)["strict"] is True


def test_with_schema_strict_true_refuses_a_schema_that_cannot_be_strict():
    with pytest.raises(c.ValidationError, match="WithDefault does not qualify for strict mode"):
        c.with_schema(WithDefault, strict=True)
    with pytest.raises(c.ValidationError, match="True, False or None"):
        c.with_schema(Closed, strict="yes")


def test_with_schema_strict_false_reaches_anthropic_as_a_plain_tool():
    from conduit.providers import anthropic

    script = c.mock_script('{"city": "Oslo", "days": 2}')
    ask = c.with_schema(Closed, strict=False)
    c.mock_call(ask(c.request("claude-haiku-4-5", "x", mock=script)))
    body = anthropic.encode_chat(script.calls[0])
    assert body["tools"][-1]["name"] == "Closed" and "strict" not in body["tools"][-1]
