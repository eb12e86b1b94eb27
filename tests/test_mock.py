import asyncio
import pickle
import threading
import time

import pytest

import conduit as c


def test_echo_by_default():
    ctx = c.mock_call(
        c.request("m", [c.system("s"), c.user("first"), c.assistant("a"), c.user("last")])
    )
    assert c.content(ctx) == "last"
    assert ctx["response"]["model"] == "m"
    assert ctx["response"]["stop_reason"] == "end_turn"


def test_echo_without_user_message_is_empty_text():
    assert c.content(c.mock_call(c.request("m", [c.system("only system")]))) == ""


def test_one_reply_repeats_for_every_call():
    req = c.request("m", "hi", mock="always")
    assert [c.content(c.mock_call(req)) for _ in range(3)] == ["always"] * 3


def test_sequence_answers_in_order_then_says_it_is_exhausted():
    req = c.request("m", "hi", mock=["one", "two"])
    assert c.content(c.mock_call(req)) == "one"
    assert c.content(c.mock_call(req)) == "two"
    with pytest.raises(
        c.ConduitError, match="mock script exhausted: it has 2 replies and this is call 3"
    ):
        c.mock_call(req)


def test_function_script_sees_the_request():
    req = c.request("m", "what model?", mock=lambda r: f"I am {r['model']}")
    assert c.content(c.mock_call(c.set_model("big")(req))) == "I am big"


def test_response_map_reply_is_completed():
    ctx = c.mock_call(
        c.request(
            "m",
            "hi",
            mock={
                "content": "x",
                "stop_reason": "max_tokens",
                "usage": {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10},
            },
        )
    )
    assert ctx["response"]["stop_reason"] == "max_tokens"
    assert c.usage(ctx)["total_tokens"] == 10
    assert ctx["response"]["role"] == "assistant"
    assert ctx["response"]["id"] == "mock-0"


def test_tool_call_replies():
    ctx = c.mock_call(
        c.request(
            "m",
            "add 1 and 2",
            mock={
                "tool_calls": [
                    {"name": "add", "arguments": {"a": 1, "b": 2}},
                    {"id": "mine", "name": "mul"},
                ]
            },
        )
    )
    calls = c.tool_calls(ctx)
    assert [(t["id"], t["name"]) for t in calls] == [("call_0_0", "add"), ("mine", "mul")]
    assert calls[0]["arguments"] == {"a": 1, "b": 2}
    assert calls[1]["arguments"] == {}
    assert ctx["response"]["stop_reason"] == "tool_use"


def test_exception_reply_is_raised_every_time_as_a_fresh_copy():
    err = c.RateLimitError("slow down", status_code=429, retry_after=1.0)
    req = c.request("m", "hi", mock=err)
    with pytest.raises(c.RateLimitError) as first:
        c.mock_call(req)
    with pytest.raises(c.RateLimitError) as second:
        c.mock_call(req)
    assert first.value is not second.value
    assert second.value.retry_after == 1.0


def test_fail_first_n_calls_then_answer():
    script = c.mock_script("ok", fail_first=2, error=c.TimeoutError("slow"))
    req = c.request("m", "hi", mock=script)
    for _ in range(2):
        with pytest.raises(c.TimeoutError):
            c.mock_call(req)
    assert c.content(c.mock_call(req)) == "ok"
    assert len(script.calls) == 3


def test_default_failure_is_a_retryable_server_error():
    req = c.request("m", "hi", mock=c.mock_script("ok", fail_first=1))
    with pytest.raises(c.ServerError) as exc:
        c.mock_call(req)
    assert c.is_retryable(exc.value)
    assert exc.value.provider == "mock"


def test_records_requests_received_in_order():
    script = c.mock_script(["a", "b"])
    c.mock_call(c.request("m", "first", mock=script))
    c.mock_call(c.request("m", "second", mock=script, temperature=0))
    assert [c.last_message(r)["content"] for r in script.calls] == ["first", "second"]
    assert script.calls[1]["options"]["temperature"] == 0
    assert all("response" not in r for r in script.calls)


