"""The fault matrix: real calls against a loopback server that misbehaves on cue.

Every status a provider sends, resets, truncations, trickled bytes and keep-alives, malformed
answers and echoed keys; sync and async, calls and streams; with ``with_retry`` and
``with_timeout`` on top. The server is ``tests/faultserver.py`` (real sockets, real HTTP/1.1).
"""

from __future__ import annotations

import asyncio
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pyrsistent import pmap
from toolz import pipe

import conduit as c
from conduit._data import reveal
from conduit.providers import _http
from conduit.providers.openai import OPENAI
from tests.faultserver import MALFORMED, FaultServer


@pytest.fixture(scope="module")
def server():
    srv = FaultServer()
    yield srv
    srv.close()


@pytest.fixture
def at(server):
    """Return (request for a plan, hits counter for it)."""

    def make(plan: str, **options: Any):
        test_id = uuid.uuid4().hex[:8]
        options.setdefault("api_key", "sk-test-" + uuid.uuid4().hex)
        req = c.request("fault-model", "hi", base_url=server.url(test_id, plan), **options)
        return req, lambda: server.hits[test_id]

    return make


def _call(req):
    return c.openai_call(req)["response"]


def _acall(req):
    return asyncio.run(c.openai_acall(req))["response"]


def _stream(req):
    return c.collect(list(c.openai_stream(req)))


def _astream(req):
    async def run():
        return c.collect([e async for e in c.openai_astream(req)])

    return asyncio.run(run())


WAYS: dict[str, Callable[[Any], Any]] = {
    "call": _call,
    "acall": _acall,
    "stream": _stream,
    "astream": _astream,
}
FAST = c.with_retry(max_attempts=3, initial_delay=0.001, max_delay=0.005)


def no_connection_in_use() -> bool:
    pool = _http.client()._transport._pool
    return all(conn.is_idle() or conn.is_closed() for conn in pool.connections)


# --- statuses ---------------------------------------------------------------------------------

STATUS = {
    400: (c.BadRequestError, False),
    401: (c.AuthenticationError, False),
    403: (c.PermissionDeniedError, False),
    404: (c.NotFoundError, False),
    408: (c.ProviderError, True),
    409: (c.ProviderError, True),
    422: (c.BadRequestError, False),
    429: (c.RateLimitError, True),
    500: (c.ServerError, True),
    502: (c.ServerError, True),
    503: (c.ServerError, True),
    529: (c.ServerError, True),
}


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize("status", list(STATUS))
def test_every_status_maps_to_its_error_and_only_retryable_ones_are_retried(at, status, way):
    cls, retryable = STATUS[status]
    req, hits = at(str(status))
    with pytest.raises(cls) as caught:
        WAYS[way](pipe(req, FAST))
    assert type(caught.value) is cls and caught.value.status_code == status
    said = "slow down" if status == 429 else f"fault {status}"
    assert caught.value.provider == "openai" and said in str(caught.value)
    assert c.is_retryable(caught.value) is retryable
    assert hits() == (3 if retryable else 1)


@pytest.mark.parametrize("way", list(WAYS))
def test_retryable_statuses_then_success(at, way):
    req, hits = at("408,529,ok")
    out = WAYS[way](pipe(req, FAST))
    assert out["content"].startswith(("recovered", "w0 w1")) and hits() == 3


# --- resets and truncation ----------------------------------------------------------------------


@pytest.mark.parametrize("way", list(WAYS))
def test_resets_are_connection_errors_and_retried(at, way):
    req, hits = at("reset")
    with pytest.raises(c.ConnectionError, match="could not talk to openai"):
        WAYS[way](req)
    assert hits() == 1
    again, hits_again = at("reset,reset,ok")
    assert WAYS[way](pipe(again, FAST))["content"] and hits_again() == 3


