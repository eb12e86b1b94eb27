"""Built-in flows driven by hand with canned results: no handler, no clock, no network."""

import logging

import pytest
from pyrsistent import pmap

import conduit as c
from conduit._drive import Effect
from conduit.cache import cache_flow, cache_key
from conduit.cost import cost_flow
from conduit.fallback import fallback_flow
from conduit.log import logging_flow
from conduit.retry import backoff, retry_flow
from conduit.timeout import timeout_flow

REQ = c.request("gpt-4o-mini", "hi")
OK = REQ.set(
    "response", c.make_response("fine", model="gpt-4o-mini", usage=c.make_usage(1000, 500))
)


def finish(flow, value):
    with pytest.raises(StopIteration) as done:
        flow.send(value)
    return done.value.value


def test_retry_sleeps_then_succeeds_with_attempt_count():
    flow = retry_flow(REQ, max_attempts=4)
    assert next(flow) is REQ
    second = flow.throw(c.ServerError("busy", status_code=503))
    assert second["conduit/sleep"] == {"up_to": 0.5}
    third = flow.throw(c.ConnectionError("reset"))
    assert third["conduit/sleep"] == {"up_to": 1.0}
    assert finish(flow, OK)["attempts"] == 3


def test_retry_honours_retry_after_up_to_the_cap():
    flow = retry_flow(REQ, max_retry_after=10)
    next(flow)
    assert (
        flow.throw(c.RateLimitError("slow", status_code=429, retry_after=7.5))["conduit/sleep"]
        == 7.5
    )
    assert flow.throw(c.RateLimitError("slow", status_code=429, retry_after=99))[
        "conduit/sleep"
    ] == {"up_to": 1.0}


@pytest.mark.parametrize(
    "err",
    [
        c.BadRequestError("bad", status_code=400),
        c.AuthenticationError("no", status_code=401),
        c.PermissionDeniedError("no", status_code=403),
        c.NotFoundError("no", status_code=404),
        c.BadRequestError("no", status_code=422),
        c.ValidationError("shape"),
        c.TimeoutError("deadline", data={"deadline_exceeded": True}),
    ],
)
def test_retry_never_repeats_a_final_error(err):
    flow = retry_flow(REQ)
    next(flow)
    with pytest.raises(type(err)):
        flow.throw(err)


def test_retry_gives_up_after_max_attempts_and_says_how_many():
    flow = retry_flow(REQ, max_attempts=2)
    next(flow)
    flow.throw(c.ServerError("x", status_code=500))
    with pytest.raises(c.ServerError) as exc:
        flow.throw(c.ServerError("x", status_code=500))
    assert exc.value.data["attempts"] == 2


def test_backoff_doubles_to_the_cap():
    assert [backoff(n)["up_to"] for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_timeout_flow_asks_for_a_deadline():
    flow = timeout_flow(REQ, seconds=2.5)
    assert next(flow)["conduit/deadline_in"] == 2.5
    assert finish(flow, OK) is OK


def test_fallback_tries_alternatives_in_order():
    flow = fallback_flow(
        REQ, models=("anthropic:claude-haiku-4-5", {"model": "b", "base_url": "u"})
    )
    assert next(flow)["model"] == "gpt-4o-mini"
    alt = flow.throw(c.ServerError("down", status_code=500))
    assert alt["model"] == "anthropic:claude-haiku-4-5"
    alt = flow.throw(c.TimeoutError("slow"))
    assert (alt["model"], alt["base_url"]) == ("b", "u")
    with pytest.raises(c.ConnectionError):
        flow.throw(c.ConnectionError("all down"))


def test_fallback_does_not_hide_a_bad_request_shape():
    flow = fallback_flow(REQ, models=("b",))
    next(flow)
    with pytest.raises(c.ValidationError):
        flow.throw(c.ValidationError("malformed"))


def test_cache_flow_hit_skips_the_call():
    flow = cache_flow(REQ, store=None)
    lookup = next(flow)
    assert isinstance(lookup, Effect)
    ctx = finish(
        flow,
        {
            "role": "assistant",
            "content": "cached",
            "model": "m",
            "id": None,
            "stop_reason": "end_turn",
            "usage": {},
            "tool_calls": [],
        },
    )
    assert ctx["cache_hit"] is True and c.content(ctx) == "cached"


def test_cache_flow_miss_calls_then_stores():
    flow = cache_flow(REQ, store=None)
    next(flow)
    assert flow.send(None) is REQ
    store = flow.send(OK)
    assert isinstance(store, Effect)
    assert finish(flow, None)["cache_hit"] is False


def test_cache_flow_does_not_store_failures():
    flow = cache_flow(REQ, store=None)
    next(flow)
    flow.send(None)
    with pytest.raises(c.ServerError):
        flow.throw(c.ServerError("x"))


def test_cost_flow_prices_usage_and_charges_nothing_for_hits():
    flow = cost_flow(REQ)
    next(flow)
    assert finish(flow, OK)["cost"] == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1e6)
    flow = cost_flow(REQ)
    next(flow)
    assert finish(flow, OK.set("cache_hit", True))["cost"] == 0.0


def test_cost_flow_unknown_model_is_none_and_warned(caplog):
    flow = cost_flow(REQ.set("model", "my-finetune"))
    next(flow)
    with caplog.at_level(logging.WARNING, logger="conduit"):
        unpriced = OK.set("model", "my-finetune")
        ctx = finish(flow, unpriced.set("response", OK["response"].set("model", "my-finetune")))
    assert ctx["cost"] is None
    assert "no price known for model 'my-finetune'" in caplog.text


def test_logging_flow_reads_the_clock_and_logs_through_effects():
    flow = logging_flow(REQ)
    assert next(flow).run is not None  # the start time, an effect
    assert flow.send(10.0) is REQ
    assert isinstance(flow.send(OK), Effect)  # the end time
    emit = flow.send(10.5)
    assert isinstance(emit, Effect)
    assert finish(flow, None) is OK


def test_cache_key_ignores_secrets_and_order_but_not_content():
    a = c.request("m", "hi", temperature=0.1, api_key="k1", metadata={"x": 1})
    b = c.request("m", "hi", temperature=0.1, api_key="k2")
    assert cache_key(a) == cache_key(b)
    assert cache_key(a) != cache_key(c.request("m", "hi", temperature=0.2))
    assert cache_key(a) != cache_key(c.request("n", "hi", temperature=0.1))
    tools = [{"name": "f", "description": "d", "parameters": {"type": "object"}}]
    assert cache_key(a) != cache_key(a.set("tools", c.freeze(tools)))
    assert cache_key(pmap(dict(a))) == cache_key(a)
