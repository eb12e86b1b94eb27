"""Windowing laws (hypothesis): system messages kept, at most N others, no orphaned tool result,
and the question is never dropped: the latest turn is sent whole or ContextLengthError is raised
before anything is sent."""

import asyncio
import copy
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from toolz import pipe

import conduit as c
from conduit.memory import ANSWER_RESERVE, DEFAULT_WINDOW, latest_turn, units
from conduit.tokens import estimate_message_tokens

BUILDERS = {"system": c.system, "user": c.user, "assistant": c.assistant}


@st.composite
def histories(draw, max_units=12):
    msgs = []
    for i in range(draw(st.integers(0, max_units))):
        kind = draw(st.sampled_from(["system", "user", "assistant", "tools", "orphan"]))
        if kind == "tools":
            ids = [f"t{i}_{k}" for k in range(draw(st.integers(1, 3)))]
            msgs.append(c.assistant("", [{"id": t, "name": "f", "arguments": {}} for t in ids]))
            msgs.extend(c.tool_result(t, "r" * draw(st.integers(0, 40))) for t in ids)
        elif kind == "orphan":  # a tool result whose calling turn is gone
            msgs.append(c.tool_result(f"orphan{i}", "lost"))
        else:
            msgs.append(BUILDERS[kind](draw(st.text(max_size=40))))
    return c.freeze(msgs)


def expected_turn(msgs):
    """The oracle: the last user message and every non-system message after it, orphans aside."""
    users = [i for i, m in enumerate(msgs) if m["role"] == "user"]
    if not users:
        return []
    return [
        m
        for m in msgs[users[-1] :]
        if m["role"] != "system" and not m.get("tool_call_id", "").startswith("orphan")
    ]


def called_ids(msgs):
    return {t["id"] for m in msgs if m["role"] == "assistant" for t in m.get("tool_calls") or ()}


def others(msgs):
    return [m for m in msgs if m["role"] != "system"]


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


def check_keeps_the_turn(before, after):
    turn = expected_turn(before)
    kept = others(after)
    assert kept[len(kept) - len(turn) :] == turn  # the question and all after it, at the end


@given(histories(), st.integers(0, 15))
def test_window_laws(msgs, n):
    thawed = c.thaw(msgs)
    plain = copy.deepcopy(thawed)
    if len(expected_turn(msgs)) > n:
        with pytest.raises(c.ContextLengthError, match="the latest turn needs"):
            c.window(msgs, n)
        return
    after = c.window(msgs, n)
    assert c.window(plain, n) == after  # plain lists and dicts too, and
    assert plain == thawed  # nothing mutates its input
    check_window(msgs, after)
    check_keeps_the_turn(msgs, after)
    assert len(others(after)) <= n
    assert c.window(after, n) == after  # idempotent


@given(histories(), st.integers(0, 200))
def test_token_window_laws(msgs, budget):
    thawed = c.thaw(msgs)
    systems = [m for m in msgs if m["role"] == "system"]
    needed = estimate_message_tokens(systems) + estimate_message_tokens(expected_turn(msgs))
    if needed > budget:
        with pytest.raises(c.ContextLengthError, match=f"needs {needed:,} tokens"):
            c.token_window(msgs, budget)
        return
    after = c.token_window(msgs, budget)
    assert c.thaw(msgs) == thawed
    check_window(msgs, after)
    check_keeps_the_turn(msgs, after)
    assert estimate_message_tokens(after) <= budget
    assert c.token_window(after, budget) == after


@given(histories())
def test_a_window_the_size_of_the_latest_turn_sends_exactly_that_turn(msgs):
    turn = expected_turn(msgs)
    if turn:
        assert others(c.window(msgs, len(turn))) == turn
        assert list(latest_turn(msgs)) == turn


@given(histories())
def test_window_keeps_the_most_recent_units(msgs):
    live = [g for g in units(msgs) if not all(msgs[i]["role"] == "tool" for i in g)]
    n = sum(len(g) for g in live[-2:])
    if len(expected_turn(msgs)) <= n:
        assert others(c.window(msgs, n)) == [msgs[i] for g in live[-2:] for i in g]


# -- the middleware: what is sent --------------------------------------------------------------