@pytest.mark.parametrize("way", ["call", "acall"])
def test_a_truncated_body_is_a_retryable_connection_error(at, way):
    req, hits = at("trunc")
    with pytest.raises(c.ConnectionError) as caught:
        WAYS[way](req)
    assert c.is_retryable(caught.value) and hits() == 1
    again, hits_again = at("trunc,ok")
    assert WAYS[way](pipe(again, FAST))["content"] == "recovered" and hits_again() == 2


@pytest.mark.parametrize("way", ["stream", "astream"])
def test_a_truncated_stream_raises_and_is_never_silently_complete(at, way):
    req, hits = at("trunc")
    with pytest.raises(c.ConduitError):
        WAYS[way](pipe(req, FAST))
    assert hits() == 1  # events were delivered: a stream is not restarted behind the caller


# --- deadlines against trickles and keep-alives ------------------------------------------------


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize("plan", ["trickle~0.3", "keepalive~0.3"])
def test_the_deadline_bounds_the_whole_exchange(at, plan, way):
    """A byte (or a keep-alive) every 0.3 s keeps each read alive; the deadline still holds.
    Before: the trickled call returned after 98 s and the async ones never ended."""
    req, _ = at(plan)
    start = time.monotonic()
    with pytest.raises(c.TimeoutError) as caught:
        WAYS[way](pipe(req, c.with_timeout(1)))
    overrun = time.monotonic() - start - 1
    assert caught.value.data["deadline_exceeded"] is True
    assert -0.02 < overrun < 0.3, overrun
    assert no_connection_in_use()


@pytest.mark.parametrize("way", ["call", "astream"])
def test_the_deadline_covers_retries_of_trickling_attempts(at, way):
    req, hits = at("500,trickle~0.2")
    start = time.monotonic()
    with pytest.raises(c.TimeoutError):
        WAYS[way](pipe(req, c.with_timeout(0.8), FAST))
    assert time.monotonic() - start < 1.1 and hits() == 2


@pytest.mark.parametrize("way", list(WAYS))
def test_a_slow_but_steady_answer_within_the_deadline_arrives_whole(at, way):
    req, _ = at("trickle~0.0001")  # ~400 bytes (headers included), each read short
    out = WAYS[way](pipe(req, c.with_timeout(20)))
    assert out["content"] in ("recovered", "".join(f"w{i} " for i in range(20)))


def test_a_deadline_already_passed_sends_nothing(at):
    req, hits = at("ok")
    late = req.set("conduit/deadline", time.monotonic() - 1)
    with pytest.raises(c.TimeoutError):
        _http.post(OPENAI, late, "http://127.0.0.1:9/v1/chat/completions", {}, b"{}")
    assert hits() == 0


def test_each_socket_operation_gets_only_the_time_left():
    deadline = time.monotonic() + 0.5
    timeout = _http._timeout(pmap({"conduit/deadline": deadline, "timeout": 600}))
    assert isinstance(timeout, httpx.Timeout) and 0.4 < timeout.read <= 0.5
    assert timeout.read.deadline == deadline and timeout.connect <= 0.5
    assert 0.3 < _http._step(timeout.read, httpx.ReadTimeout) <= 0.5
    assert _http._step(600.0, httpx.ReadTimeout) == 600.0  # no deadline, untouched
    gone = _http._until(600.0, time.monotonic() - 0.01)
    with pytest.raises(httpx.ReadTimeout):
        _http._step(gone, httpx.ReadTimeout)


# --- malformed answers --------------------------------------------------------------------------

CALL_SHAPES = ["null_choice", "str_choices", "list_top", "str_message", "int_content", "bad_call"]
STREAM_SHAPES = ["null_choice", "str_choices", "list_top", "no_index"]


@pytest.mark.parametrize("way", ["call", "acall"])
@pytest.mark.parametrize("shape", CALL_SHAPES)
def test_a_malformed_answer_is_a_provider_error_and_not_retried(at, shape, way):
    req, hits = at(f"body~{shape}")
    with pytest.raises(c.ProviderError) as caught:
        WAYS[way](pipe(req, FAST))
    err = caught.value
    assert type(err) is c.ProviderError and err.status_code == 200 and err.provider == "openai"
    assert str(err).startswith("openai sent a malformed chat completion: ")
    assert err.data["malformed"] == "chat completion" and not c.is_retryable(err)
    assert hits() == 1
    assert isinstance(MALFORMED[shape], list) or err.body == c.freeze(MALFORMED[shape])


