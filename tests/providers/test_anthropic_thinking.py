"""Anthropic extended thinking, redacted thinking and refusals on the real wire (issue 15).

Every recorded payload decodes to DESIGN §2 shapes and round-trips; reasoning blocks go back
exactly as received; an agent with thinking and tools completes against a server that rejects,
as the real API does, a tool turn missing its signed thinking block.
"""

import asyncio
import json

import httpx
import pytest
import respx

import conduit as c
from conduit.providers import anthropic
from conduit.request import response_message
from conduit.sse import iter_sse
from tests.providers.helpers import chunkings, load, raw

URL = "https://api.anthropic.com/v1/messages"
THINKING = {"type": "enabled", "budget_tokens": 3000}
FIRST = load("anthropic/message_thinking_tool_use.json")
SECOND = load("anthropic/message_thinking_after_tool_result.json")


def decode(name):
    return anthropic.decode_chat(c.request("m"), load(f"anthropic/{name}"))["response"]


def decode_stream(data):
    chunks = data if isinstance(data, list) else [data]
    state, events = anthropic.stream_start(), []
    for sse in iter_sse(chunks):
        state, out = anthropic.stream_step(state, sse)
        events.extend(out)
    return events + anthropic.stream_end(state)


def design_block(block):
    kind = block["type"]
    if kind == "text":
        return set(block) == {"type", "text"} and isinstance(block["text"], str)
    assert kind == "reasoning"
    assert set(block) <= {"type", "text", "signature", "redacted"}
    return all(isinstance(v, str) for v in block.values())


# --- decoding ---------------------------------------------------------------------------------

MESSAGES = [
    "message_thinking.json",
    "message_thinking_tool_use.json",
    "message_thinking_after_tool_result.json",
    "message_redacted_thinking.json",
    "message_refusal_vercel_fixture.json",
    "message_text.json",
    "message_tool_use.json",
]


@pytest.mark.parametrize("name", MESSAGES)
def test_every_message_decodes_to_design_shapes_and_round_trips(name):
    resp = decode(name)
    assert resp["stop_reason"] in c.response.STOP_REASONS
    if not isinstance(resp["content"], str):
        assert all(design_block(b) for b in resp["content"])
    assert c.collect(c.response_events(resp)) == resp


def test_thinking_becomes_a_signed_reasoning_block_before_the_text():
    body = load("anthropic/message_thinking.json")
    resp = decode("message_thinking.json")
    thinking, text = body["content"]
    assert [b["type"] for b in resp["content"]] == ["reasoning", "text"]
    assert resp["content"][0] == {
        "type": "reasoning",
        "text": thinking["thinking"],
        "signature": thinking["signature"],
    }
    assert c.content({"response": resp}) == text["text"]


def test_thinking_with_a_tool_call():
    resp = decode("message_thinking_tool_use.json")
    assert [b["type"] for b in resp["content"]] == ["reasoning", "text"]
    assert resp["stop_reason"] == "tool_use"
    assert resp["tool_calls"][0]["name"] == "get_user_country"


def test_redacted_thinking_keeps_its_data():
    body = load("anthropic/message_redacted_thinking.json")
    resp = decode("message_redacted_thinking.json")
    assert resp["content"][0] == {
        "type": "reasoning",
        "text": "",
        "redacted": body["content"][0]["data"],
    }
    assert c.content({"response": resp}).startswith("I notice")


def test_refusal_is_its_own_stop_reason_with_the_explanation():
    body = load("anthropic/message_refusal_vercel_fixture.json")
    resp = decode("message_refusal_vercel_fixture.json")
    assert resp["stop_reason"] == "refusal"
    assert resp["refusal"] == body["stop_details"]["explanation"]
    assert resp["content"] == ""


def test_text_answers_are_unchanged():
    resp = decode("message_text.json")
    assert isinstance(resp["content"], str) and "refusal" not in resp


# --- streams ----------------------------------------------------------------------------------

