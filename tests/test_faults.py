"""Retry, timeout and error mapping against a real misbehaving HTTP server on loopback."""

import asyncio
import time
import uuid

import pytest
from toolz import pipe

import conduit as c
from conduit.providers import _http
from tests.faultserver import FaultServer


@pytest.fixture(scope="module")
def server():
    srv = FaultServer()
    yield srv
    srv.close()


@pytest.fixture
def at(server):
    """Return (request for a plan, hits counter for it)."""

    def make(plan, **options):
        test_id = uuid.uuid4().hex[:8]
        req = c.request("fault-model", "hi", base_url=server.url(test_id, plan), **options)
        return req, lambda: server.hits[test_id]

    return make


def no_connection_in_use():
    pools = [_http.client()._transport._pool]
    return all(conn.is_idle() or conn.is_closed() for pool in pools for conn in pool.connections)


FAST = c.with_retry(max_attempts=4, initial_delay=0.01, max_delay=0.05)


@pytest.mark.parametrize("status", ["500", "502", "503", "529"])
def test_server_errors_are_retried_until_success(at, status):
    req, hits = at(f"{status},{status},ok")
    start = time.monotonic()
    ctx = pipe(req, FAST, c.openai_call)
    assert c.content(ctx) == "recovered"
    assert ctx["attempts"] == 3 and hits() == 3
    assert time.monotonic() - start < 2
    assert no_connection_in_use()


def test_429_retry_after_is_honoured(at):
    req, hits = at("429~0.2,ok")
    start = time.monotonic()
    ctx = pipe(req, FAST, c.openai_call)
    elapsed = time.monotonic() - start
    assert ctx["attempts"] == 2 and hits() == 2
    assert 0.2 <= elapsed < 1.5  # waited what the server asked, not the 0.01 s backoff


def test_gives_up_after_max_attempts_with_the_right_error(at):
    req, hits = at("503")
    with pytest.raises(c.ServerError) as exc:
        pipe(req, FAST, c.openai_call)
    assert exc.value.status_code == 503 and exc.value.data["attempts"] == 4
    assert hits() == 4
    assert no_connection_in_use()


def test_connection_resets_are_retried(at):
    req, hits = at("reset,reset,ok")
    ctx = pipe(req, FAST, c.openai_call)
    assert ctx["attempts"] == 3 and hits() == 3


def test_connection_reset_without_retry_is_a_connection_error(at):
    req, _ = at("reset")
    with pytest.raises(c.ConnectionError, match="could not talk to openai"):
        c.openai_call(req)


def test_read_timeout_is_retried_then_succeeds(at):
    req, hits = at("slow~3,ok", timeout=0.2)
    start = time.monotonic()
    ctx = pipe(req, FAST, c.openai_call)
    assert ctx["attempts"] == 2 and hits() == 2
    assert time.monotonic() - start < 2  # the read timeout, not the 3 s answer


def test_deadline_covers_all_attempts(at):
    req, hits = at("slow~2", timeout=0.2)  # every attempt times out after 0.2 s
    start = time.monotonic()
    with pytest.raises(c.TimeoutError) as exc:
        pipe(
            req,
            c.with_timeout(0.5),
            c.with_retry(max_attempts=10, initial_delay=0.01),
            c.openai_call,
        )
    elapsed = time.monotonic() - start
    assert exc.value.data.get("deadline_exceeded") is True
    assert 0.45 <= elapsed < 1.5  # the deadline, not 10 attempts of 0.2 s
    assert 2 <= hits() <= 3


def test_client_errors_are_never_retried(at, server):
    req, hits = at("badjson")
    with pytest.raises(c.ProviderError, match="not JSON"):
        pipe(req, FAST, c.openai_call)
    assert hits() == 1


def test_truncated_stream_raises_and_retry_before_first_event_does_not_apply(at):
    req, hits = at("trunc")
    got = []
    with pytest.raises(c.ConduitError):
        for event in pipe(req, FAST, c.openai_stream):
            got.append(event)
    assert got and got[0]["type"] == "message_start"  # events were delivered: no silent restart
    assert hits() == 1


def test_stream_retries_before_its_first_event(at):
    req, hits = at("503,ok")
    events = list(pipe(req, FAST, c.openai_stream))
    assert c.collect(events)["content"].startswith("w0 w1")
    assert hits() == 2


async def test_async_retry_and_deadline(at):
    req, hits = at("500,ok")
    ctx = await c.openai_acall(pipe(req, FAST))
    assert ctx["attempts"] == 2 and hits() == 2
    slow, _ = at("slow~3")
    start = time.monotonic()
    with pytest.raises(c.TimeoutError):
        await c.openai_acall(pipe(slow, c.with_timeout(0.2), FAST))
    assert time.monotonic() - start < 1.5  # the deadline, not the 3 s answer


async def test_async_calls_do_not_hang_under_concurrency(at):
    reqs = [at("500,ok")[0] for _ in range(20)]
    out = await asyncio.wait_for(asyncio.gather(*(c.openai_acall(pipe(r, FAST)) for r in reqs)), 10)
    assert all(c.content(ctx) == "recovered" for ctx in out)
