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


# -- summarize -------------------------------------------------------------------------------


@given(histories(), st.integers(0, 8))
def test_summarize_laws(msgs, keep):
    thawed = c.thaw(msgs)
    after = c.summarize(msgs, "S", keep=keep)
    assert c.thaw(msgs) == thawed  # nothing mutates its input
    user_systems = [m for m in msgs if m["role"] == "system"]
    notes = [m for m in after if m.get("name") == c.memory.SUMMARY_NAME]
    if c.summary_prompt(msgs, keep=keep):
        assert len(notes) == 1 and notes[0]["content"].endswith("S")
    else:
        assert after == msgs  # nothing older than the kept turns: unchanged
    rest = [m for m in after if m.get("name") != c.memory.SUMMARY_NAME]
    check_window(msgs, rest)
    assert [m for m in rest if m["role"] == "system"] == user_systems
    assert len([m for m in rest if m["role"] != "system"]) <= keep
    again = c.summarize(after, "T", keep=keep)  # a new summary replaces the old, never stacks
    assert len([m for m in again if m.get("name") == c.memory.SUMMARY_NAME]) <= 1


def test_summary_prompt_carries_tool_calls_and_the_earlier_summary():
    first = c.summarize(
        [
            c.user("weather?"),
            c.assistant("", [{"id": "t1", "name": "wx", "arguments": {"c": "Oslo"}}]),
            c.tool_result("t1", "rain"),
            c.assistant("It rains."),
            c.user("and tomorrow?"),
        ],
        "Asked about Oslo weather: rain.",
        keep=1,
    )
    assert [m["role"] for m in first] == ["system", "user"]
    grown = [*first, c.assistant("Sun."), c.user("thanks")]
    prompt = c.summary_prompt(grown, keep=1)
    transcript = prompt[1]["content"]
    assert "(summary of what came before) Summary of the earlier conversation: Asked" in transcript
    assert "assistant: Sun." in transcript and "thanks" not in transcript
    calls = c.summary_prompt(
        [
            c.assistant("", [{"id": "t", "name": "wx", "arguments": {"c": "Oslo"}}]),
            c.tool_result("t", "rain"),
            c.user("q"),
        ],
        keep=1,
    )[1]["content"]
    assert 'assistant: [called wx({"c": "Oslo"})]' in calls and "tool: rain" in calls


def test_summarize_with_a_function_and_bad_answers():
    import pytest

    msgs = [c.user("a"), c.assistant("b"), c.user("c")]
    seen = []
    out = c.summarize(msgs, lambda p: seen.append(p) or "short", keep=1)
    assert seen and seen[0][0]["role"] == "system" and out[0]["content"].endswith("short")
    with pytest.raises(c.ValidationError, match="a summary is text"):
        c.summarize(msgs, lambda p: 42, keep=1)
    with pytest.raises(c.ValidationError, match="keep is a non-negative"):
        c.summarize(msgs, "x", keep=-1)


def long_chat(script):
    turns = [c.system("Be brief.")]
    for i in range(6):
        turns += [c.user(f"fact {i}"), c.assistant(f"noted {i}")]
    return c.request("m", [*turns, c.user("what facts?")], mock=script, temperature=0.1)


def test_with_summary_condenses_once_the_conversation_is_long():
    script = c.mock_script(["facts 0-5 were given", "You gave six facts."])
    ctx = pipe(long_chat(script), c.with_summary(c.mock_call, keep=3, max_messages=10), c.mock_call)
    summary_req, answer_req = script.calls
    assert "fact 0" in summary_req["messages"][1]["content"]
    assert "fact 5" not in summary_req["messages"][1]["content"]  # kept verbatim instead
    assert summary_req["options"] == {"temperature": 0.1}
    assert [m["content"] for m in answer_req["messages"]] == [
        "Be brief.",
        "Summary of the earlier conversation: facts 0-5 were given",
        "fact 5",
        "noted 5",
        "what facts?",
    ]
    assert c.content(ctx) == "You gave six facts."
    assert ctx["messages"] == answer_req["messages"]  # the condensed conversation continues