STREAMS = {
    "stream_thinking.sse": "message_thinking.json",
    "stream_thinking_pydantic_ai.sse": None,
    "stream_redacted_thinking.sse": None,
    "stream_refusal.sse": None,
    "stream_refusal_sdk_fixture.sse": None,
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_every_stream_decodes_to_design_shapes_and_round_trips(name):
    data = raw(f"anthropic/{name}")
    events = decode_stream(data)
    resp = c.collect(events)
    if not isinstance(resp["content"], str):
        assert all(design_block(b) for b in resp["content"])
    assert c.collect(c.response_events(resp)) == resp
    for cuts in ([7, 100, 1000], list(range(3, len(data), 97))):  # any chunking
        assert c.collect(decode_stream(chunkings(data, cuts))) == resp


def test_thinking_stream_collects_like_a_signed_block():
    data = raw("anthropic/stream_thinking.sse")
    events = decode_stream(data)
    kinds = [e["type"] for e in events]
    assert kinds.index("reasoning_delta") < kinds.index("content_delta")
    signed = [e for e in events if e.get("signature")]
    assert len(signed) == 1 and signed[0]["text"] == ""
    resp = c.collect(events)
    reasoning, text = resp["content"]
    assert reasoning["type"] == "reasoning" and reasoning["signature"] == signed[0]["signature"]
    assert reasoning["text"].startswith("I need to find all prime numbers below 400")
    assert text["type"] == "text" and c.content({"response": resp}) == text["text"]


def test_redacted_thinking_stream_keeps_both_blocks():
    resp = c.collect(decode_stream(raw("anthropic/stream_redacted_thinking.sse")))
    kinds = [(b["type"], "redacted" in b) for b in resp["content"]]
    assert kinds == [("reasoning", True), ("reasoning", True), ("text", False)]


@pytest.mark.parametrize("name", ["stream_refusal.sse", "stream_refusal_sdk_fixture.sse"])
def test_stream_refusal_arrives_as_a_refusal_delta(name):
    events = decode_stream(raw(f"anthropic/{name}"))
    assert [e["type"] for e in events][-2:] == ["refusal_delta", "message_end"]
    resp = c.collect(events)
    assert resp["stop_reason"] == "refusal" and resp["refusal"] == events[-2]["text"]
    assert resp["refusal"].startswith("This request was")  # stop_details.explanation


def test_stream_thinking_tokens_become_reasoning_tokens():
    resp = c.collect(decode_stream(raw("anthropic/stream_refusal.sse")))
    assert "reasoning_tokens" not in resp["usage"]  # the recording's 0: no thinking, as on OpenAI
    usage = {
        "input_tokens": 3,
        "output_tokens": 40,
        "output_tokens_details": {"thinking_tokens": 31},
    }
    assert anthropic.decode_usage(usage)["reasoning_tokens"] == 31


# --- encoding back ----------------------------------------------------------------------------


def test_reasoning_goes_back_exactly_as_recorded_with_the_tool_result():
    recorded = load("anthropic/request_thinking_tool_result.json")
    question = "What is the largest city in the user country?"
    ctx = anthropic.decode_chat(c.request("claude-sonnet-4-0", question, thinking=THINKING), FIRST)
    call = c.tool_calls(ctx)[0]
    turns = [response_message(ctx["response"]), c.tool_result(call["id"], "Mexico")]
    body = anthropic.encode_chat(ctx.set("messages", ctx["messages"].extend(turns)))
    assert body["messages"][1] == recorded["messages"][1]  # the assistant turn, exactly
    result = recorded["messages"][2]["content"][0]
    assert body["messages"][2]["content"][0] == {k: v for k, v in result.items() if k != "is_error"}
    assert body["thinking"] == recorded["thinking"]


@pytest.mark.parametrize(
    ("request_name", "message_name"),
    [
        ("request_thinking_replay.json", "message_thinking.json"),
        ("request_redacted_thinking_replay.json", "message_redacted_thinking.json"),
    ],
)
def test_replayed_assistant_turns_match_the_recordings(request_name, message_name):
    recorded = load(f"anthropic/{request_name}")
    resp = decode(message_name)
    body = anthropic.encode_chat(c.request("m", [c.user("q"), response_message(resp)]))
    # the recorders add null fields (Mirascope's "citations": null); the rest is exact
    sent = [
        {k: v for k, v in b.items() if v is not None} for b in recorded["messages"][1]["content"]
    ]
    assert body["messages"][1] == {"role": "assistant", "content": sent}


def test_unsigned_reasoning_is_not_sent_to_anthropic():
    turn = c.assistant([{"type": "reasoning", "text": "from deepseek"}, c.text_block("Hi")])
    body = anthropic.encode_chat(c.request("m", [c.user("q"), turn, c.user("more")]))
    assert body["messages"][1]["content"] == "Hi"


def test_thinking_options_pass_through_and_leave_room_for_the_answer():
    body = anthropic.encode_chat(c.request("m", "q", thinking=THINKING))
    assert body["thinking"] == THINKING and body["max_tokens"] > THINKING["budget_tokens"]
    body = anthropic.encode_chat(c.request("m", "q", thinking=THINKING, max_tokens=5000))
    assert body["max_tokens"] == 5000


# --- with_schema ------------------------------------------------------------------------------

CITY = {
    "title": "city",
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
}


def _answer(content, tool_input=None, stop="end_turn"):
    blocks = [
        {"type": "thinking", "thinking": "The capital.", "signature": "sig-1"},
        {"type": "text", "text": content},
    ]
    if tool_input is not None:
        blocks.append({"type": "tool_use", "id": "toolu_9", "name": "city", "input": tool_input})
        stop = "tool_use"
    return {
        "id": "msg_s",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": blocks,
        "stop_reason": stop,
        "usage": {"input_tokens": 5, "output_tokens": 5},
    }


def _reject_forced_tools(request):
    body = json.loads(request.content)
    if body.get("thinking") and body.get("tool_choice", {}).get("type") in ("any", "tool"):
        return httpx.Response(
            400,
            json={
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "Thinking may not be enabled when tool_choice forces tool use.",
                },
            },
        )
    return None


