"""Chain-order tests in the style of Pedestal's interceptor tests: every stage is traced."""

import asyncio
import pickle
import time

import pytest
from hypothesis import given
from pyrsistent import pvector
from toolz import compose_left, pipe

import conduit as c
from conduit._drive import drive
from conduit.middleware import call_with, configurable, middlewares
from tests.strategies import requests


def _trace(req, entry):
    return req.set("trace", req.get("trace", pvector()).append(entry))


def trace(req, label):
    ctx = yield _trace(req, f"enter {label}")
    return _trace(ctx, f"leave {label}")


def tracer(label):
    return c.middleware(trace, name=label, label=label)


def catch(req, label):
    entered = _trace(req, f"enter {label}")
    try:
        ctx = yield entered
    except c.ServerError as exc:
        return _trace(entered, f"error {label}: {exc.status_code}").set(
            "response", c.make_response("recovered")
        )
    return _trace(ctx, f"leave {label}")


def terminate(req):
    return _trace(req, "terminate").set("response", c.make_response("short-circuit"))
    yield  # pragma: no cover - makes this a generator


def retry_twice(req):
    for attempt in range(3):
        try:
            return (yield _trace(req, f"attempt {attempt}"))
        except c.ServerError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


RUNNERS = {
    "sync": c.mock_call,
    "async": lambda req: asyncio.run(c.mock_acall(req)),
    "stream": lambda req: _stream_ctx(req),
}


def _stream_ctx(req):
    """Run a stream, returning the final context as the middleware saw it."""
    from conduit._drive import Done
    from conduit.exchange import exchange_stream
    from conduit.middleware import stream_with

    seen = {}

    def base(r):
        for item in exchange_stream("mock", r):
            if isinstance(item, Done):
                seen["ctx"] = item.ctx
            yield item

    events = list(stream_with(base, req))
    seen["events"] = events
    return seen


@pytest.fixture(params=["sync", "async"])
def run(request):
    return RUNNERS[request.param]


def test_enter_in_order_leave_in_reverse(run):
    req = pipe(c.request("m", "hi"), c.with_middleware(tracer("a"), tracer("b"), tracer("c")))
    ctx = run(req)
    assert list(ctx["trace"]) == [
        "enter a",
        "enter b",
        "enter c",
        "leave c",
        "leave b",
        "leave a",
    ]
    assert c.content(ctx) == "hi"


def test_error_unwinds_to_the_nearest_handler_and_leave_resumes_outside(run):
    boom = c.ServerError("down", status_code=503)
    req = pipe(
        c.request("m", "hi", mock=boom),
        c.with_middleware(tracer("outer"), c.middleware(catch, label="catcher"), tracer("inner")),
    )
    ctx = run(req)
    # inner never leaves (its flow re-raised); catcher handles; outer leaves normally
    assert list(ctx["trace"]) == [
        "enter outer",
        "enter catcher",
        "error catcher: 503",
        "leave outer",
    ]
    assert c.content(ctx) == "recovered"


def test_unhandled_error_propagates_through_every_flow(run):
    req = pipe(
        c.request("m", "hi", mock=c.AuthenticationError("no", status_code=401)),
        c.with_middleware(tracer("a"), tracer("b")),
    )
    with pytest.raises(c.AuthenticationError):
        run(req)


def test_termination_skips_inner_middleware_and_the_handler(run):
    script = c.mock_script("never")
    req = pipe(
        c.request("m", "hi", mock=script),
        c.with_middleware(tracer("outer"), terminate, tracer("inner")),
    )
    ctx = run(req)
    assert list(ctx["trace"]) == ["enter outer", "terminate", "leave outer"]
    assert c.content(ctx) == "short-circuit"
    assert script.calls == ()


