"""The context rule (DESIGN §1): what middleware changes on the way in reaches the wire request
only; the context that comes back is the caller's request plus result keys, turn after turn."""

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from toolz import compose_left, pipe

import conduit as c
from conduit.middleware import REQUEST_KEYS, restore

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}
DOCS = [
    c.document("Retries wait with exponential backoff and jitter.", id="retry"),
    c.document("A cache hit is never billed twice.", id="cache"),
]


FEEDBACK = "Your answer did not match"


def _question(req):
    """The caller's question a wire request carries (not a schema re-ask's feedback)."""
    users = [c.content(m) for m in req["messages"] if m["role"] == "user"] or [""]
    asked = [t for t in users if not t.startswith(FEEDBACK)]
    return asked[-1] if asked else users[-1]  # a window inside a re-ask may keep only feedback


def _answerer(fail_first=False, bad_first=False):
    """A mock reply function: valid JSON for SCHEMA naming the question it answers; on the
    first call for each question it may fail (a 503) and then answer invalid JSON, so retries,
    fallbacks and schema re-asks really run."""
    seen = {}

    def answer(req):
        question = _question(req)
        n = seen[question] = seen.get(question, 0) + 1
        plan = (["fail"] if fail_first else []) + (["bad"] if bad_first else [])
        step = plan[n - 1] if n <= len(plan) and not question.startswith(FEEDBACK) else "ok"
        if step == "fail":
            return c.ServerError("busy", status_code=503, retry_after=0.0)
        if step == "bad":
            return "not json"
        return json.dumps({"answer": f"to {question}"})

    return answer


def _retriever():
    store = c.add_documents(c.memory_store(), DOCS, c.hash_embedder(64))
    return c.retriever(c.hash_embedder(64), store, k=1)


# Each entry: (name, transform, what it adds to the wire request the mock sees).
def _middleware():
    return {
        "retry": c.with_retry(initial_delay=0.001),
        "cache": c.with_cache(c.MemoryCache()),
        "cost": c.with_cost,
        "logging": c.with_logging,
        "timeout": c.with_timeout(30),
        "rate_limit": c.with_rate_limit(requests_per_minute=100_000),
        "budget": c.with_budget(max_calls=1_000),
        "window": c.with_window(2),
        "token_limit": c.with_token_limit(10_000),
        "retrieval": c.with_retrieval(_retriever()),
        "schema": c.with_schema(SCHEMA),
        "fallback": c.with_fallback(["mock:backup"]),
        "tracing": c.with_tracing(tracer_provider=TracerProvider()),
    }


NAMES = sorted(_middleware())
stacks = st.lists(st.sampled_from(NAMES), unique=True, max_size=6)
turns = st.lists(st.text(alphabet="abcdefgh ", min_size=1, max_size=12), min_size=1, max_size=4)


def _run_turns(names, questions, call, faults=(False, False)):
    chosen = _middleware()
    prepare = compose_left(*(chosen[n] for n in names)) if names else (lambda r: r)
    fail = faults[0] and ("retry" in names or "fallback" in names)
    script = c.mock_script(_answerer(fail_first=fail, bad_first=faults[1] and "schema" in names))
    req = pipe(
        c.request("mock:primary", [c.system("Be brief."), questions[0]], mock=script), prepare
    )
    expected = list(req["messages"])
    contexts = []
    for i, question in enumerate(questions):
        if i:
            req = c.reply(contexts[-1], question)
            expected += [c.assistant(contexts[-1]["response"]["content"]), c.user(question)]
        ctx = call(req)  # the middleware recorded on the first request stays on the conversation
        contexts.append(ctx)
        assert ctx.get("middleware") == req.get("middleware")
        assert list(ctx["messages"]) == expected  # the caller's turns plus the responses
        assert ctx["model"] == "mock:primary" and ctx["options"] == req["options"]
        assert not [k for k in ctx if k.startswith("conduit/")]
    return script, contexts


def _check_wire(names, script, contexts):
    sent = script.calls
    hits = sum(1 for ctx in contexts if ctx.get("cache_hit"))
    assert len(sent) >= len(contexts) - hits
    if contexts[-1].get("cache_hit"):  # the last turn went nowhere: nothing of it is on the wire
        return
    question = c.content(contexts[-1]["messages"][-1])
    last = next((r for r in sent if _question(r) == question), None)  # the last turn's first
    assert last is not None
    if "retrieval" in names:  # the retrieved passage is on the wire, never in the context
        assert any("[1]" in c.content(m) for m in last["messages"] if m["role"] == "system")
        assert "sources" in contexts[-1]
    if "schema" in names:
        assert last["options"]["response_format"]["type"] == "json_schema"
        assert contexts[-1]["parsed"]["answer"].startswith("to ")
        assert all("response_format" not in ctx["options"] for ctx in contexts)
    if "window" in names:
        assert len([m for m in last["messages"] if m["role"] != "system"]) <= 2
        assert last["messages"][-1] == contexts[-1]["messages"][-1]  # the question is sent
    if "timeout" in names:  # every request sent inside the timeout carries its deadline
        assert all(r.get("conduit/deadline") is not None for r in sent)