@pytest.mark.parametrize("way", ["stream", "astream"])
@pytest.mark.parametrize("shape", STREAM_SHAPES)
def test_a_malformed_stream_event_is_a_provider_error(at, shape, way):
    req, hits = at(f"body~{shape}")
    with pytest.raises(c.ProviderError) as caught:
        WAYS[way](pipe(req, FAST))
    assert caught.value.status_code == 200 and "malformed stream event" in str(caught.value)
    assert hits() == 1


def test_messages_name_the_field_for_common_shapes(at):
    expected = {
        "null_choice": "choices[0] is null, not an object",
        "str_choices": "choices is a string, not a list",
        "list_top": "the answer is a list, not an object",
        "int_content": "choices[0].message.content is a number, not a list",
        "bad_call": "choices[0].message.tool_calls[0].function is a number, not an object",
    }
    for shape, text in expected.items():
        req, _ = at(f"body~{shape}")
        with pytest.raises(c.ProviderError, match=text.replace("[", r"\[").replace("]", r"\]")):
            c.openai_call(req)
    req, _ = at("body~no_index")
    with pytest.raises(c.ProviderError, match=r"tool_calls\[0\]\.index is null, not an integer"):
        list(c.openai_stream(req))


# --- secrets ------------------------------------------------------------------------------------


def _all_text(err: BaseException) -> str:
    parts = [str(err), repr(err), repr(err.args), "".join(traceback.format_exception(err))]
    for attr in ("body", "data", "message"):
        parts.append(repr(getattr(err, attr, None)))
    return "\n".join(parts)


@pytest.mark.parametrize("way", list(WAYS))
def test_a_server_echoing_the_key_does_not_put_it_in_the_error(at, way):
    req, hits = at("echo")
    key = reveal(req["api_key"])
    with pytest.raises(c.AuthenticationError) as caught:
        WAYS[way](pipe(req, FAST))
    text = _all_text(caught.value)
    assert key not in text and key[3:-4] not in text
    assert f"Incorrect API key provided: sk-...{key[-4:]}." in str(caught.value)
    assert hits() == 1


def test_a_transport_error_holding_a_credential_is_cleaned_down_its_chain():
    key, password = "sk-" + uuid.uuid4().hex, uuid.uuid4().hex
    req = pmap(
        {
            "api_key": c.Secret(key),
            "base_url": f"https://user:{password}@proxy.example/v1",
            "headers": pmap({"X-Client-Secret": c.Secret("cs-" + password[::-1])}),
        }
    )
    try:
        try:
            raise ValueError(f"Illegal header value b'Bearer {key}\\n' cs-{password[::-1]}")
        except ValueError as inner:
            raise httpx.LocalProtocolError(f"bad header {key} for user:{password}") from inner
    except httpx.LocalProtocolError as exc:
        err = _http._transport_error(OPENAI, exc, req)
        err.__cause__ = exc
    text = _all_text(err)
    assert isinstance(err, c.ConnectionError)
    assert key not in text and password not in text and password[::-1] not in text
    assert "LocalProtocolError" in text and f"sk-...{key[-4:]}" in text


def test_a_key_from_the_environment_that_http_cannot_carry_is_refused_unsent(at, monkeypatch):
    req, hits = at("ok")
    req = req.discard("api_key")
    key = "sk-" + uuid.uuid4().hex
    monkeypatch.setenv("OPENAI_API_KEY", key + "\n")
    with pytest.raises(c.ValidationError, match="OPENAI_API_KEY ends with a newline") as caught:
        c.openai_call(pipe(req, FAST))
    assert key not in _all_text(caught.value) and hits() == 0
    monkeypatch.setenv("OPENAI_API_KEY", key)
    assert c.content(c.openai_call(req)) == "recovered"