@given(histories(), st.integers(1, 15))
def test_with_window_sends_the_latest_turn_or_nothing(msgs, n):
    script = c.mock_script("ok")
    req = c.request("m", msgs, mock=script)
    if len(expected_turn(msgs)) > n:
        with pytest.raises(c.ContextLengthError):
            pipe(req, c.with_retry, c.with_window(n), c.mock_call)
        assert not script.calls  # raised before anything was sent (and never retried)
        return
    pipe(req, c.with_window(n), c.mock_call)
    (sent,) = script.calls
    assert sent["messages"] == c.window(msgs, n)
    check_window(msgs, sent["messages"])
    check_keeps_the_turn(msgs, sent["messages"])


@given(histories(), st.integers(1, 200))
def test_with_token_limit_sends_the_latest_turn_or_nothing(msgs, budget):
    script = c.mock_script("ok")
    req = c.request("m", msgs, mock=script)
    systems = [m for m in msgs if m["role"] == "system"]
    needed = estimate_message_tokens(systems) + estimate_message_tokens(expected_turn(msgs))
    if needed > budget:
        with pytest.raises(c.ContextLengthError):
            pipe(req, c.with_token_limit(budget), c.mock_call)
        assert not script.calls
        return
    pipe(req, c.with_token_limit(budget), c.mock_call)
    (sent,) = script.calls
    check_window(msgs, sent["messages"])
    check_keeps_the_turn(msgs, sent["messages"])
    assert estimate_message_tokens(sent["messages"]) <= budget


def test_with_window_and_token_limit_trim_what_is_sent():
    script = c.mock_script("ok")
    msgs = [c.system("rules"), c.user("old " * 200), c.assistant("a"), c.user("new question")]
    ctx = pipe(c.request("m", msgs, mock=script), c.with_token_limit(30), c.mock_call)
    assert [m["content"] for m in script.calls[0]["messages"]] == ["rules", "a", "new question"]
    assert ctx["messages"] == c.freeze(msgs)  # the caller's conversation comes back whole
    pipe(c.request("m", msgs, mock=script), c.with_window(1), c.mock_call)
    assert [m["content"] for m in script.calls[1]["messages"]] == ["rules", "new question"]


def call(i):
    return {"id": f"t{i}", "name": "f", "arguments": {}}


def agent_turn(rounds):
    """A question, then *rounds* assistant tool calls each followed by its result."""
    msgs = [c.user("the question")]
    for i in range(rounds):
        msgs += [c.assistant("", [call(i)]), c.tool_result(f"t{i}", "42")]
    return msgs


def test_the_question_is_never_dropped_from_an_agent_loop():
    script = c.mock_script("ok")
    msgs = [c.system("sys"), c.user("old"), c.assistant("old answer"), *agent_turn(2)]
    with pytest.raises(c.ContextLengthError) as err:
        pipe(c.request("m", msgs, mock=script), c.with_window(4), c.mock_call)
    assert not script.calls  # not [sys, tool call, result, tool call, result]
    assert "the latest turn needs 5 messages" in str(err.value)
    assert "the window allows 4" in str(err.value) and "c.with_window(5)" in str(err.value)
    assert err.value.data["needed_messages"] == 5 and err.value.data["allowed_messages"] == 4
    assert isinstance(err.value, c.BadRequestError) and not c.is_retryable(err.value)
    pipe(c.request("m", msgs, mock=script), c.with_window(5), c.mock_call)
    assert script.calls[0]["messages"] == c.freeze([c.system("sys"), *agent_turn(2)])


def test_the_token_limit_error_names_both_sizes():
    msgs = [
        c.system("s" * 400),
        *agent_turn(3),
    ]
    msgs[-1] = c.tool_result("t2", "x" * 36_000)
    needed = estimate_message_tokens(msgs)
    script = c.mock_script("ok")
    with pytest.raises(c.ContextLengthError) as err:
        pipe(c.request("m", msgs, mock=script), c.with_token_limit(8000), c.mock_call)
    said = str(err.value)
    assert f"needs {needed:,} tokens with the system prompt (7 messages" in said
    assert "the limit allows 8,000" in said and "shorten" in said
    assert err.value.data["needed_tokens"] == needed and err.value.data["allowed_tokens"] == 8000
    assert not script.calls


