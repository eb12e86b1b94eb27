"""Laws of the provider codecs, over generated conversations and responses."""

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import conduit as c
from conduit.providers import anthropic, openai
from tests.strategies import json_values, responses

ids = st.text("abcdefghijklmnop0123456789", min_size=1, max_size=8)
args = st.dictionaries(st.text(min_size=1, max_size=5), json_values, max_size=3)
texts = st.text(max_size=20)
words = st.text(min_size=1, max_size=20)  # a message must say something


@st.composite
def conversations(draw):
    """Valid conversations: tool results always answer the assistant turn before them."""
    msgs = [c.system(draw(texts))] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(1, 4))):
        msgs.append(
            c.user(draw(words))
            if draw(st.booleans())
            else c.user(draw(texts), c.image_url("https://x/y.png"))
        )
        calls = [
            {
                "id": f"call_{i}_{draw(ids)}",
                "name": draw(st.sampled_from(["f", "g"])),
                "arguments": draw(args),
            }
            for i in range(draw(st.integers(0, 2)))
        ]
        msgs.append(c.assistant(draw(texts) if calls else draw(words), calls))
        msgs.extend(
            c.tool_result(call["id"], draw(texts), is_error=draw(st.booleans())) for call in calls
        )
    return c.request("m", msgs, tools=[{"name": "f", "parameters": {"type": "object"}}])


def to_openai(resp):
    reasons = {
        "end_turn": "stop",
        "max_tokens": "length",
        "tool_use": "tool_calls",
        "content_filter": "content_filter",
        "stop_sequence": "stop",
    }
    u = resp["usage"]
    calls = [
        {
            "id": t["id"],
            "type": "function",
            "function": {"name": t["name"], "arguments": json.dumps(c.thaw(t["arguments"]))},
        }
        for t in resp["tool_calls"]
    ]
    message = {"role": "assistant", "content": resp["content"] or None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": resp["id"],
        "model": resp["model"],
        "choices": [
            {"index": 0, "message": message, "finish_reason": reasons[resp["stop_reason"]]}
        ],
        "usage": {
            "prompt_tokens": u["input_tokens"],
            "completion_tokens": u["output_tokens"],
            "total_tokens": u["total_tokens"],
        },
    }


def to_anthropic(resp):
    content = [{"type": "text", "text": resp["content"]}] if resp["content"] else []
    content += [
        {"type": "tool_use", "id": t["id"], "name": t["name"], "input": c.thaw(t["arguments"])}
        for t in resp["tool_calls"]
    ]
    return {
        "id": resp["id"],
        "model": resp["model"],
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": resp["stop_reason"],
        "usage": {
            "input_tokens": resp["usage"]["input_tokens"],
            "output_tokens": resp["usage"]["output_tokens"],
        },
    }


@given(responses)
def test_openai_decode_round_trips_any_response(resp):
    decoded = openai.decode_chat(c.request("m"), to_openai(resp))["response"]
    expected = resp.set("stop_reason", "tool_use" if resp["tool_calls"] else "end_turn")
    assert decoded == expected


@given(responses)
def test_anthropic_decode_round_trips_any_response(resp):
    decoded = anthropic.decode_chat(c.request("m"), to_anthropic(resp))["response"]
    expected = resp.set("stop_reason", "tool_use" if resp["tool_calls"] else "end_turn")
    assert decoded == expected


@given(conversations())
def test_openai_encoding_keeps_every_message_and_argument(req):
    body = openai.encode_chat(req)
    assert [m["role"] for m in body["messages"]] == [m["role"] for m in req["messages"]]
    for sent, msg in zip(body["messages"], req["messages"], strict=True):
        for wire, call in zip(sent.get("tool_calls", []), msg.get("tool_calls") or [], strict=True):
            assert json.loads(wire["function"]["arguments"]) == c.thaw(call["arguments"])
    json.dumps(body)  # serialisable as is


@given(conversations())
def test_anthropic_encoding_follows_the_messages_api_rules(req):
    body = anthropic.encode_chat(req)
    roles = [m["role"] for m in body["messages"]]
    assert set(roles) <= {"user", "assistant"}
    assert all(a != b for a, b in itertools.pairwise(roles))  # turns alternate
    assert body["max_tokens"] == anthropic.DEFAULT_MAX_TOKENS
    seen_tool_uses = set()
    for m in body["messages"]:
        blocks = (
            m["content"]
            if isinstance(m["content"], list)
            else [{"type": "text", "text": m["content"]}]
        )
        for b in blocks:
            assert not (b["type"] == "text" and b["text"] == "") or isinstance(m["content"], str)
            if b["type"] == "tool_use":
                seen_tool_uses.add(b["id"])
            if b["type"] == "tool_result":
                assert b["tool_use_id"] in seen_tool_uses
    systems = [m["content"] for m in req["messages"] if m["role"] == "system"]
    assert body.get("system", "") == "\n\n".join(s for s in systems if s)
    json.dumps(body)


def test_anthropic_rejects_an_empty_message_clearly():
    with pytest.raises(c.ValidationError, match=r"message 1 \(assistant\) is empty"):
        anthropic.encode_chat(c.request("m", [c.user("hi"), c.assistant(""), c.user("again")]))


@given(conversations())
def test_anthropic_never_sends_an_empty_text_block(req):
    for m in anthropic.encode_chat(req)["messages"]:
        if isinstance(m["content"], list):
            assert all(b.get("text") != "" for b in m["content"] if b["type"] == "text")


@given(conversations())
def test_encoders_do_not_mutate_and_are_deterministic(req):
    before = c.thaw(req)
    for module in (openai, anthropic):
        assert module.encode_chat(req) == module.encode_chat(req)
    assert c.thaw(req) == before


def test_anthropic_json_mode_without_schema_is_a_clear_error():
    with pytest.raises(c.ValidationError, match="Anthropic has no response_format"):
        anthropic.encode_chat(c.request("m", "hi", response_format={"type": "json_object"}))