def test_with_schema_under_thinking_does_not_force_the_tool():
    fmt = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY}}
    body = anthropic.encode_chat(c.request("m", "x", thinking=THINKING, response_format=fmt))
    assert body["tool_choice"] == {"type": "auto"}
    assert body["tools"][-1]["name"] == "city" and "city tool" in body["system"]
    with respx.mock:
        route = respx.post(URL).mock(
            side_effect=lambda r: (
                _reject_forced_tools(r)
                or httpx.Response(200, json=_answer("Here it is.", {"name": "Paris"}))
            )
        )
        req = c.request("claude", "Capital of France?", thinking=THINKING, api_key="k")
        ctx = c.anthropic_call(c.with_schema(CITY)(req))
    assert ctx["parsed"] == {"name": "Paris"} and route.call_count == 1


def test_with_schema_under_thinking_reads_json_text_too():
    req = c.request("claude", "Capital of France?", thinking=THINKING, api_key="k")
    with respx.mock:
        respx.post(URL).mock(
            side_effect=lambda r: (
                _reject_forced_tools(r) or httpx.Response(200, json=_answer('{"name": "Paris"}'))
            )
        )
        ctx = c.anthropic_call(c.with_schema(CITY)(req))
    assert ctx["parsed"] == {"name": "Paris"}


def test_a_schema_answer_goes_into_the_conversation_as_json_text():
    """The answer tool is how the middleware asks; the conversation records the answer as the
    JSON text it stands for, so the next turn sends no tool_use without its tool_result (a
    400 on Anthropic) and can go to any provider."""
    answers = iter(
        [_answer("Here it is.", {"name": "Paris"}), _answer("", {"name": "Lyon"}, "tool_use")]
    )
    with respx.mock:
        route = respx.post(URL).mock(side_effect=lambda r: httpx.Response(200, json=next(answers)))
        req = c.with_schema(CITY)(c.request("claude", "Capital of France?", api_key="k"))
        ctx = c.anthropic_call(req)
        assert ctx["parsed"] == {"name": "Paris"} and not c.tool_calls(ctx)
        assert ctx["response"]["stop_reason"] == "end_turn"
        assert [b["type"] for b in ctx["response"]["content"]] == ["reasoning", "text", "text"]
        assert c.content(ctx).endswith('{"name": "Paris"}')
        second = c.anthropic_call(c.reply(ctx, "And the second city?"))
    assert second["parsed"] == {"name": "Lyon"} and c.content(second) == '{"name": "Lyon"}'
    sent = json.loads(route.calls[1].request.content)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    kept = sent[1]["content"]
    assert all(b["type"] != "tool_use" for b in kept), kept
    assert kept[-1] == {"type": "text", "text": '{"name": "Paris"}'}
    assert second["messages"] == c.reply(ctx, "And the second city?")["messages"]