def test_a_conversation_without_a_question_keeps_its_recent_units():
    msgs = [c.system("s"), c.assistant("a"), c.assistant("", [call(0)]), c.tool_result("t0", "r")]
    assert others(c.window(msgs, 2)) == others(msgs)[1:]
    assert c.window(msgs, 0) == [c.freeze(c.system("s"))]
    with pytest.raises(c.ContextLengthError, match="system prompt"):
        c.token_window([c.system("x" * 100)], 10)  # the system prompt alone does not fit


@pytest.mark.parametrize("asynchronous", [False, True])
def test_an_agent_with_a_small_window_keeps_the_question_in_every_request(asynchronous):
    def lookup(key: str) -> str:
        "Look a key up."
        return f"value of {key}"

    step = {"tool_calls": [{"name": "lookup", "arguments": {"key": "k"}}]}
    script = c.mock_script([step, step, "done"])
    history = [c.system("sys"), c.user("u1"), c.assistant("a1"), c.user("u2"), c.assistant("a2")]
    req = c.with_window(5)(c.request("m", [*history, c.user("the question")], mock=script))
    if asynchronous:
        ctx = asyncio.run(c.aagent(c.mock_acall, [lookup])(req))
    else:
        ctx = c.agent(c.mock_call, [lookup])(req)
    assert c.content(ctx) == "done" and len(script.calls) == 3
    for sent in script.calls:
        check_window(ctx["messages"], sent["messages"])
        kept = others(sent["messages"])
        assert len(kept) <= 5 and c.user("the question") in kept
        question = kept.index(c.user("the question"))
        assert all(m["role"] in ("assistant", "tool") for m in kept[question + 1 :])
    assert others(script.calls[2]["messages"])[0] == c.user("the question")
    assert ctx["messages"][: len(history) + 1] == req["messages"]  # nothing lost on the way out


def test_an_agent_loop_that_outgrows_the_window_stops_before_sending_without_the_question():
    def lookup(key: str) -> str:
        "Look a key up."
        return key

    step = {"tool_calls": [{"name": "lookup", "arguments": {"key": "k"}}]}
    script = c.mock_script([step, step, step, "done"])
    req = c.with_window(4)(c.request("m", [c.system("sys"), c.user("the question")], mock=script))
    with pytest.raises(c.ContextLengthError, match="needs 5 messages"):
        c.agent(c.mock_call, [lookup])(req)
    assert len(script.calls) == 2  # the third request would have needed 5 messages
    assert all(c.user("the question") in sent["messages"] for sent in script.calls)


def test_streams_are_windowed_and_refused_before_the_first_event():
    script = c.mock_script("ok")
    req = c.request("m", [c.user("a"), c.assistant("b"), c.user("q")], mock=script)
    text = "".join(e.get("text", "") for e in c.mock_stream(c.with_window(1)(req)))
    assert text == "ok" and others(script.calls[0]["messages"]) == [c.freeze(c.user("q"))]
    big = c.request("m", agent_turn(1), mock=script)
    with pytest.raises(c.ContextLengthError):
        next(iter(c.mock_stream(c.with_window(2)(big))))
    assert len(script.calls) == 1


# -- defaults and configuration ------------------------------------------------------------------


def chat(turns, **settings):
    msgs = [c.system("sys")]
    for i in range(turns):
        msgs += [c.user(f"q{i}"), c.assistant(f"a{i}")]
    return c.request(settings.pop("model", "m"), [*msgs, c.user("last")], **settings)


def test_bare_with_window_keeps_the_default_window():
    script = c.mock_script("ok")
    ctx = pipe(chat(15, mock=script), c.with_window, c.mock_call)
    sent = script.calls[0]["messages"]
    assert DEFAULT_WINDOW == 20 and len(others(sent)) == DEFAULT_WINDOW
    assert sent[0] == c.freeze(c.system("sys")) and sent[-1] == c.freeze(c.user("last"))
    assert len(ctx["messages"]) == 32
    pipe(chat(15, mock=script), c.with_window(), c.mock_call)
    assert script.calls[1]["messages"] == sent


