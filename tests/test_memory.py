"""Windowing laws (hypothesis): system messages kept, at most N others, no orphaned tool result."""

from hypothesis import given
from hypothesis import strategies as st
from toolz import pipe

import conduit as c
from conduit.memory import units


@st.composite
def histories(draw):
    msgs = []
    for i in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["system", "user", "assistant", "tools"]))
        if kind == "tools":
            ids = [f"t{i}_{k}" for k in range(draw(st.integers(1, 3)))]
            msgs.append(c.assistant("", [{"id": t, "name": "f", "arguments": {}} for t in ids]))
            msgs.extend(c.tool_result(t, "r" * draw(st.integers(0, 40))) for t in ids)
        else:
            msgs.append(
                c.message(kind, draw(st.text(max_size=40)))
                if hasattr(c, "message")
                else {"system": c.system, "user": c.user, "assistant": c.assistant}[kind](
                    draw(st.text(max_size=40))
                )
            )
    return c.freeze(msgs)


def called_ids(msgs):
    return {t["id"] for m in msgs if m["role"] == "assistant" for t in m.get("tool_calls") or ()}


def check_window(before, after):
    systems = [m for m in before if m["role"] == "system"]
    assert [m for m in after if m["role"] == "system"] == systems  # every system message
    rest = iter(before)  # a subsequence: order kept, nothing invented
    assert all(any(x == y for y in rest) for x in after)
    for m in after:  # no orphaned tool result
        if m["role"] == "tool":
            assert m["tool_call_id"] in called_ids(after)
    for m in after:  # no half-answered tool call either
        for call in m.get("tool_calls") or ():
            assert any(r.get("tool_call_id") == call["id"] for r in after)


@given(histories(), st.integers(0, 15))
def test_window_laws(msgs, n):
    after = c.window(msgs, n)
    check_window(msgs, after)
    assert len([m for m in after if m["role"] != "system"]) <= n
    assert c.window(after, n) == after  # idempotent


@given(histories(), st.integers(0, 200))
def test_token_window_laws(msgs, budget):
    after = c.token_window(msgs, budget)
    check_window(msgs, after)
    others = [m for m in after if m["role"] != "system"]
    systems = [m for m in after if m["role"] == "system"]
    if others:
        from conduit.tokens import estimate_message_tokens

        assert estimate_message_tokens(systems) + estimate_message_tokens(others) <= budget
    assert c.token_window(after, budget) == after


@given(histories())
def test_window_keeps_the_most_recent_units(msgs):
    groups = units(msgs)
    if groups and not all(msgs[i]["role"] == "tool" for i in groups[-1]):
        n = len(groups[-1])
        assert [m for m in c.window(msgs, n) if m["role"] != "system"] == [
            msgs[i] for i in groups[-1]
        ]


def test_with_window_and_token_limit_trim_what_is_sent():
    script = c.mock_script("ok")
    msgs = [c.system("rules"), c.user("old " * 200), c.assistant("a"), c.user("new question")]
    pipe(c.request("m", msgs, mock=script), c.with_token_limit(30), c.mock_call)
    assert [m["content"] for m in script.calls[0]["messages"]] == ["rules", "a", "new question"]
    pipe(c.request("m", msgs, mock=script), c.with_window(1), c.mock_call)
    assert [m["content"] for m in script.calls[1]["messages"]] == ["rules", "new question"]


def test_window_input_errors():
    import pytest

    with pytest.raises(c.ValidationError, match="with_window needs a number"):
        c.with_window("ten")
    with pytest.raises(c.ValidationError, match="with_token_limit needs a token count"):
        c.with_token_limit(0)
    with pytest.raises(c.ValidationError, match="non-negative"):
        c.window([], -1)
