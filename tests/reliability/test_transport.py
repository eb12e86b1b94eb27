"""The fault matrix: real calls against a loopback server that misbehaves on cue.

Every status a provider sends, resets, truncations, trickled bytes and keep-alives, malformed
answers and echoed keys; sync and async, calls and streams; with ``with_retry`` and
``with_timeout`` on top. The server is ``tests/faultserver.py`` (real sockets, real HTTP/1.1).

The transport faults run on every wire whose framing or error shape differs (:data:`WIRES`):
OpenAI's chat completions, Anthropic's Messages, the Responses API's typed events, Gemini's
``generateContent`` and its errors, Bedrock's Converse with its binary event stream; Azure
(OpenAI's codec on another URL and auth header) where it is cheap. Each provider's own
throttling and error answers, and the errors its streams carry, have their own tables.
"""

from __future__ import annotations

import asyncio
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx
import pytest
from pyrsistent import pmap
from toolz import pipe

import conduit as c
from conduit._data import reveal
from conduit.providers import _http
from conduit.providers.openai import OPENAI
from tests.faultserver import DIALECTS, MALFORMED, FaultServer


@pytest.fixture(scope="module")
def server():
    srv = FaultServer()
    yield srv
    srv.close()


#: The wires of the matrix: the answer each one's call and stream begin with (its recording's).
WIRES: dict[str, tuple[str, str]] = {
    "openai": ("recovered", "w0 w1 "),
    "anthropic": ("4200 + 42 = 4242", "Hello!"),
    "gemini": ("To calculate 4200 + 42", "To find the sum of 4200 + 42"),
    "bedrock": ("Hello! How can I assist you", "The capital of France is Paris."),
    "responses": ("4200 + 42 equals 4242.", "4200 + 42 equals 4242."),
    "azure": ("recovered", "w0 w1 "),
}
#: Azure is OpenAI's codec and shell byte for byte (only the URL and auth header differ): the
#: wall-clock tests (deadlines) run on the wires whose bytes differ.
TIMED = ["openai", "anthropic", "gemini", "bedrock", "responses"]


@pytest.fixture
def at(server):
    """Return (request for a plan on a wire, hits counter for it)."""

    def make(plan: str, wire: str = "openai", **options: Any):
        test_id = uuid.uuid4().hex[:8]
        options.setdefault("api_key", "sk-test-" + uuid.uuid4().hex)
        url = server.url(test_id, plan)
        req = c.request(f"{wire}:fault-model", "hi", base_url=url, **options)
        return req, lambda: server.hits[test_id]

    return make


def _call(req):
    return c.call(req)["response"]


def _acall(req):
    return asyncio.run(c.acall(req))["response"]


def _stream(req):
    return c.collect(list(c.stream(req)))


def _astream(req):
    async def run():
        return c.collect([e async for e in c.astream(req)])

    return asyncio.run(run())


def _until_error(way: str, req: Any) -> tuple[list[Any], BaseException | None]:
    """Stream *req*: (the events delivered, the error that ended the stream, if any)."""
    seen: list[Any] = []

    async def run() -> None:
        async for event in c.astream(req):
            seen.append(event)

    try:
        if way == "astream":
            asyncio.run(run())
        else:
            for event in c.stream(req):
                seen.append(event)
    except Exception as exc:
        return seen, exc
    return seen, None


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


def whole(wire: str, way: str) -> str:
    """The start of the answer *wire* gives a call (or a stream) when nothing goes wrong."""
    return WIRES[wire][way.endswith("stream")]


# --- statuses ---------------------------------------------------------------------------------