@settings(max_examples=60, deadline=None)
@given(stacks, turns, st.tuples(st.booleans(), st.booleans()))
def test_reply_keeps_the_conversation_through_any_stack(names, questions, faults):
    script, contexts = _run_turns(names, questions, c.call, faults)
    _check_wire(names, script, contexts)


@settings(max_examples=20, deadline=None)
@given(stacks, turns, st.tuples(st.booleans(), st.booleans()))
def test_the_async_stack_keeps_the_conversation_too(names, questions, faults):
    script, contexts = _run_turns(names, questions, lambda r: asyncio.run(c.acall(r)), faults)
    _check_wire(names, script, contexts)


def test_a_cache_hit_under_retrieval_leaks_nothing():
    """A flow that answers early (a cache hit) hands back a request middleware changed; the
    rule still holds, because it is enforced where the stack runs, not in each flow."""
    store = c.MemoryCache()
    script = c.mock_script("answer")
    req = c.request("m", "how do retries wait?", mock=script)
    prepare = compose_left(c.with_retrieval(_retriever()), c.with_cache(store))
    first = c.mock_call(pipe(req, prepare))
    second = c.mock_call(pipe(req, prepare))
    assert second["cache_hit"] is True and len(script.calls) == 1
    assert second["messages"] == first["messages"] == req["messages"]


def test_a_fallback_to_another_provider_keeps_the_callers_model():
    req = c.request("openai:gpt-4o-mini", "hi", api_key="sk-never-sent", mock="from backup")
    req = req.set("base_url", "http://127.0.0.1:9")  # nothing listens: the call fails fast
    ctx = c.call(pipe(req, c.with_fallback(["mock:backup"])))
    assert c.content(ctx) == "from backup" and ctx["fallbacks"] == 1
    assert ctx["model"] == "openai:gpt-4o-mini" and ctx["response"]["model"] == "backup"
    assert "base_url" in ctx and ctx["base_url"] == "http://127.0.0.1:9"


def test_the_deadline_does_not_follow_the_conversation():
    req = pipe(c.request("m", "hi", mock="ok"), c.with_timeout(5))
    ctx = c.mock_call(req)
    assert "conduit/deadline" not in ctx
    again = c.mock_call(c.reply(ctx, "next"))  # a later turn gets a fresh deadline
    assert c.content(again) == "ok"


def test_with_summary_is_the_documented_exception():
    script = c.mock_script(["Ada likes tea.", "Tea."])
    msgs = [c.user("I am Ada"), c.assistant("Hi"), c.user("I like tea"), c.assistant("Ok")]
    req = c.request("m", [*msgs, c.user("What do I drink?")], mock=script)
    ctx = pipe(req, c.with_summary(c.mock_call, keep=1, max_messages=3), c.mock_call)
    assert [m["role"] for m in ctx["messages"]] == ["system", "user"]
    assert "Ada likes tea." in ctx["messages"][0]["content"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["retrieval", "schema", "window"]), unique=True), turns)
def test_a_summary_condenses_the_callers_conversation_only(outer, questions):
    """with_summary, the documented exception, is stacked outermost: whatever else is on the
    stack (retrieval, a schema re-ask, a window), the history it hands back holds only the
    caller's turns and the summary."""
    chosen = _middleware()
    script = c.mock_script(_answerer(bad_first=True))
    summary = c.with_summary(c.mock_call, keep=2, max_messages=3)
    req = c.request("mock:m", [c.system("sys"), questions[0]], mock=script)
    req = pipe(req, *(chosen[n] for n in outer), summary)
    ctx = c.call(req)
    for question in questions[1:]:
        ctx = c.call(c.reply(ctx, question))
    texts = [c.content(m) for m in ctx["messages"]]
    assert not [t for t in texts if t.startswith(FEEDBACK) or "numbered sources" in t]
    assert texts[0] == "sys" and texts[-1] == questions[-1]


def test_restore_keeps_user_result_keys_and_drops_request_changes():
    caller = c.request("m", "hi")
    out = caller.update(
        {"messages": caller["messages"].append(c.user("x")), "tools": (), "label": "mine"}
    ).set("response", c.make_response("r"))
    ctx = restore(caller, out)
    assert ctx["messages"] == caller["messages"] and "tools" not in ctx
    assert ctx["label"] == "mine" and c.content(ctx) == "r"
    assert restore(caller, caller) is caller
    assert {"model", "messages", "options", "api_key", "mock"} <= REQUEST_KEYS


@pytest.mark.parametrize("kind", ["stream", "astream"])
def test_streams_follow_the_rule(kind):
    script = c.mock_script("streamed answer")
    req = c.request("m", [c.system("s"), "1", c.assistant("a"), "2"], mock=script)
    req = pipe(req, c.with_window(1))
    if kind == "stream":
        events = list(c.mock_stream(req))
    else:

        async def run():
            return [e async for e in c.mock_astream(req)]

        events = asyncio.run(run())
    assert c.collect(events)["content"] == "streamed answer"
    assert [m["content"] for m in script.calls[0]["messages"]] == ["s", "2"]
