import asyncio
import pickle

import pytest
from toolz import pipe

import conduit as c

USAGE = {"input_tokens": 1000, "output_tokens": 1000, "total_tokens": 2000}


def test_every_retry_attempt_spends_from_the_budget_even_when_added_outermost():
    budget = c.Budget(max_calls=10)
    script = c.mock_script(
        "ok", fail_first=2, error=c.ServerError("x", status_code=503, retry_after=0.01)
    )
    ctx = pipe(c.request("m", "hi", mock=script), c.with_budget(budget), c.with_retry, c.mock_call)
    assert ctx["attempts"] == 3 and budget.spent["calls"] == 3
    assert ctx["budget"]["calls"] == 3


def test_cost_limit_stops_the_next_call_with_what_was_spent():
    budget = c.Budget(max_cost=0.0008)
    req = pipe(
        c.request("gpt-4o-mini", "hi", mock={"content": "ok", "usage": USAGE}),
        c.with_budget(budget),
    )
    c.mock_call(req)  # 1000 * 0.15e-6 + 1000 * 0.60e-6 = 0.00075
    c.mock_call(req)  # allowed: the limit was not reached before it; now 0.0015
    with pytest.raises(c.BudgetExceededError) as exc:
        c.mock_call(req)
    assert exc.value.data["exceeded"] == ["cost"]
    assert exc.value.data["spent"]["cost"] == pytest.approx(0.0015)
    assert exc.value.data["spent"]["calls"] == 2
    assert len(req["mock"].calls) == 2  # nothing was sent for the refused call


def test_token_limit_and_cache_hits_are_free():
    budget = c.Budget(max_tokens=2500)
    store = c.MemoryCache()
    req = pipe(
        c.request("m", "hi", mock={"content": "ok", "usage": USAGE}),
        c.with_budget(budget),
        c.with_cache(store),
    )
    c.mock_call(req)
    for _ in range(5):
        assert c.mock_call(req)["cache_hit"] is True
    assert budget.spent["tokens"] == 2000 and budget.spent["calls"] == 1
    with pytest.raises(c.BudgetExceededError):
        c.mock_call(req.set("messages", c.freeze([c.user("another")])))  # a miss: 1 more call
        c.mock_call(req.set("messages", c.freeze([c.user("a third")])))


def test_one_budget_shared_by_streams_and_async_calls():
    budget = c.Budget(max_calls=3)
    req = pipe(c.request("m", "hi"), c.with_budget(budget))
    c.mock_call(req)
    list(c.mock_stream(req))
    asyncio.run(c.mock_acall(req))
    with pytest.raises(c.BudgetExceededError):
        list(c.mock_stream(req))


def test_budget_refuses_to_be_pickled():
    """A pickled Budget would silently become one budget per process: it refuses instead."""
    with pytest.raises(c.ConduitError, match="RedisBudget"):
        pickle.dumps(c.Budget(max_calls=5))


def test_budget_input_errors():
    with pytest.raises(c.ValidationError, match="max_cost, max_tokens and/or max_calls"):
        c.with_budget()
    with pytest.raises(c.ValidationError, match="max_cost, max_tokens and/or max_calls"):
        pipe(c.request("m"), c.with_budget)  # no bare form: no limit suits every program


def test_estimate_prices_the_wire_prompt_and_matches_what_the_budget_reserves():
    from conduit.cost import estimate_call_cost, estimate_usage

    history = [c.user("x" * 4000), c.assistant("y" * 4000), c.user("short question?")]
    whole = c.estimate(c.request("gpt-4o-mini", history, max_tokens=500))
    windowed = c.estimate(pipe(c.request("gpt-4o-mini", history, max_tokens=500), c.with_window(1)))
    assert windowed["input_tokens"] < whole["input_tokens"]  # the prompt the window would send
    assert windowed["output_tokens"] == windowed["max_output_tokens"] == 500
    cost = whole["cost"]
    assert 0 < cost["min"] < cost["reserved"] <= cost["max"]
    req = c.request("gpt-4o-mini", history, max_tokens=500)
    assert cost["reserved"] == estimate_call_cost(req)  # the budget's own estimate
    assert whole["input_tokens"] == estimate_usage(req)["input_tokens"]
    unset = c.estimate(c.request("gpt-4o-mini", "hi"))
    assert unset["output_tokens"] == 256 and unset["max_output_tokens"] == 16_384
    assert unset["cost"]["max"] > unset["cost"]["reserved"]


def test_estimate_of_a_cached_request_is_free():
    cache = c.MemoryCache()
    req = pipe(c.request("gpt-4o-mini", "hi", mock="cached"), c.with_cache(cache))
    c.mock_call(req)
    assert c.estimate(req)["cost"] == {"min": 0.0, "reserved": 0.0, "max": 0.0}


def test_the_output_limit_counts_under_either_name_and_stops_at_the_models_maximum():
    o3 = c.estimate(c.request("o3-mini", "hi", max_completion_tokens=900))
    assert o3["output_tokens"] == o3["max_output_tokens"] == 900  # not the 256 of an unset limit
    both = c.request("o3-mini", "hi", max_tokens=50, max_completion_tokens=900)
    assert c.estimate(both)["output_tokens"] == 900  # what the wire sends wins
    huge = c.estimate(c.request("gpt-4o-mini", "hi", max_tokens=10**7))
    assert huge["output_tokens"] == huge["max_output_tokens"] == 16_384  # the model stops there


def test_the_largest_answer_is_what_the_wire_sends_when_the_request_sets_no_limit():
    """Anthropic requires max_tokens, so an unset limit is sent as 4,096 (plus a thinking
    budget): the estimate's largest answer is that number, not the model's 64,000."""
    for options in ({}, {"thinking": {"type": "enabled", "budget_tokens": 2048}}):
        req = c.request("anthropic:claude-sonnet-4-5", "hi", api_key="sk-ant-x", **options)
        sent = c.wire(req)["body"]["max_tokens"]
        assert sent == 4096 + options.get("thinking", {}).get("budget_tokens", 0)
        assert c.estimate(req)["max_output_tokens"] == sent
    asked = c.request("anthropic:claude-sonnet-4-5", "hi", api_key="sk-ant-x", max_tokens=300)
    assert c.estimate(asked)["max_output_tokens"] == c.wire(asked)["body"]["max_tokens"] == 300


def test_a_budget_reserves_max_completion_tokens():
    """Two calls each allowed 900 tokens under a 1,000-token budget: the second waits for none
    and is refused while the first is in flight (with max_tokens unread it reserved 256)."""
    budget = c.Budget(max_tokens=1_000)
    seen = []

    def slow_then_answer(req):
        if not seen:
            seen.append(req)
            with pytest.raises(c.BudgetExceededError):
                c.mock_call(
                    pipe(
                        c.request("o3-mini", "second", mock="b", max_completion_tokens=900),
                        c.with_budget(budget),
                    )
                )
        return "first"

    c.mock_call(
        pipe(
            c.request("o3-mini", "first", mock=slow_then_answer, max_completion_tokens=900),
            c.with_budget(budget),
        )
    )
    assert seen
