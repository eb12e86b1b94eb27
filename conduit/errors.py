"""Conduit's exceptions, and the one pure function from an HTTP error to the right one.

Every error carries ``.data``: a ``pmap`` of what is known about it (provider, status, body,
request id, retry-after, ...), so handlers and logs read facts, not message strings.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from pyrsistent import PMap

from conduit._data import freeze

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ConduitError",
    "ConnectionError",
    "ContextLengthError",
    "MaxIterationsError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProviderError",
    "RateLimitError",
    "ServerError",
    "ShapeError",
    "TimeoutError",
    "ToolError",
    "ValidationError",
    "decode_event",
    "error_from_response",
    "is_retryable",
    "kind",
    "malformed",
    "mask",
    "redact",
    "redact_error",
    "retry_after",
    "want",
]


class ConduitError(Exception):
    """Base of every Conduit error; ``.data`` is a ``pmap`` of the facts behind it.

    >>> err = ConduitError("it broke", data={"step": "parse"})
    >>> str(err), err.data["step"]
    ('it broke', 'parse')
    """

    def __init__(self, message: str, *, data: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data: PMap[str, Any] = freeze(data or {})

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[ConduitError], message: str, state: dict[str, Any]) -> ConduitError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class ValidationError(ConduitError, ValueError):
    """Input (a request, a message, a model's structured output) is not of the expected shape."""


class ProviderError(ConduitError):
    """A provider answered with an error (HTTP status, or an error event inside a stream).

    >>> err = ProviderError("nope", provider="openai", status_code=418, body={"error": "tea"})
    >>> err.provider, err.status_code, err.data["status_code"]
    ('openai', 418, 418)
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        body: Any = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        facts = {
            "provider": provider,
            "status_code": status_code,
            "body": body,
            "request_id": request_id,
            "retry_after": retry_after,
            "should_retry": should_retry,
        }
        super().__init__(message, data={**facts, **(data or {})})
        self.provider = provider
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        self.retry_after = retry_after
        self.should_retry = should_retry


class BadRequestError(ProviderError):
    """HTTP 400/413/422: the request is malformed for this provider; fix it, do not retry."""


class ContextLengthError(BadRequestError):
    """The prompt does not fit the model's context window: shorten it (see ``with_window``)."""


class AuthenticationError(ProviderError):
    """HTTP 401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(ProviderError):
    """HTTP 403: the key is valid but may not use this model or resource."""


class NotFoundError(ProviderError):
    """HTTP 404: unknown model or endpoint (check the model name and ``base_url``)."""


class RateLimitError(ProviderError):
    """HTTP 429: slow down; ``retry_after`` holds the provider's advice in seconds, if any."""


class ServerError(ProviderError):
    """HTTP 5xx (Anthropic's 529 "overloaded" included): the provider failed; retry later."""


class TimeoutError(ConduitError, builtins.TimeoutError):
    """The call did not finish before its deadline (``with_timeout`` or the HTTP timeout)."""


class ConnectionError(ConduitError, builtins.ConnectionError):
    """The provider could not be reached, or the connection broke mid-response."""


class ToolError(ConduitError):
    """A tool failed; ``tool_name`` says which."""

    def __init__(
        self, message: str, *, tool_name: str = "", data: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message, data={"tool_name": tool_name, **(data or {})})
        self.tool_name = tool_name


class MaxIterationsError(ConduitError):
    """An agent reached ``max_iterations``; ``ctx`` holds the conversation so far."""

    def __init__(
        self, message: str, *, ctx: Any = None, data: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message, data=data)
        self.ctx = ctx


class BudgetExceededError(ConduitError):
    """A ``with_budget`` limit was reached; ``.data`` holds what was spent and the limits."""


_RETRYABLE_STATUS = frozenset({408, 409, 429})


def is_retryable(err: BaseException) -> bool:
    """Return True when *err* is worth retrying: 408/409/429/5xx, timeouts, broken connections.

    An explicit ``x-should-retry`` header from the provider wins, as in the official SDKs.

    >>> is_retryable(RateLimitError("slow down", status_code=429))
    True
    >>> is_retryable(BadRequestError("bad", status_code=400))
    False
    >>> is_retryable(ServerError("overloaded", status_code=529))
    True
    """
    if isinstance(err, TimeoutError):
        return not err.data.get("deadline_exceeded")  # the whole call's deadline: final
    if isinstance(err, ConnectionError):
        return True
    if not isinstance(err, ProviderError):
        return False
    if err.should_retry is not None:
        return err.should_retry
    status = err.status_code
    if status is None:
        return isinstance(err, RateLimitError | ServerError)
    return status in _RETRYABLE_STATUS or status >= 500


def _lower(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers or {}).items()}


def retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Return the seconds a provider asked us to wait, from its response headers, or None.

    Reads ``retry-after-ms``, then ``retry-after`` as seconds or as an HTTP date. A date is
    measured against the response's own ``Date`` header (the server's clock), else *now*.

    >>> retry_after({"Retry-After": "2"})
    2.0
    >>> retry_after({"retry-after-ms": "1500", "retry-after": "9"})
    1.5
    >>> retry_after({"retry-after": "Wed, 21 Oct 2026 07:28:05 GMT",
    ...              "date": "Wed, 21 Oct 2026 07:28:00 GMT"})
    5.0
    >>> retry_after({"retry-after": "soon"}) is None
    True
    """
    h = _lower(headers)
    if "retry-after-ms" in h:
        seconds = _number(h["retry-after-ms"])
        if seconds is not None:
            return max(seconds / 1000.0, 0.0)
    value = h.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(seconds, 0.0)
    when = _http_date(value)
    base = _http_date(h["date"]) if "date" in h else now
    if when is None or base is None:
        return None
    return max(when - base, 0.0)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def decode_event(provider: str, data: str) -> Any:
    """Return the JSON of one stream event; a broken one means the stream was cut or garbled.

    >>> decode_event("openai", '{"a": 1}')["a"]
    1
    """
    try:
        return json.loads(data)
    except ValueError:
        raise ConnectionError(
            f"{provider} sent an incomplete or malformed stream event ({data[:80]!r}); the "
            "connection was probably cut: retry the call",
            data={"provider": provider},
        ) from None


def _http_date(text: str) -> float | None:
    import email.utils  # deferred: only HTTP-date Retry-After headers need it

    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


_CONTEXT_PATTERNS = re.compile(
    r"context[_ ]length|context window|maximum context|prompt is too long|too many tokens"
    r"|reduce the length of the messages",
    re.IGNORECASE,
)

_BY_STATUS: dict[int, type[ProviderError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}

# Error types named inside bodies (Anthropic and OpenAI), for errors that arrive mid-stream.
_BY_TYPE: dict[str, tuple[type[ProviderError], int | None]] = {
    "invalid_request_error": (BadRequestError, 400),
    "authentication_error": (AuthenticationError, 401),
    "permission_error": (PermissionDeniedError, 403),
    "not_found_error": (NotFoundError, 404),
    "request_too_large": (BadRequestError, 413),
    "rate_limit_error": (RateLimitError, 429),
    "api_error": (ServerError, 500),
    "server_error": (ServerError, 500),
    "overloaded_error": (ServerError, 529),
}


def _parse_body(body: Any) -> Any:
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


def _error_fields(body: Any) -> tuple[str, str | None, str | None]:
    """Return (message, type, code) from any provider's error body."""
    err = body.get("error", body) if isinstance(body, Mapping) else body
    if isinstance(err, Mapping):
        message = err.get("message") or err.get("Message") or json.dumps(_plain(err))
        kind = err.get("type") or err.get("__type")  # AWS JSON protocols name it __type
        return _clip(str(message)), _opt_str(kind), _opt_str(err.get("code"))
    if isinstance(err, str) and err:
        return _clip(err), None, None
    return "", None, None


def _clip(message: str, limit: int = 500) -> str:
    """Keep error messages readable; the whole body stays on ``err.body``."""
    return message if len(message) <= limit else message[:limit] + "... (truncated; see err.body)"


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "PVector":
        return [_plain(v) for v in value]
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _should_retry(headers: dict[str, str]) -> bool | None:
    flag = headers.get("x-should-retry")
    return None if flag is None else flag.strip().lower() == "true"


def _retry_after(headers: Mapping[str, str], now: float | None, parsed: Any) -> float | None:
    """The wait a header gives, else one the body gives (Google's ``RetryInfo.retryDelay``)."""
    found = retry_after(headers, now)
    return found if found is not None else rpc_retry_delay(parsed)


