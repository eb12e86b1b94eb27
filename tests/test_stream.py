import pytest
from hypothesis import given
from hypothesis import strategies as st

import conduit as c
from tests.strategies import reasoned_responses, responses


@given(responses)
def test_collect_inverts_response_events(resp):
    assert c.collect(c.response_events(resp)) == resp


@given(reasoned_responses)
def test_collect_inverts_response_events_of_reasoning(resp):
    """Reasoning blocks come back whole from a replay: text, signature, opaque data, format."""
    assert c.collect(c.response_events(resp)) == resp


@given(responses, st.data())
def test_text_split_anywhere_collects_the_same(resp, data):
    """Any split of the content deltas collects to the same response."""
    events = list(c.response_events(resp))
    text = resp["content"]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=5)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    deltas = [{"type": "content_delta", "text": p} for p in pieces]
    rest = [e for e in events if e["type"] != "content_delta"]
    assert c.collect([rest[0], *deltas, *rest[1:]]) == resp


def test_collect_assembles_interleaved_tool_calls_by_index():
    events = [
        {"type": "message_start", "model": "m", "id": "x"},
        {"type": "tool_call_start", "index": 1, "id": "b", "name": "second"},
        {"type": "tool_call_start", "index": 0, "id": "a", "name": "first"},
        {"type": "tool_call_delta", "index": 0, "arguments_delta": '{"x": '},
        {"type": "tool_call_delta", "index": 1, "arguments_delta": '{"y": 2}'},
        {"type": "tool_call_delta", "index": 0, "arguments_delta": "1}"},
        {"type": "tool_call_end", "index": 0},
        {"type": "tool_call_end", "index": 1},
        {"type": "message_end", "stop_reason": "tool_use", "usage": c.make_usage(1, 2)},
    ]
    resp = c.collect(events)
    assert [(t["id"], t["name"], t["arguments"]) for t in resp["tool_calls"]] == [
        ("a", "first", {"x": 1}),
        ("b", "second", {"y": 2}),
    ]
    assert resp["stop_reason"] == "tool_use"


def test_invalid_streamed_arguments_are_kept_not_dropped():
    events = [
        {"type": "tool_call_start", "index": 0, "id": "a", "name": "f"},
        {"type": "tool_call_delta", "index": 0, "arguments_delta": '{"x": tru'},
        {"type": "message_end", "stop_reason": "tool_use", "usage": None},
    ]
    call = c.collect(events)["tool_calls"][0]
    assert call["arguments"] == {}
    assert call["raw_arguments"] == '{"x": tru'
    assert "invalid JSON" in call["arguments_error"]


def test_collect_of_nothing_is_an_empty_response():
    resp = c.collect([])
    assert resp["content"] == "" and resp["stop_reason"] == "end_turn"
    assert resp["usage"] == {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}


def test_unknown_events_are_ignored():
    assert c.collect([{"type": "ping"}, {"type": "content_delta", "text": "a"}])["content"] == "a"


# --- a stream's final context: the next turn from a streamed one ---------------------------


def test_a_streams_ctx_is_what_a_call_returns_and_the_next_turn_goes_on_from_it():
    from toolz import pipe

    script = c.mock_script(["Hello there", "Again"])
    req = pipe(c.request("m", "hi", mock=script), c.with_cost)
    stream = c.mock_stream(req)
    with pytest.raises(c.ValidationError, match="has not ended"):
        stream.ctx  # noqa: B018
    assert "".join(e.get("text", "") for e in stream) == "Hello there"
    ctx = stream.ctx
    assert c.content(ctx) == "Hello there" and "cost" in ctx and ctx["messages"] == req["messages"]
    second = c.mock_call(c.reply(ctx, "more"))
    assert [m["content"] for m in script.calls[1]["messages"]] == ["hi", "Hello there", "more"]
    assert c.content(second) == "Again"


async def test_an_async_streams_ctx_is_its_final_context():
    stream = c.mock_astream(c.request("m", "hi", mock="Hello"))
    assert "".join([e.get("text", "") async for e in stream]) == "Hello"
    assert c.content(stream.ctx) == "Hello" and stream.ctx["messages"] == [c.user("hi")]