def test_delay_is_applied_sync_and_async():
    req = c.request("m", "hi", mock=c.mock_script("x", delay=0.05))
    start = time.perf_counter()
    c.mock_call(req)
    asyncio.run(c.mock_acall(req))
    assert time.perf_counter() - start >= 0.1


async def test_async_delays_overlap():
    req = c.request("m", "hi", mock=c.mock_script("x", delay=0.5))
    start = time.perf_counter()
    out = await asyncio.gather(*(c.mock_acall(req) for _ in range(5)))
    assert time.perf_counter() - start < 1.5  # one delay, not five (2.5 s)
    assert [c.content(o) for o in out] == ["x"] * 5


def test_stream_event_order_follows_design():
    events = list(
        c.mock_stream(
            c.request(
                "m",
                "hi",
                mock={
                    "content": "Let me add",
                    "tool_calls": [{"id": "t1", "name": "add", "arguments": {"a": 1}}],
                },
            )
        )
    )
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_end"
    assert (
        kinds.index("tool_call_start")
        < kinds.index("tool_call_delta")
        < kinds.index("tool_call_end")
    )
    assert events[-1]["stop_reason"] == "tool_use"
    resp = c.collect(events)
    assert resp["content"] == "Let me add"
    assert resp["tool_calls"] == [{"id": "t1", "name": "add", "arguments": {"a": 1}}]


def test_stream_matches_call():
    req = c.request("m", "tell me", mock="A fairly long answer with several words")
    streamed = c.collect(c.mock_stream(req))
    called = c.mock_call(req)["response"]
    assert (streamed["id"], called["id"]) == ("mock-0", "mock-1")  # one id per call
    assert streamed.set("id", None) == called.set("id", None)


def test_stream_chunk_delay_paces_events():
    req = c.request("m", "hi", mock=c.mock_script("one two three", chunk_delay=0.03))
    start = time.perf_counter()
    events = list(c.mock_stream(req))
    assert time.perf_counter() - start >= 0.03 * (len(events) - 1)


async def test_async_stream_errors_and_pacing():
    req = c.request("m", "hi", mock=c.mock_script("one two", chunk_delay=0.02, delay=0.02))
    events = [e async for e in c.mock_astream(req)]
    assert c.collect(events)["content"] == "one two"
    with pytest.raises(c.ServerError):
        [e async for e in c.mock_astream(c.request("m", "hi", mock=c.ServerError("x")))]


def test_stream_error_raises_before_any_event():
    with pytest.raises(c.AuthenticationError):
        next(iter(c.mock_stream(c.request("m", "hi", mock=c.AuthenticationError("no")))))


def test_script_is_thread_safe():
    script = c.mock_script(lambda r: "ok")
    req = c.request("m", "hi", mock=script)
    threads = [
        threading.Thread(target=lambda: [c.mock_call(req) for _ in range(50)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(script.calls) == 200


def test_script_and_request_pickle():
    req = c.request("m", "hi", mock=["a", "b"])
    c.mock_call(req)
    back = pickle.loads(pickle.dumps(req))
    assert back == req
    assert len(back["mock"].calls) == 1
    assert c.content(c.mock_call(back)) == "b"


@pytest.mark.parametrize("bad", [[], 42])
def test_bad_scripts_are_clear_errors(bad):
    with pytest.raises(c.ValidationError, match="mock"):
        c.request("m", "hi", mock=bad)


def test_function_returning_junk_is_a_clear_error():
    with pytest.raises(c.ValidationError, match="mock reply must be text"):
        c.mock_call(c.request("m", "hi", mock=lambda r: 42))


def test_usage_is_estimated_from_text():
    ctx = c.mock_call(c.request("m", "x" * 40, mock="y" * 20))
    assert c.usage(ctx)["output_tokens"] == 5
    assert c.usage(ctx)["input_tokens"] == 14