def rpc_retry_delay(body: Any) -> float | None:
    """Return the seconds of a ``google.rpc.RetryInfo`` in an error body (Gemini's 429), or None.

    >>> rpc_retry_delay({"error": {"code": 429, "details": [
    ...     {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.5s"}]}})
    34.5
    >>> rpc_retry_delay({"error": {"details": [{"@type": "x", "retryDelay": "1s"}]}}) is None
    True
    """
    error = body.get("error") if isinstance(body, Mapping) else None
    details = error.get("details") if isinstance(error, Mapping) else None
    if not isinstance(details, list | tuple):
        return None
    for item in details:
        if not isinstance(item, Mapping):
            continue
        kind_ = item.get("@type")
        delay = item.get("retryDelay")
        if (
            isinstance(kind_, str)
            and kind_.endswith("google.rpc.RetryInfo")
            and isinstance(delay, str)
            and delay.endswith("s")
        ):
            try:
                seconds = float(delay[:-1])
            except ValueError:
                return None
            return seconds if seconds >= 0 else None
    return None


def error_from_response(
    provider: str,
    status: int | None,
    headers: Mapping[str, str] | None,
    body: Any,
    *,
    now: float | None = None,
    secrets: Collection[str] = (),
) -> ProviderError:
    """Return the right :class:`ProviderError` subclass for a provider's error answer.

    *status* is None for an error event inside a stream; then the body's error type decides.
    Every one of *secrets* (the request's key, credential headers, URL password) that the
    server echoed is masked in the message and the body (:func:`redact`).

    >>> err = error_from_response("anthropic", 429, {"retry-after": "3"},
    ...     b'{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}')
    >>> type(err).__name__, err.retry_after, err.status_code
    ('RateLimitError', 3.0, 429)
    >>> type(error_from_response("openai", 400, {}, {"error": {"message": "x",
    ...     "code": "context_length_exceeded"}})).__name__
    'ContextLengthError'
    """
    parsed = _parse_body(body)
    if secrets:
        parsed = redact(parsed, secrets)
    h = _lower(headers)
    message, err_type, code = _error_fields(parsed)
    aws_type = h.get("x-amzn-errortype")  # AWS REST JSON (Bedrock): the type is a header
    if aws_type and err_type is None:
        err_type = aws_type.split(":", 1)[0].rsplit("#", 1)[-1]  # as botocore reads it
        message = f"{err_type}: {message}" if message else err_type
    cls: type[ProviderError]
    if status is None and err_type in _BY_TYPE:
        cls, status = _BY_TYPE[err_type]
    elif status is None:
        cls = ServerError
    elif status in _BY_STATUS:
        cls = _BY_STATUS[status]
    else:
        cls = ServerError if status >= 500 else ProviderError
    if issubclass(cls, BadRequestError | PermissionDeniedError) and _rejects_credentials(
        err_type, parsed
    ):
        cls = AuthenticationError  # Gemini's 400 and AWS's 403 for a key that is not valid
    if issubclass(cls, BadRequestError) and (
        code == "context_length_exceeded" or _CONTEXT_PATTERNS.search(message)
    ):
        cls = ContextLengthError
    request_id = h.get("x-request-id") or h.get("request-id") or h.get("x-amzn-requestid")
    if request_id is None and isinstance(parsed, Mapping):
        request_id = _opt_str(parsed.get("request_id"))
    where = f"HTTP {status}" if status is not None else "stream error"
    text = f"{provider} {where}: {message or 'no error message in the response body'}"
    hint = _HINTS.get(cls)
    return cls(
        f"{text} ({hint})" if hint else text,
        provider=provider,
        status_code=status,
        body=freeze(parsed),
        request_id=request_id,
        retry_after=_retry_after(h, now, parsed),
        should_retry=_should_retry(h),
        data={"error_type": err_type, "error_code": code, "hint": hint},
    )


#: Answers that say the credentials themselves were not accepted, although their status says
#: "bad request" (Gemini: 400 with reason API_KEY_INVALID) or "forbidden" (AWS: 403 with these
#: error types); a permission error proper (AccessDeniedException) stays PermissionDeniedError.
_CREDENTIAL_TYPES = frozenset(
    (
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
    )
)
_CREDENTIAL_REASONS = frozenset(("API_KEY_INVALID",))


def _rejects_credentials(err_type: str | None, body: Any) -> bool:
    """Whether an error answer says the key or signature was not accepted.

    >>> _rejects_credentials("UnrecognizedClientException", {}), _rejects_credentials(
    ...     None, {"error": {"details": [{"reason": "API_KEY_INVALID"}]}})
    (True, True)
    >>> _rejects_credentials("AccessDeniedException", {"message": "not authorized"})
    False
    """
    if err_type in _CREDENTIAL_TYPES:
        return True
    err = body.get("error") if isinstance(body, Mapping) else None
    details = err.get("details") if isinstance(err, Mapping) else None
    if isinstance(details, str | bytes | Mapping) or not isinstance(details, Iterable):
        return False
    return any(isinstance(d, Mapping) and d.get("reason") in _CREDENTIAL_REASONS for d in details)


