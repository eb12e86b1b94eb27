"""Workflows: steps, pipelines, branches, parallel steps and model steps, sync and async."""

import asyncio
import threading

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import conduit as c


def test_a_step_merges_what_it_returns_and_leaves_its_input_alone():
    state = {"a": 1, "keep": [1, 2]}
    out = c.step("s", lambda s: {"b": s["a"] + 1})(state)
    assert out == {"a": 1, "b": 2, "keep": [1, 2]}
    assert state == {"a": 1, "keep": [1, 2]}
    assert c.step("noop", lambda s: None)(state) == state


def test_step_errors_name_the_step():
    with pytest.raises(c.ValidationError, match="step 'count' returned int"):
        c.step("count", lambda s: 3)({})
    with pytest.raises(c.ValidationError, match="needs a name"):
        c.step("", lambda s: None)
    with pytest.raises(c.ValidationError, match="needs a function"):
        c.step("x", 3)
    with pytest.raises(c.ValidationError, match="state is a map"):
        c.step("x", lambda s: None)(["not", "a", "map"])

    def boom(s):
        raise KeyError("missing")

    with pytest.raises(KeyError) as info:
        c.pipeline(c.step("fetch", boom))({})
    assert "in workflow step 'fetch'" in info.value.__notes__


def test_an_async_step_in_the_callers_thread_says_how_to_run_it():
    async def fetch(s):
        return {"x": 1}

    with pytest.raises(c.ValidationError, match=r"await flow\.arun"):
        c.step("fetch", fetch)({})
    with pytest.raises(c.ValidationError, match=r"await flow\.arun"):
        c.step("fetch", lambda s: fetch(s))({})  # returns a coroutine: closed, not leaked
    assert asyncio.run(c.step("fetch", fetch).arun({}))["x"] == 1


ops = st.lists(st.tuples(st.sampled_from("abc"), st.integers(-3, 3)), min_size=1, max_size=6)


def as_steps(spec):
    return [
        c.step(f"s{i}", lambda s, k=k, d=d: {k: s.get(k, 0) * 2 + d})
        for i, (k, d) in enumerate(spec)
    ]


@given(ops, ops, ops, st.dictionaries(st.sampled_from("abc"), st.integers(-9, 9)))
def test_pipeline_composition_laws(f, g, h, state):
    a, b, cc = c.pipeline(*as_steps(f)), c.pipeline(*as_steps(g)), c.pipeline(*as_steps(h))
    assert c.pipeline(a, c.pipeline(b, cc))(state) == c.pipeline(c.pipeline(a, b), cc)(state)
    assert c.pipeline(a, b)(state) == b(a(state))
    assert asyncio.run(c.pipeline(a, b, cc).arun(state)) == cc(b(a(state)))


def test_branch_picks_by_name_and_says_which_name_matched_nothing():
    route = c.branch(
        lambda s: s["kind"],
        {"math": lambda s: {"out": "calc"}, "chat": c.step("talk", lambda s: {"out": "talk"})},
        name="router",
    )
    assert route({"kind": "math"})["out"] == "calc"
    assert route({"kind": "chat"})["out"] == "talk"
    with pytest.raises(c.ValidationError, match=r"branch 'router'.*'poetry'.*have: chat, math"):
        route({"kind": "poetry"})
    with_default = c.branch(lambda s: None, {"a": lambda s: None}, default=lambda s: {"d": 1})
    assert with_default({})["d"] == 1
    with pytest.raises(c.ValidationError, match="at least one branch"):
        c.branch(lambda s: "a", {})


def test_parallel_really_runs_at_once_in_threads_and_stores_under_names():
    barrier = threading.Barrier(2, timeout=5)  # one function alone would wait forever

    def left(s):
        barrier.wait()
        return s["q"] + "-left"

    def right(s):
        barrier.wait()
        return s["q"] + "-right"

    out = c.parallel(left=left, right=right)({"q": "x"})
    assert (out["left"], out["right"], out["q"]) == ("x-left", "x-right", "x")


def test_parallel_gathers_async_functions_and_runs_blocking_ones_off_the_loop():
    async def run():
        started = asyncio.Event()

        async def waiter(s):
            await asyncio.wait_for(started.wait(), 5)
            return "waited"

        async def starter(s):
            started.set()
            return "started"

        def blocking(s):
            import time

            time.sleep(0.05)
            return threading.current_thread().name

        return await c.parallel(w=waiter, s=starter, b=blocking).arun({})

    out = asyncio.run(run())
    assert out["w"] == "waited" and out["s"] == "started"
    assert out["b"] != threading.main_thread().name


def test_parallel_errors_name_the_function():
    def bad(s):
        raise ValueError("nope")

    with pytest.raises(ValueError) as info:
        c.parallel(ok=lambda s: 1, broken=bad)({})
    assert "in workflow step 'broken'" in info.value.__notes__
    with pytest.raises(ValueError) as info:
        asyncio.run(c.parallel(ok=lambda s: 1, broken=bad).arun({}))
    assert "in workflow step 'broken'" in info.value.__notes__
    with pytest.raises(c.ValidationError, match="at least one function"):
        c.parallel()
    with pytest.raises(c.ValidationError, match="'x' is not a function"):
        c.parallel(x=1)


@attrs.frozen
class Verdict:
    label: str


def test_llm_step_builds_a_request_from_state_and_merges_the_answer():
    script = c.mock_script(
        ["Paris", {"tool_calls": [{"name": "Verdict", "arguments": {"label": "geo"}}]}]
    )

    def ask(s):
        return c.request("m", s["question"], mock=script)

    answer = c.llm_step("answer", ask, c.mock_call)
    out = answer({"question": "Capital of France?"})
    assert out["answer"] == "Paris"
    assert script.calls[0]["messages"][0]["content"] == "Capital of France?"
    typed = c.llm_step(
        "kind", lambda s: c.with_schema(Verdict)(ask(s)), c.mock_call, into="verdict"
    )
    assert typed({"question": "q"})["verdict"] == Verdict("geo")


def test_llm_step_async_and_errors():
    script = c.mock_script(["async answer"])
    step = c.llm_step(
        "a", lambda s: c.request("m", "q", mock=script), c.mock_call, acall=c.mock_acall
    )
    assert asyncio.run(step.arun({}))["a"] == "async answer"
    broken = c.llm_step(
        "a", lambda s: c.request("m", "q", mock=c.RateLimitError("slow")), c.mock_call
    )
    with pytest.raises(c.RateLimitError) as info:
        broken({})
    assert "in workflow step 'a'" in info.value.__notes__
    with pytest.raises(c.ValidationError, match="needs a function building a request"):
        c.llm_step("a", "not callable")
    default = c.llm_step("a", lambda s: c.request("m", "q"))  # c.call: dispatch on the model
    assert default.kind == "llm"