def test_reentry_reruns_inner_middleware_and_the_handler(run):
    script = c.mock_script("ok", fail_first=2)
    req = pipe(
        c.request("m", "hi", mock=script),
        c.with_middleware(tracer("outer"), retry_twice, tracer("inner")),
    )
    ctx = run(req)
    assert list(ctx["trace"]) == [
        "enter outer",
        "attempt 2",
        "enter inner",
        "leave inner",
        "leave outer",
    ]
    assert len(script.calls) == 3
    # each attempt's request passed through the inner middleware again
    assert [list(r["trace"]) for r in script.calls] == [
        ["enter outer", f"attempt {i}", "enter inner"] for i in range(3)
    ]


def test_reentry_gives_up_after_its_attempts(run):
    script = c.mock_script("ok", fail_first=5)
    req = pipe(c.request("m", "hi", mock=script), c.with_middleware(retry_twice))
    with pytest.raises(c.ServerError):
        run(req)
    assert len(script.calls) == 3


def sleepy(req, seconds):
    return (yield req.set("conduit/sleep", seconds))


def test_driver_performs_described_sleep_and_strips_the_effect_key(run):
    script = c.mock_script("ok")
    req = pipe(
        c.request("m", "hi", mock=script), c.with_middleware(c.middleware(sleepy, seconds=0.05))
    )
    start = time.perf_counter()
    run(req)
    assert time.perf_counter() - start >= 0.05
    assert "conduit/sleep" not in script.calls[0]


def test_flow_returning_none_is_a_clear_error(run):
    def forgetful(req):
        yield req

    req = pipe(c.request("m", "hi"), c.with_middleware(forgetful))
    with pytest.raises(c.ConduitError, match="middleware 'forgetful' returned NoneType"):
        run(req)


def test_flow_driven_by_hand_with_canned_results():
    req = c.request("m", "hi")
    flow = retry_twice(req)
    first = next(flow)
    assert first["trace"] == ["attempt 0"]
    second = flow.throw(c.ServerError("busy", status_code=503))
    assert second["trace"] == ["attempt 1"]
    with pytest.raises(StopIteration) as done:
        flow.send(second.set("response", c.make_response("fine")))
    assert c.content(done.value.value) == "fine"


def test_drive_with_a_plain_handler():
    handler = lambda r: r.set("response", c.make_response("x"))  # noqa: E731
    out = drive("t", trace(c.request("m"), "t"), handler)
    assert list(out["trace"]) == ["enter t", "leave t"]


def test_on_request_and_on_response():
    up = c.on_request(lambda r: r.set("model", "big"), name="up")
    mark = c.on_response(lambda ctx: ctx.set("seen", ctx["response"]["model"]), name="mark")
    ctx = pipe(c.request("small", "hi"), c.with_middleware(mark, up), c.mock_call)
    assert ctx["seen"] == "big"


def test_with_middleware_composes_and_records_as_data():
    both = compose_left(c.with_middleware(tracer("a")), c.with_middleware(tracer("b")))
    req = both(c.request("m"))
    assert [m.name for m in middlewares(req)] == ["a", "b"]
    assert middlewares(req)[0].options == {"label": "a"}


def test_middleware_pickles():
    mw = tracer("p")
    assert pickle.loads(pickle.dumps(mw)) == mw
    req = pipe(c.request("m", "hi"), c.with_middleware(mw))
    assert pickle.loads(pickle.dumps(req)) == req


def test_middleware_needs_a_callable():
    with pytest.raises(c.ValidationError, match="needs a generator function"):
        c.middleware("not a flow")


# --- streams: the same flows run around streams; leave sees the collected response ----------


def test_stream_runs_middleware_and_leave_sees_collected_response():
    req = pipe(c.request("m", "hi", mock="Hello there friend"), c.with_middleware(tracer("a")))
    seen = _stream_ctx(req)
    assert c.collect(seen["events"])["content"] == "Hello there friend"
    assert seen["ctx"]["trace"] == ["enter a"]


def test_stream_termination_replays_the_response_as_events():
    req = pipe(c.request("m", "hi"), c.with_middleware(terminate))
    events = list(c.mock_stream(req))
    assert events[0]["type"] == "message_start"
    assert c.collect(events)["content"] == "short-circuit"