_HINTS: dict[type[ProviderError], str] = {
    AuthenticationError: "check the API key in the request or the provider's environment variable",
    PermissionDeniedError: "this key may not use that model or resource",
    NotFoundError: "check the model name and base_url",
    ContextLengthError: "shorten the conversation, e.g. with c.with_window or c.with_token_limit",
    RateLimitError: "slow down or add c.with_retry / c.with_rate_limit",
    ServerError: "the provider failed; c.with_retry retries this",
}


# --- secrets in errors ------------------------------------------------------------------------


def mask(secret: str) -> str:
    """Return how *secret* appears in an error: its first three and last four characters if it
    is long enough for that to say nothing, else ``***``.

    >>> mask("sk-proj-0123456789abcdefWXYZ"), mask("hunter2")
    ('sk-...WXYZ', '***')
    """
    return f"{secret[:3]}...{secret[-4:]}" if len(secret) >= 20 else "***"


def _forms(secrets: Iterable[str]) -> list[tuple[str, str]]:
    """Each secret as it may be printed (plain, stripped, JSON- or repr-escaped), longest first."""
    found: dict[str, str] = {}
    for secret in secrets:
        if not secret or len(secret.strip()) < 4:
            continue
        shown = mask(secret.strip())
        for form in (secret, secret.strip(), json.dumps(secret)[1:-1], repr(secret)[1:-1]):
            if len(form) >= 4:
                found.setdefault(form, shown)
    return sorted(found.items(), key=lambda item: -len(item[0]))


def redact(value: Any, secrets: Collection[str]) -> Any:
    """Return *value* (text, bytes or JSON-like data) with every one of *secrets* masked.

    >>> redact("Incorrect API key provided: sk-proj-0123456789abcdefWXYZ.",
    ...        ["sk-proj-0123456789abcdefWXYZ"])
    'Incorrect API key provided: sk-...WXYZ.'
    >>> redact({"error": {"message": "key hunter2!"}}, ["hunter2"])
    {'error': {'message': 'key ***!'}}
    """
    forms = _forms(secrets)
    return _redact(value, forms) if forms else value