def test_with_summary_leaves_short_conversations_alone():
    script = c.mock_script(["answer"])
    req = c.request("m", [c.user("hi")], mock=script)
    pipe(req, c.with_summary(c.mock_call, max_messages=4), c.mock_call)
    assert len(script.calls) == 1


def test_with_summary_by_tokens_on_another_model_async_and_streaming():
    import asyncio

    script = c.mock_script(["summary A", "answer A", "summary B", "answer B"])
    mw = c.with_summary(
        c.mock_call, acall=c.mock_acall, keep=1, max_messages=None, max_tokens=20, model="cheap"
    )
    ctx = asyncio.run(c.mock_acall(pipe(long_chat(script), mw)))
    assert script.calls[0]["model"] == "cheap" and script.calls[1]["model"] == "m"
    assert c.content(ctx) == "answer A"
    events = list(c.mock_stream(pipe(long_chat(script), mw)))
    text = "".join(e["text"] for e in events if e["type"] == "content_delta")
    assert text == "answer B"  # the summary call's tokens never reach the stream


def test_with_summary_errors():
    import pytest

    with pytest.raises(c.ValidationError, match="needs the handler"):
        c.with_summary()
    with pytest.raises(c.ValidationError, match="max_messages or max_tokens"):
        c.with_summary(c.mock_call, max_messages=None)


# -- conversations as JSON -------------------------------------------------------------------


@given(histories())
def test_conversation_json_round_trip(msgs):
    text = c.conversation_to_json(msgs, title="t")
    back = c.conversation_from_json(text)
    assert back["messages"] == msgs and back["title"] == "t"
    assert c.conversation_to_json(back["messages"], title="t") == text


def test_save_and_load_a_context_with_images_and_tool_calls(tmp_path):
    ctx = c.mock_call(
        c.request("m", [c.user("look", c.image_url("https://x/cat.png"))], mock="A cat.")
    )
    path = c.save_conversation(ctx, tmp_path / "chat.json", model="gpt-4o-mini")
    loaded = c.load_conversation(path)
    assert loaded["model"] == "gpt-4o-mini"
    assert loaded["messages"][0]["content"][1]["source"]["url"] == "https://x/cat.png"
    assert loaded["messages"][-1] == c.assistant("A cat.")
    nxt = c.mock_call(c.request("m", [*loaded["messages"], c.user("again")]))
    assert c.content(nxt) == "again"
    assert not list(tmp_path.glob(".*.tmp"))


def test_conversation_errors(tmp_path):
    import pytest

    with pytest.raises(c.ValidationError, match="no saved conversation"):
        c.load_conversation(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(c.ValidationError, match="not JSON"):
        c.load_conversation(tmp_path / "bad.json")
    with pytest.raises(c.ValidationError, match="'messages' list"):
        c.conversation_from_json('{"msgs": []}')
    with pytest.raises(c.ValidationError, match="unknown conversation format"):
        c.conversation_from_json('{"format": "other/9", "messages": []}')
    with pytest.raises(c.ValidationError, match="message 0"):
        c.conversation_from_json('{"messages": [{"role": "robot", "content": "x"}]}')
    with pytest.raises(c.ValidationError, match="JSON cannot store"):
        c.conversation_to_json([c.user("x")], when=object())
    with pytest.raises(c.ValidationError, match="file's own keys"):
        c.conversation_to_json([c.user("x")], messages=[])
    with pytest.raises(c.ValidationError, match="a list of messages"):
        c.conversation_to_json({"model": "m"})


def test_an_orphaned_tool_result_goes_into_the_summary_not_the_kept_turns():
    msgs = [c.tool_result("gone", "42 degrees"), c.user("a"), c.assistant("b"), c.user("q")]
    assert "tool: 42 degrees" in c.summary_prompt(msgs, keep=3)[1]["content"]
    out = c.summarize(msgs, "It was 42 degrees.", keep=3)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