STATUS = {
    400: (c.BadRequestError, False),
    401: (c.AuthenticationError, False),
    403: (c.PermissionDeniedError, False),
    404: (c.NotFoundError, False),
    408: (c.ProviderError, True),
    409: (c.ProviderError, True),
    422: (c.BadRequestError, False),
    424: (c.ProviderError, False),
    429: (c.RateLimitError, True),
    500: (c.ServerError, True),
    502: (c.ServerError, True),
    503: (c.ServerError, True),
    504: (c.ServerError, True),
    529: (c.ServerError, True),
}


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize("status", list(STATUS))
@pytest.mark.parametrize("wire", list(WIRES))
def test_every_status_maps_to_its_error_and_only_retryable_ones_are_retried(at, wire, status, way):
    """Each wire's error body (Gemini's ``{"error": {"code", "status"}}``, Bedrock's
    ``{"message"}`` and ``x-amzn-ErrorType``, OpenAI's) for every status, plain and streamed."""
    cls, retryable = STATUS[status]
    req, hits = at(str(status), wire)
    with pytest.raises(cls) as caught:
        WAYS[way](pipe(req, FAST))
    assert type(caught.value) is cls and caught.value.status_code == status
    said = "slow down" if status == 429 else f"fault {status}"
    assert caught.value.provider == wire and said in str(caught.value)
    assert c.is_retryable(caught.value) is retryable
    assert hits() == (3 if retryable else 1)


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize("wire", list(WIRES))
def test_retryable_statuses_then_success(at, wire, way):
    req, hits = at("408,529,ok", wire)
    out = WAYS[way](pipe(req, FAST))
    assert out["content"].startswith(whole(wire, way)) and hits() == 3


#: Each provider's own error answers, as it sends them: (class, status, retryable).
NAMED = {
    ("anthropic", "overloaded_error"): (c.ServerError, 529, True),
    ("anthropic", "rate_limit_error"): (c.RateLimitError, 429, True),
    ("anthropic", "api_error"): (c.ServerError, 500, True),
    ("anthropic", "invalid_request_error"): (c.BadRequestError, 400, False),
    ("anthropic", "request_too_large"): (c.BadRequestError, 413, False),
    ("anthropic", "authentication_error"): (c.AuthenticationError, 401, False),
    ("anthropic", "permission_error"): (c.PermissionDeniedError, 403, False),
    ("anthropic", "not_found_error"): (c.NotFoundError, 404, False),
    ("gemini", "RESOURCE_EXHAUSTED"): (c.RateLimitError, 429, True),
    ("gemini", "UNAVAILABLE"): (c.ServerError, 503, True),
    ("gemini", "INTERNAL"): (c.ServerError, 500, True),
    ("gemini", "DEADLINE_EXCEEDED"): (c.ServerError, 504, True),
    ("gemini", "INVALID_ARGUMENT"): (c.BadRequestError, 400, False),
    ("gemini", "FAILED_PRECONDITION"): (c.BadRequestError, 400, False),
    ("gemini", "PERMISSION_DENIED"): (c.PermissionDeniedError, 403, False),
    ("gemini", "NOT_FOUND"): (c.NotFoundError, 404, False),
    ("bedrock", "ThrottlingException"): (c.RateLimitError, 429, True),
    ("bedrock", "ModelNotReadyException"): (c.RateLimitError, 429, True),
    ("bedrock", "ServiceUnavailableException"): (c.ServerError, 503, True),
    ("bedrock", "InternalServerException"): (c.ServerError, 500, True),
    ("bedrock", "ModelTimeoutException"): (c.ProviderError, 408, True),
    ("bedrock", "ModelErrorException"): (c.ProviderError, 424, False),
    ("bedrock", "ValidationException"): (c.BadRequestError, 400, False),
    ("bedrock", "ServiceQuotaExceededException"): (c.BadRequestError, 400, False),
    ("bedrock", "AccessDeniedException"): (c.PermissionDeniedError, 403, False),
    ("bedrock", "ResourceNotFoundException"): (c.NotFoundError, 404, False),
}


def _maps_to(at: Any, plan: str, wire: str, way: str, expected: tuple[Any, int, bool]) -> Any:
    """Run *plan* on *wire* through retries; check the error is the *expected* (class, status,
    retryable) and was retried only if retryable; return it."""
    cls, status, retryable = expected
    req, hits = at(plan, wire)
    with pytest.raises(cls) as caught:
        WAYS[way](pipe(req, FAST))
    err = caught.value
    assert type(err) is cls and err.status_code == status and err.provider == wire
    assert c.is_retryable(err) is retryable and hits() == (3 if retryable else 1)
    return err


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize(("wire", "name"), list(NAMED))
def test_each_provider_s_own_error_answers(at, wire, name, way):
    err = _maps_to(at, f"named~{name}", wire, way, NAMED[wire, name])
    status = NAMED[wire, name][1]
    if wire == "bedrock":
        assert err.data["error_type"] == name and str(err).startswith(
            f"bedrock HTTP {status}: {name}"
        )
    if name == "RESOURCE_EXHAUSTED":  # Google's RetryInfo, in the body: the wait retry honours
        assert err.retry_after == 0.01