def _redact(value: Any, forms: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for form, shown in forms:
            if form in value:
                value = value.replace(form, shown)
        return value
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", "replace")
        cleaned = _redact(text, forms)
        return value if cleaned == text else cleaned.encode()
    if isinstance(value, Mapping):
        items = {_redact(k, forms): _redact(v, forms) for k, v in value.items()}
        return items if type(value) is dict else freeze(items)
    if isinstance(value, list | tuple) or type(value).__name__ == "PVector":
        parts = [_redact(v, forms) for v in value]
        return parts if type(value) is list else freeze(parts)
    return value


def redact_error(err: BaseException, secrets: Collection[str]) -> BaseException:
    """Mask *secrets* in *err* and in every exception chained to it, in place; return *err*.

    A transport error can embed a header (h11: ``Illegal header value b'Bearer sk-...'``) and a
    server can echo the key in its message; tracebacks print the whole chain, so all of it is
    cleaned. Only the exchange calls this, on errors it has just caught.

    >>> err = ConnectionError("bad header b'Bearer sk-proj-0123456789abcdefWXYZ'")
    >>> str(redact_error(err, ["sk-proj-0123456789abcdefWXYZ"]))
    "bad header b'Bearer sk-...WXYZ'"
    """
    forms = _forms(secrets)
    seen: set[int] = set()
    current: BaseException | None = err
    while forms and current is not None and id(current) not in seen:
        seen.add(id(current))
        _redact_one(current, forms)
        current = current.__cause__ or current.__context__
    return err


def _redact_one(err: BaseException, forms: list[tuple[str, str]]) -> None:
    with contextlib.suppress(TypeError, AttributeError):  # an exception refusing new args
        err.args = tuple(_redact(a, forms) for a in err.args)
    if isinstance(err, ConduitError):
        err.message = _redact(err.message, forms)
        err.data = freeze(_redact(err.data, forms))
    if isinstance(err, ProviderError):
        err.body = _redact(err.body, forms)
    for name in ("message", "object"):  # httpx's / UnicodeEncodeError's own copies of the text
        value = getattr(err, name, None)
        if isinstance(value, str | bytes) and not isinstance(err, ConduitError):
            with contextlib.suppress(AttributeError, TypeError):  # a read-only attribute
                setattr(err, name, _redact(value, forms))


# --- malformed answers ------------------------------------------------------------------------


def kind(value: Any) -> str:
    """Return what a JSON *value* is, for messages about malformed answers.

    >>> kind(None), kind([1]), kind("x"), kind({}), kind(True), kind(2.5)
    ('null', 'a list', 'a string', 'an object', 'a boolean', 'a number')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple) or type(value).__name__ == "PVector":
        return "a list"
    return type(value).__name__


class ShapeError(Exception):
    """What a codec raises on a field of the wrong shape; its decode guard turns it into
    :func:`malformed` (never raised to users)."""


def want(value: Any, types: type | tuple[type, ...], where: str) -> Any:
    """Return *value* if it is one of *types*, else raise :class:`ShapeError` saying so.

    >>> want({}, Mapping, "choices[0]")
    {}
    >>> want(None, Mapping, "choices[0]")
    Traceback (most recent call last):
    conduit.errors.ShapeError: choices[0] is null, not an object
    """
    if type(value) is dict and types is Mapping:  # the common case, without an ABC check
        return value
    if isinstance(value, types):
        return value
    expected = types if isinstance(types, tuple) else (types,)
    raise ShapeError(f"{where} is {kind(value)}, not {' or '.join(map(_noun, expected))}")


def want_count(fields: Mapping[str, Any], where: str, key: str) -> int | None:
    """Return the token count *fields* (at path *where*, "" at the top) holds under *key*
    (None if absent); anything but an integer is a :class:`ShapeError` naming the field.

    >>> want_count({"prompt_tokens": 3}, "usage", "prompt_tokens"), want_count({}, "usage", "x")
    (3, None)
    >>> want_count({"prompt_tokens": "3"}, "usage", "prompt_tokens")
    Traceback (most recent call last):
    conduit.errors.ShapeError: usage.prompt_tokens is a string, not an integer
    """
    value = fields.get(key)
    if value is None or type(value) is int:
        return value
    name = f"{where}.{key}" if where else key
    raise ShapeError(f"{name} is {kind(value)}, not an integer")


def want_text(value: Any, where: str) -> Any:
    """Return *value* if it is text or absent (None); a number or a map where text belongs is
    a :class:`ShapeError`.

    >>> want_text(None, "content") is None
    True
    """
    if value is None or type(value) is str:
        return value
    raise ShapeError(f"{where} is {kind(value)}, not a string")


def want_list(value: Any, where: str) -> Sequence[Any]:
    """Return *value* if it is a list (not text), else raise :class:`ShapeError`."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return value
    raise ShapeError(f"{where} is {kind(value)}, not a list")


def _noun(cls: type) -> str:
    nouns = {Mapping: "an object", list: "a list", str: "a string", int: "an integer"}
    return nouns.get(cls, "null" if cls is type(None) else cls.__name__)


def _why(cause: str | BaseException) -> str:
    if isinstance(cause, str):
        return cause
    if isinstance(cause, ShapeError):
        return str(cause)
    if isinstance(cause, KeyError):
        return (
            f"the required field {cause.args[0]!r} is missing"
            if cause.args
            else "a field is missing"
        )
    if isinstance(cause, IndexError):
        return "a list is shorter than expected"
    if isinstance(cause, TypeError | AttributeError):
        return f"a field has the wrong type ({cause})"
    return f"{type(cause).__name__}: {cause}"


def _snippet(body: Any) -> str:
    try:
        text = json.dumps(_plain(body), default=repr)
    except (TypeError, ValueError):  # pragma: no cover - keys that are not strings
        text = repr(body)
    return text if len(text) <= 200 else text[:200] + "..."


def malformed(provider: str, what: str, body: Any, cause: str | BaseException) -> ProviderError:
    """Return the error for an answer that is JSON, but not of the shape *provider* documents.

    It is a :class:`ProviderError` with status 200 and is not retried: the official SDKs raise
    such an answer (openai-python: the JSON error, or ``APIResponseValidationError``) and retry
    only on statuses and transport errors. *cause* says what was wrong (text, or the exception
    the decoder ran into).

    >>> err = malformed("openai", "chat completion", {"choices": [None]},
    ...                 "choices[0] is null, not an object")
    >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
    openai sent a malformed chat completion: choices[0] is null, not an object;
    got {"choices": [null]}
    >>> err.status_code, is_retryable(err), err.data["malformed"]
    (200, False, 'chat completion')
    """
    return ProviderError(
        f"{provider} sent a malformed {what}: {_why(cause)}; got {_snippet(body)}",
        provider=provider,
        status_code=200,
        body=freeze(body) if isinstance(body, Mapping | list | str) else None,
        data={"malformed": what},
    )