def test_an_agent_with_its_own_tools_and_a_schema_runs_them_then_answers():
    """With the caller's tools beside the answer tool, the model may call either (tool_choice
    any, the answer tool named in the system prompt); a turn calling the caller's tools is not
    an invalid answer: the agent runs them, and the next turn answers."""

    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    use = {"type": "tool_use", "id": "toolu_w", "name": "weather", "input": {"city": "Paris"}}
    answers = iter(
        [
            {**_answer(""), "content": [use], "stop_reason": "tool_use"},
            _answer("", {"name": "Paris"}),
        ]
    )
    with respx.mock:
        route = respx.post(URL).mock(side_effect=lambda r: httpx.Response(200, json=next(answers)))
        req = c.with_schema(CITY)(c.request("claude", "Where is it sunny?", api_key="k"))
        ctx = c.agent(c.anthropic_call, [weather])(req)
    assert ctx["parsed"] == {"name": "Paris"} and ctx["iterations"] == 2
    first, second = (json.loads(call.request.content) for call in route.calls)
    assert first["tool_choice"] == {"type": "any"} and "city tool" in first["system"]
    assert [t["name"] for t in first["tools"]] == ["weather", "city"]
    assert second["messages"][-1]["content"][0]["content"] == "sunny in Paris"  # the tool ran


def test_with_schema_reports_a_refusal_and_does_not_retry():
    req = c.request("claude", "Something bad", api_key="k")
    with respx.mock:
        route = respx.post(URL).mock(
            return_value=httpx.Response(
                200, content=raw("anthropic/message_refusal_vercel_fixture.json")
            )
        )
        with pytest.raises(c.ValidationError, match="refused") as info:
            c.anthropic_call(c.with_schema(CITY)(req))
    assert route.call_count == 1
    assert info.value.data["refusal"].startswith("This request triggered restrictions")
    assert info.value.data["stop_reason"] == "refusal"


# --- documents ---------------------------------------------------------------------------------


def test_document_blocks_encode_as_recorded():
    for name, block in [
        ("request_document_base64.json", None),
        ("request_document_url.json", None),
    ]:
        recorded = load(f"anthropic/{name}")
        text, doc = recorded["messages"][0]["content"]
        source = doc["source"]
        block = (
            c.document_url(source["url"])
            if source["type"] == "url"
            else c.document_base64(source["data"], source["media_type"])
        )
        body = anthropic.encode_chat(
            c.request(recorded["model"], [c.user(text["text"], block)], max_tokens=16000)
        )
        assert body["messages"][0]["content"][1] == doc
        assert body["messages"][0]["content"][0] == {"type": "text", "text": text["text"]}


def test_document_title_is_sent():
    block = c.document_url("https://example.com/a.pdf", title="A paper")
    body = anthropic.encode_chat(c.request("m", [c.user("Sum up", block)]))
    assert body["messages"][0]["content"][1]["title"] == "A paper"


def test_audio_is_refused_by_name():
    req = c.request("m", [c.user("Transcribe", c.input_audio("UklGRg==", "wav"))])
    with pytest.raises(c.ValidationError, match="anthropic cannot take audio"):
        anthropic.encode_chat(req)


# --- an agent with thinking and tools, against a server that checks signatures ----------------


def get_user_country() -> str:
    """Return the user's country."""
    return "Mexico"


def _sse(message):
    """The Messages stream that carries *message*, as the API writes one."""

    def line(kind, data):
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    start = {k: v for k, v in message.items() if k != "content"}
    out = [line("message_start", {"message": {**start, "content": [], "stop_reason": None}})]
    for i, block in enumerate(message["content"]):
        kind = block["type"]
        empty = {
            "thinking": {"type": "thinking", "thinking": "", "signature": ""},
            "text": {"type": "text", "text": ""},
            "tool_use": {**block, "input": {}},
        }[kind]
        out.append(line("content_block_start", {"index": i, "content_block": empty}))
        if kind == "thinking":
            half = len(block["thinking"]) // 2
            for piece in (block["thinking"][:half], block["thinking"][half:]):
                delta = {"type": "thinking_delta", "thinking": piece}
                out.append(line("content_block_delta", {"index": i, "delta": delta}))
            delta = {"type": "signature_delta", "signature": block["signature"]}
            out.append(line("content_block_delta", {"index": i, "delta": delta}))
        elif kind == "text":
            delta = {"type": "text_delta", "text": block["text"]}
            out.append(line("content_block_delta", {"index": i, "delta": delta}))
        else:
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            out.append(line("content_block_delta", {"index": i, "delta": delta}))
        out.append(line("content_block_stop", {"index": i}))
    out.append(
        line(
            "message_delta",
            {"delta": {"stop_reason": message["stop_reason"]}, "usage": {"output_tokens": 9}},
        )
    )
    out.append(line("message_stop", {}))
    return "".join(out).encode()