#: The errors each provider sends inside a 200 stream: (class, status, retryable).
FAILS = {
    ("anthropic", "overloaded_error"): (c.ServerError, 529, True),
    ("anthropic", "rate_limit_error"): (c.RateLimitError, 429, True),
    ("anthropic", "api_error"): (c.ServerError, 500, True),
    ("anthropic", "invalid_request_error"): (c.BadRequestError, 400, False),
    ("gemini", "RESOURCE_EXHAUSTED"): (c.RateLimitError, 429, True),
    ("gemini", "UNAVAILABLE"): (c.ServerError, 503, True),
    ("gemini", "INVALID_ARGUMENT"): (c.BadRequestError, 400, False),
    ("bedrock", "throttlingException"): (c.RateLimitError, 429, True),
    ("bedrock", "serviceUnavailableException"): (c.ServerError, 503, True),
    ("bedrock", "internalServerException"): (c.ServerError, 500, True),
    ("bedrock", "validationException"): (c.BadRequestError, 400, False),
    ("bedrock", "modelStreamErrorException"): (c.ProviderError, 424, False),
    ("responses", "rate_limit_exceeded"): (c.RateLimitError, 429, True),
    ("responses", "insufficient_quota"): (c.RateLimitError, 429, True),
    ("responses", "server_error"): (c.ServerError, 500, True),
    ("responses", "invalid_prompt"): (c.BadRequestError, 400, False),
}


@pytest.mark.parametrize("way", ["stream", "astream"])
@pytest.mark.parametrize(("wire", "name"), list(FAILS))
def test_an_error_inside_a_stream_maps_like_its_status(at, wire, name, way):
    """Bedrock's exception frames, Gemini's error chunk, the Responses API's ``error`` event and
    ``response.failed``: sent before any event, so a retryable one is retried."""
    _maps_to(at, f"fail~{name}", wire, way, FAILS[wire, name])


@pytest.mark.parametrize("way", ["stream", "astream"])
@pytest.mark.parametrize(
    ("wire", "name"),
    [
        ("anthropic", "overloaded_error"),
        ("gemini", "UNAVAILABLE"),
        ("bedrock", "throttlingException"),
        ("responses", "server_error"),
    ],
)
def test_an_error_after_events_ends_the_stream_with_it_and_is_not_restarted(at, wire, name, way):
    cls = FAILS[wire, name][0]
    req, hits = at(f"fail~{name}~late", wire)
    with pytest.raises(cls):
        WAYS[way](req)
    again, hits_again = at(f"fail~{name}~late", wire)
    with pytest.raises(c.ConduitError) as caught:
        WAYS[way](pipe(again, FAST))
    assert type(caught.value.__cause__) is cls and hits() == hits_again() == 1


# --- resets and truncation ----------------------------------------------------------------------


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize("wire", list(WIRES))
def test_resets_are_connection_errors_and_retried(at, wire, way):
    req, hits = at("reset", wire)
    with pytest.raises(c.ConnectionError, match=f"could not talk to {wire}"):
        WAYS[way](req)
    assert hits() == 1
    again, hits_again = at("reset,reset,ok", wire)
    out = WAYS[way](pipe(again, FAST))
    assert out["content"].startswith(whole(wire, way)) and hits_again() == 3


@pytest.mark.parametrize("way", ["call", "acall"])
@pytest.mark.parametrize("wire", list(WIRES))
def test_a_truncated_body_is_a_retryable_connection_error(at, wire, way):
    req, hits = at("trunc", wire)
    with pytest.raises(c.ConnectionError) as caught:
        WAYS[way](req)
    assert c.is_retryable(caught.value) and hits() == 1
    again, hits_again = at("trunc,ok", wire)
    out = WAYS[way](pipe(again, FAST))
    assert out["content"].startswith(whole(wire, way)) and hits_again() == 2