def test_a_streamed_agent_goes_on_after_its_tool_turns():
    """The events of an agent's stream hold several answers: c.collect says so (its fold
    would join them into one tool call without a result); the stream's ctx goes on."""

    def now() -> str:
        "The time."
        return "noon"

    script = c.mock_script([{"tool_calls": [{"name": "now"}]}, "It is noon.", "You asked."])
    stream = c.agent_stream(c.mock_stream, [now])(c.request("m", "time?", mock=script))
    events = list(stream)
    with pytest.raises(c.ValidationError, match="several"):
        c.collect(events)
    assert stream.ctx["iterations"] == 2 and c.content(stream.ctx) == "It is noon."
    c.mock_call(c.reply(stream.ctx, "what did I ask?"))
    sent = [(m["role"], len(m.get("tool_calls") or ())) for m in script.calls[2]["messages"]]
    assert sent == [("user", 0), ("assistant", 1), ("tool", 0), ("assistant", 0), ("user", 0)]


def test_a_streamed_chat_with_a_summary_goes_on_from_the_condensed_history():
    """with_summary condenses the caller's conversation; a streamed turn hands the condensed
    history back through ctx, so the next turn does not summarise it all again."""
    from toolz import pipe

    summaries = []

    def summarizer(req):
        summaries.append(len(req["messages"]))
        return req.set("response", c.make_response("the summary"))

    script = c.mock_script(lambda r: "ok")
    msgs = [c.system("sys")]
    for i in range(4):
        msgs += [c.user(f"q{i}"), c.assistant(f"a{i}")]
    summary = c.with_summary(summarizer, keep=2, max_messages=6)
    ends = []
    for streamed in (True, False):
        req = pipe(c.request("m", [*msgs, c.user("q4")], mock=script), summary)
        for turn in range(5, 8):
            if streamed:
                stream = c.mock_stream(req)
                list(stream)
                ctx = stream.ctx
            else:
                ctx = c.mock_call(req)
            req = c.reply(ctx, f"q{turn}")
        ends.append(req["messages"])
    assert len(summaries) == 2, summaries  # once in each conversation, not at every turn
    assert ends[0] == ends[1]  # a streamed chat goes on exactly as a called one
    assert "summary" in ends[0][1]["content"] and len(ends[0]) < len(msgs) + 7


def test_a_stream_dropped_mid_way_closes_its_call_at_once():
    """No reference cycle keeps an abandoned stream (its connection, its spans) open until the
    cycle collector runs: the call under it closes when the loop leaves it."""
    import gc

    closed = []

    def watch(req):
        try:
            return (yield req)
        finally:
            closed.append("closed")

    req = c.with_middleware(watch)(c.request("m", "hi", mock="one two three four"))
    gc.disable()
    try:
        for _event in c.mock_stream(req):
            break
        assert closed == ["closed"]
    finally:
        gc.enable()


def test_a_stream_without_middleware_hands_back_the_callers_keys_only():
    stream = c.mock_stream(c.request("m", "hi", mock="Hello"))
    list(stream)
    assert sorted(stream.ctx) == sorted(c.mock_call(c.request("m", "hi", mock="Hello")))


def test_a_streamed_agent_keeps_what_each_calls_middleware_added():
    from toolz import pipe

    def now() -> str:
        "The time."
        return "noon"

    schema = {"type": "object", "properties": {"t": {"type": "string"}}, "required": ["t"]}
    replies = [{"tool_calls": [{"name": "now"}]}, '{"t": "noon"}']
    ask = c.request("gpt-4o-mini", "time?", mock=c.mock_script(replies))
    stream = c.agent_stream(c.mock_stream, [now])(pipe(ask, c.with_schema(schema), c.with_cost))
    list(stream)
    again = ask.set("mock", c.mock_script(replies))
    called = c.agent(c.mock_call, [now])(pipe(again, c.with_schema(schema), c.with_cost))
    for key in ("parsed", "schema_attempts", "cost", "iterations"):
        assert stream.ctx[key] == called[key], key