def _error(message):
    return httpx.Response(
        400, json={"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    )


def signature_server(request):
    """Answer as the Messages API does with thinking on: a tool turn must come back with the
    signed thinking block that preceded it, unchanged."""
    body = json.loads(request.content)
    stream = body.get("stream", False)
    messages = body["messages"]
    if len(messages) == 1:
        answer = FIRST
    else:
        turn = messages[1]
        blocks = turn["content"] if isinstance(turn["content"], list) else []
        if not blocks or blocks[0].get("type") not in ("thinking", "redacted_thinking"):
            return _error(
                "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                "`text`. When `thinking` is enabled, a final `assistant` message must start with "
                "a thinking block."
            )
        if blocks[0] != FIRST["content"][0]:
            return _error("messages.1.content.0: Invalid `signature` in `thinking` block")
        answer = SECOND
    if stream:
        return httpx.Response(
            200, content=_sse(answer), headers={"content-type": "text/event-stream"}
        )
    return httpx.Response(200, json=answer)


def _req():
    return c.request(
        "claude-sonnet-4-0",
        "What is the largest city in the user country?",
        thinking=THINKING,
        max_tokens=4096,
        api_key="sk-test",
    )


def _check_run(ctx, route):
    assert route.call_count == 2
    assert "Mexico City" in c.content(ctx)
    assistant = ctx["messages"][1]
    assert assistant["content"][0]["signature"] == FIRST["content"][0]["signature"]


def test_the_loopback_server_rejects_a_tool_turn_without_its_thinking():
    ctx = anthropic.decode_chat(_req(), FIRST)
    call = c.tool_calls(ctx)[0]
    bare = c.assistant(c.content(ctx), c.tool_calls(ctx))  # the signed block dropped
    with respx.mock:
        respx.post(URL).mock(side_effect=signature_server)
        with pytest.raises(c.BadRequestError, match="thinking"):
            c.anthropic_call(
                _req().set(
                    "messages", ctx["messages"].extend([bare, c.tool_result(call["id"], "Mexico")])
                )
            )


def test_agent_with_thinking_and_tools():
    with respx.mock:
        route = respx.post(URL).mock(side_effect=signature_server)
        ctx = c.agent(c.anthropic_call, [get_user_country])(_req())
    _check_run(ctx, route)


def test_aagent_with_thinking_and_tools():
    async def run():
        with respx.mock:
            route = respx.post(URL).mock(side_effect=signature_server)
            return await c.aagent(c.anthropic_acall, [get_user_country])(_req()), route

    _check_run(*asyncio.run(run()))


def test_agent_stream_with_thinking_and_tools():
    with respx.mock:
        route = respx.post(URL).mock(side_effect=signature_server)
        events = list(c.agent_stream(c.anthropic_stream, [get_user_country])(_req()))
    assert route.call_count == 2
    kinds = [e["type"] for e in events]
    assert kinds.count("message_end") == 2 and "tool_result" in kinds
    assert any(e.get("signature") == FIRST["content"][0]["signature"] for e in events)
    text = "".join(e["text"] for e in events if e["type"] == "content_delta")
    assert "Mexico City" in text


def test_aagent_stream_with_thinking_and_tools():
    async def run():
        with respx.mock:
            route = respx.post(URL).mock(side_effect=signature_server)
            run_ = c.aagent_stream(c.anthropic_astream, [get_user_country])
            return [e async for e in run_(_req())], route

    events, route = asyncio.run(run())
    assert route.call_count == 2
    assert sum(e["type"] == "message_end" for e in events) == 2