#: How a stream can stop short: the connection cut inside the body (``trunc``), or a whole HTTP
#: answer whose stream stops half-way through an event or frame (``ends~mid``), at a boundary
#: before its end (``ends~early``: no finish reason, ``response.completed``, ``messageStop``),
#: or, for Bedrock, after ``messageStop`` without the ``metadata`` that always closes it.
CUTS = [
    (wire, cut)
    for wire in WIRES
    for cut in ["trunc", "ends~mid", "ends~early", *(["ends~nometa"] if wire == "bedrock" else [])]
]


@pytest.mark.parametrize("way", ["stream", "astream"])
@pytest.mark.parametrize(("wire", "cut"), CUTS)
def test_a_truncated_stream_raises_and_is_never_silently_complete(at, wire, cut, way):
    req, hits = at(cut, wire)
    seen, err = _until_error(way, req)
    assert isinstance(err, c.ConnectionError) and c.is_retryable(err) and hits() == 1
    again, hits_again = at(cut, wire)
    with pytest.raises(c.ConduitError):
        WAYS[way](pipe(again, FAST))
    # once events were delivered a stream is not restarted behind the caller; before, it is
    assert hits_again() == (1 if seen else 3)


# --- deadlines against trickles and keep-alives ------------------------------------------------

DEADLINE = 0.4


def at_once(jobs: dict[str, Callable[[], Any]]) -> dict[str, tuple[float, Any]]:
    """Run the jobs together, each on its own thread (an async way: its own event loop), so a
    matrix of wall-clock tests costs one deadline; return name -> (seconds, result or error)."""

    def timed(job: Callable[[], Any]) -> tuple[float, Any]:
        start = time.monotonic()
        try:
            out = job()
        except Exception as exc:
            out = exc
        return time.monotonic() - start, out

    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {name: pool.submit(timed, job) for name, job in jobs.items()}
    return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("plan", ["trickle~0.1", "drip~0.1", "keepalive~0.1"])
@pytest.mark.parametrize("wire", TIMED)
def test_the_deadline_bounds_the_whole_exchange(at, wire, plan):
    """A byte (or a keep-alive) every 0.1 s keeps each read alive; the deadline still holds,
    sync and async, calls and streams (the four at once): trickled headers, a body or a
    stream's last event (Bedrock: its last frames) dripping a byte at a time after the first
    events, keep-alive comments (Bedrock: frames of an event type it skips).
    Before: the trickled call returned after 98 s and the async ones never ended."""
    jobs = {
        way: partial(WAYS[way], pipe(at(plan, wire)[0], c.with_timeout(DEADLINE))) for way in WAYS
    }
    for way, (took, out) in at_once(jobs).items():
        assert isinstance(out, c.TimeoutError), (way, out)
        assert out.data["deadline_exceeded"] is True, way
        assert -0.02 < took - DEADLINE < 0.3, (way, took)
    assert no_connection_in_use()


@pytest.mark.parametrize("wire", TIMED)
def test_the_deadline_covers_retries_of_trickling_attempts(at, wire):
    plans = {way: at("500,trickle~0.2", wire) for way in ["call", "astream"]}
    jobs = {
        way: partial(WAYS[way], pipe(req, c.with_timeout(0.6), FAST))
        for way, (req, _) in plans.items()
    }
    for way, (took, out) in at_once(jobs).items():
        assert isinstance(out, c.TimeoutError) and took < 0.9, (way, took, out)
        assert plans[way][1]() == 2, way


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize("wire", TIMED)
def test_a_slow_but_steady_answer_within_the_deadline_arrives_whole(at, wire, way):
    req, _ = at("ok", wire)
    expected = WAYS[way](req)["content"]
    assert expected.startswith(whole(wire, way))
    # the answer, headers included, in ~100 short pieces 0.1 ms apart: frames and events split
    answer = DIALECTS[wire].stream if way.endswith("stream") else DIALECTS[wire].call
    req, _ = at(f"trickle~0.0001~{max(1, len(answer) // 100)}", wire)
    out = WAYS[way](pipe(req, c.with_timeout(20)))
    assert out["content"] == expected


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
        err = _http.transport_error(OPENAI, exc, req)
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
