import json
import pickle
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import conduit as c
from conduit.errors import error_from_response, retry_after

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "providers"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, c.BadRequestError),
        (401, c.AuthenticationError),
        (403, c.PermissionDeniedError),
        (404, c.NotFoundError),
        (408, c.ProviderError),
        (409, c.ProviderError),
        (413, c.BadRequestError),
        (422, c.BadRequestError),
        (429, c.RateLimitError),
        (500, c.ServerError),
        (502, c.ServerError),
        (503, c.ServerError),
        (529, c.ServerError),
    ],
)
def test_status_maps_to_error_class(status, cls):
    err = error_from_response("openai", status, {}, {"error": {"message": "m"}})
    assert type(err) is cls
    assert err.status_code == status
    assert err.data["status_code"] == status


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (422, False),
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (503, True),
        (529, True),
    ],
)
def test_retryable_statuses_follow_the_official_sdks(status, retryable):
    assert c.is_retryable(error_from_response("x", status, {}, b"")) is retryable


def test_timeouts_and_connection_errors_are_retryable_other_errors_are_not():
    assert c.is_retryable(c.TimeoutError("slow"))
    assert c.is_retryable(c.ConnectionError("reset"))
    assert not c.is_retryable(c.ValidationError("bad"))
    assert not c.is_retryable(ValueError("x"))


def test_conduit_timeout_is_also_the_builtin_timeout():
    assert issubclass(c.TimeoutError, TimeoutError)
    assert issubclass(c.ConnectionError, ConnectionError)


def test_x_should_retry_header_wins_over_status():
    err = error_from_response("anthropic", 429, {"x-should-retry": "false"}, b"{}")
    assert not c.is_retryable(err)
    err = error_from_response("anthropic", 400, {"X-Should-Retry": "true"}, b"{}")
    assert c.is_retryable(err)


def test_real_anthropic_429_fixture():
    body = fixture("anthropic/error_429_rate_limit.json")
    err = error_from_response("anthropic", 429, {"x-should-retry": "true"}, body)
    assert isinstance(err, c.RateLimitError)
    assert err.request_id == "req_011CYK5mje9HkutJtmfPzzNC"
    assert err.data["error_type"] == "rate_limit_error"
    assert "exceed your organization's rate limit" in str(err)
    assert err.body["error"]["type"] == "rate_limit_error"
    assert c.is_retryable(err)


def test_real_anthropic_401_fixture():
    err = error_from_response(
        "anthropic",
        401,
        {"request-id": "req_011CWdMEehrhsdujMyQ9pChP"},
        fixture("anthropic/error_401_authentication.json"),
    )
    assert isinstance(err, c.AuthenticationError)
    assert "invalid x-api-key" in str(err)
    assert "API key" in str(err)  # the hint says what to do
    assert err.request_id == "req_011CWdMEehrhsdujMyQ9pChP"
    assert not c.is_retryable(err)


def test_real_openai_fixtures():
    err = error_from_response(
        "openai", 401, {"x-request-id": "req_1"}, fixture("openai/error_401_invalid_api_key.json")
    )
    assert isinstance(err, c.AuthenticationError)
    assert err.data["error_code"] == "invalid_api_key"
    assert err.request_id == "req_1"
    err = error_from_response(
        "openai", 400, {}, fixture("openai/error_400_unsupported_parameter.json")
    )
    assert type(err) is c.BadRequestError
    assert "'stop' is not supported" in str(err)
    assert err.data["error_code"] == "unsupported_parameter"


def test_real_groq_and_ollama_fixtures():
    err = error_from_response("groq", 400, {}, fixture("groq/error_400_tool_use_failed.json"))
    assert type(err) is c.BadRequestError
    assert err.data["error_code"] == "tool_use_failed"
    assert "did not match schema" in str(err)
    err = error_from_response("ollama", 500, {}, fixture("ollama/native_error.json"))
    assert type(err) is c.ServerError
    assert "the model failed to generate a response" in str(err)


def test_stream_error_event_uses_the_body_type():
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    err = error_from_response("anthropic", None, {}, body)
    assert isinstance(err, c.ServerError)
    assert err.status_code == 529
    assert c.is_retryable(err)


def test_context_length_detected_from_message():
    body = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "prompt is too long: 210000 tokens > 200000 maximum",
        },
    }
    err = error_from_response("anthropic", 400, {}, body)
    assert isinstance(err, c.ContextLengthError)
    assert isinstance(err, c.BadRequestError)
    assert "with_window" in str(err)


def test_non_json_body_is_kept_as_text():
    err = error_from_response("openai", 502, {}, b"<html>Bad Gateway</html>")
    assert isinstance(err, c.ServerError)
    assert err.body == "<html>Bad Gateway</html>"
    assert "Bad Gateway" in str(err)


def test_empty_body_still_says_something():
    assert "no error message" in str(error_from_response("openai", 500, {}, b""))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"Retry-After": "0.25"}, 0.25),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "nonsense", "retry-after": "3"}, 3.0),
        ({"retry-after": "-5"}, 0.0),
        (
            {
                "retry-after": "Fri, 17 Oct 2025 19:21:50 GMT",
                "Date": "Fri, 17 Oct 2025 19:21:45 GMT",
            },
            5.0,
        ),
        (
            {
                "retry-after": "Fri, 17 Oct 2025 19:21:40 GMT",
                "Date": "Fri, 17 Oct 2025 19:21:45 GMT",
            },
            0.0,
        ),
        ({"retry-after": "whenever"}, None),
        ({}, None),
    ],
)
def test_retry_after_forms(headers, expected):
    assert retry_after(headers) == expected


def test_retry_after_http_date_without_date_header_uses_now():
    headers = {"retry-after": "Fri, 17 Oct 2025 19:21:50 GMT"}
    now = 1760728905.0  # 19:21:45 GMT that day
    assert retry_after(headers, now) == 5.0
    assert retry_after(headers) is None


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_retry_after_seconds_round_trip(seconds):
    assert retry_after({"retry-after": repr(seconds)}) == seconds
    assert retry_after({"retry-after-ms": repr(seconds * 1000)}) == pytest.approx(seconds)


def test_errors_pickle_with_their_data():
    err = error_from_response(
        "anthropic", 429, {"retry-after": "2"}, fixture("anthropic/error_429_rate_limit.json")
    )
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is c.RateLimitError
    assert back.retry_after == 2.0 and back.status_code == 429
    assert str(back) == str(err)
    assert back.data == err.data


def test_every_error_carries_data():
    for err in [
        c.ToolError("t", tool_name="add"),
        c.MaxIterationsError("m", ctx={"x": 1}),
        c.BudgetExceededError("b", data={"spent": 1}),
        c.ValidationError("v"),
    ]:
        assert isinstance(err.data, type(c.freeze({})))
    assert c.ToolError("t", tool_name="add").data["tool_name"] == "add"


def test_error_message_does_not_leak_bodies_in_full():
    body = json.dumps({"error": {"message": "x" * 2000}})
    assert len(str(error_from_response("openai", 400, {}, body))) < 700