def test_stream_retry_before_first_event_reruns():
    script = c.mock_script("streamed", fail_first=2)
    req = pipe(c.request("m", "hi", mock=script), c.with_middleware(retry_twice))
    assert c.collect(c.mock_stream(req))["content"] == "streamed"
    assert len(script.calls) == 3


def test_stream_error_handled_by_a_flow_replays_its_answer():
    req = pipe(
        c.request("m", "hi", mock=c.ServerError("x", status_code=500)),
        c.with_middleware(c.middleware(catch, label="c")),
    )
    assert c.collect(c.mock_stream(req))["content"] == "recovered"


def test_stream_cannot_be_retried_after_events_were_delivered():
    def retry_after_success(req):
        yield req
        return (yield req)

    req = pipe(c.request("m", "hi"), c.with_middleware(retry_after_success))
    with pytest.raises(c.ConduitError, match="re-run a stream after its events were delivered"):
        list(c.mock_stream(req))


async def test_async_stream_runs_middleware():
    script = c.mock_script("async stream", fail_first=1)
    req = pipe(c.request("m", "hi", mock=script), c.with_middleware(retry_twice, tracer("t")))
    events = [e async for e in c.mock_astream(req)]
    assert c.collect(events)["content"] == "async stream"
    assert len(script.calls) == 2


async def test_async_stream_replays_on_termination_and_rejects_late_retry():
    events = [e async for e in c.mock_astream(pipe(c.request("m"), c.with_middleware(terminate)))]
    assert c.collect(events)["content"] == "short-circuit"

    def late(req):
        yield req
        return (yield req)

    with pytest.raises(c.ConduitError, match="re-run a stream"):
        [e async for e in c.mock_astream(pipe(c.request("m", "x"), c.with_middleware(late)))]


async def test_async_stream_sleep_effect_is_performed():
    req = pipe(c.request("m", "hi"), c.with_middleware(c.middleware(sleepy, seconds=0.05)))
    start = time.perf_counter()
    assert c.collect([e async for e in c.mock_astream(req)])["content"] == "hi"
    assert time.perf_counter() - start >= 0.05


def test_sync_stream_sleep_effect_is_performed():
    req = pipe(c.request("m", "hi"), c.with_middleware(c.middleware(sleepy, seconds=0.05)))
    start = time.perf_counter()
    assert c.collect(c.mock_stream(req))["content"] == "hi"
    assert time.perf_counter() - start >= 0.05


# --- laws ------------------------------------------------------------------------------------


@given(requests)
def test_sync_and_async_pipelines_agree(req):
    mw = c.with_middleware(tracer("a"), c.on_request(c.set_options({"seed": 1}), name="seed"))
    sync_ctx = pipe(req, mw, c.mock_call)
    async_ctx = asyncio.run(c.mock_acall(pipe(req, mw)))
    assert sync_ctx == async_ctx


@given(requests)
def test_call_with_no_middleware_is_the_bare_handler(req):
    base = lambda r: r.set("response", c.make_response("x"))  # noqa: E731
    assert call_with(base, req) == base(req)


def _tag_flow(req, label="default"):
    ctx = yield req
    return ctx.set("tag", label)


with_tag = configurable(lambda **opts: c.middleware(_tag_flow, name="tag", **opts), "with_tag")


def test_with_star_works_bare_and_configured():
    bare = pipe(c.request("m", "hi"), with_tag, c.mock_call)
    configured = pipe(c.request("m", "hi"), with_tag(label="x"), c.mock_call)
    assert (bare["tag"], configured["tag"]) == ("default", "x")
    assert with_tag.__name__ == "with_tag" and with_tag(label="x").__name__ == "with_tag"
    assert with_tag() is with_tag
    both = compose_left(with_tag(label="outer"), with_tag(label="inner"))
    assert pipe(c.request("m", "hi"), both, c.mock_call)["tag"] == "outer"
