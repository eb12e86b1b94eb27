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