def test_bare_with_token_limit_uses_the_models_context_window_less_the_answer():
    script = c.mock_script("ok")
    long = [c.system("sys")]
    for i in range(70):  # about 70 x 2,004 tokens: more than gpt-4o-mini's 128,000
        long += [c.user(f"{i} " + "x" * 8000), c.assistant("ok")]
    req = c.request("gpt-4o-mini", [*long, c.user("last")], mock=script)
    pipe(req, c.with_token_limit, c.mock_call)
    sent = estimate_message_tokens(script.calls[0]["messages"])
    room = 128_000 - ANSWER_RESERVE
    assert room - 2_010 < sent <= room  # as much as fits, no more
    pipe(req.set("options", c.freeze({"max_tokens": 100_000})), c.with_token_limit, c.mock_call)
    assert 28_000 - 2_010 < estimate_message_tokens(script.calls[1]["messages"]) <= 28_000
    pipe(req, c.with_token_limit(count=lambda ms: 1000 * len(ms)), c.mock_call)
    assert len(script.calls[2]["messages"]) <= room // 1000
    reasoning = req.set("options", c.freeze({"max_completion_tokens": 100_000}))
    pipe(reasoning, c.with_token_limit, c.mock_call)  # the o-series spelling leaves room too
    assert 28_000 - 2_010 < estimate_message_tokens(script.calls[3]["messages"]) <= 28_000


def test_bare_with_token_limit_needs_a_number_for_an_unknown_model():
    script = c.mock_script("ok")
    req = pipe(chat(1, model="my-finetune", mock=script), c.with_token_limit)  # fine until called
    with pytest.raises(c.ValidationError, match=r"context window of 'my-finetune'.*8000"):
        c.mock_call(req)
    with pytest.raises(c.ValidationError, match="no room for the prompt"):
        c.mock_call(
            chat(1, model="gpt-4o", mock=script, max_tokens=200_000).set(
                "middleware", req["middleware"]
            )
        )
    assert not script.calls


def test_configured_windows_are_built_once():
    for transform in (c.with_window(4), c.with_token_limit(800), c.with_window):
        first, second = transform(chat(1)), transform(chat(2))
        assert first["middleware"][0] is second["middleware"][0]
    assert c.with_window(4).__name__ == "with_window"
    assert c.with_token_limit(800).__name__ == "with_token_limit"


@pytest.mark.parametrize("bad", [-1, 0, 2.5, math.nan, math.inf, True, "ten", [3]])
def test_bad_numbers_fail_when_the_middleware_is_built(bad):
    with pytest.raises(c.ValidationError, match=r"with_window\(n=\.\.\.\) must be a whole"):
        c.with_window(bad)
    with pytest.raises(c.ValidationError, match=r"with_token_limit\(max_tokens=\.\.\.\)"):
        c.with_token_limit(bad)
    with pytest.raises(c.ValidationError, match=r"with_window\(n=\.\.\.\)"):
        c.with_window(n=bad)


def test_window_input_errors():
    with pytest.raises(c.ValidationError, match=r"did you mean 'max_tokens'.*max_tokens, count"):
        c.with_token_limit(max_token=8000)
    with pytest.raises(c.ValidationError, match=r"did you mean 'n'.*its options are n"):
        c.with_window(nn=4)
    with pytest.raises(c.ValidationError, match=r"pass the count: c\.with_window"):
        c.with_window(max_messages=4)
    with pytest.raises(c.ValidationError, match="got n twice"):
        c.with_window(4, n=5)
    with pytest.raises(c.ValidationError, match=r"count=\.\.\.\) must be a function"):
        c.with_token_limit(100, count=3)
    with pytest.raises(c.ValidationError, match=r"window\(n=\.\.\.\) must be a whole number >= 0"):
        c.window([], -1)
    with pytest.raises(c.ValidationError, match=r"token_window\(max_tokens=\.\.\.\)"):
        c.token_window([], 1.5)


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

    with pytest.raises(c.ValidationError, match="no saved conversation"):
        c.load_conversation(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(c.ValidationError, match="not JSON"):
        c.load_conversation(tmp_path / "bad.json")
    with pytest.raises(c.ValidationError, match="'messages' list"):
        c.conversation_from_json('{"msgs": []}')
    with pytest.raises(c.ValidationError, match="unknown conversation format"):
        c.conversation_from_json('{"format": "other/9", "messages": []}')
    with pytest.raises(c.ValidationError, match=r"messages?\W*0"):
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
