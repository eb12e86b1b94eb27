"""The secret scan, for the providers and sinks added after ``test_secrets.py``.

The same method as there (read it first): real calls against a loopback server that answers,
fails with 503, or echoes every credential it received (as OpenAI's "Incorrect API key
provided: sk-..." and AWS's signature errors do), every logger at DEBUG (httpx, httpcore and
botocore included), and canary secrets searched for in every sink. Here the credentials are
each provider's own: Azure's ``api-key`` and Entra ID bearer tokens (a ``token_provider``,
cached or not, or ``AZURE_OPENAI_AD_TOKEN``), Gemini's ``x-goog-api-key``, Bedrock's API key
and the AWS access key id, secret access key and session token it signs with, and the keys of
OpenRouter, Mistral, DeepSeek and the Responses API; and the sinks are the ones added since:
the command line's call log, ``--history`` and ``conduit logs`` output, OpenTelemetry spans,
``c.wire``/``c.show``/``c.estimate``, the provider batch APIs (the JSONL uploaded, the
checkpoint) and MCP servers (their environment, their errors).
"""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import pytest
from toolz import pipe

import conduit as c
from conduit._data import is_credential
from conduit.middleware import middlewares
from conduit.providers import azure
from conduit.providers._eventstream import encode_message, split
from conduit.registry import PROVIDERS, lookup
from tests.batchserver import BatchServer
from tests.providers.helpers import raw
from tests.reliability.test_secrets import (
    CHAT,
    MALFORMED,
    PROBLEM,
    SENDABLE,
    _canary,
    _id,
    _Sinks,
    _stack,
    logged,
    no_log_filter,
)
from tests.reliability.test_secrets import sinks as _sinks_fixture
from tests.serving import mcp_over_http, serving
from tests.test_cli import run as run_cli

sinks = _sinks_fixture  # the scan's fixture: every logger at DEBUG, tmp_path, stdout/stderr

HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"

# Each wire's answer (by how its URL ends), as a whole and streamed: recorded payloads.
ANSWERS: dict[str, tuple[bytes, bytes, str]] = {
    "/chat/completions": (
        json.dumps(CHAT).encode(),
        raw("openai/stream_text.sse"),
        "text/event-stream",
    ),
    "/responses": (
        raw("openai_responses/response_output_text.json"),
        raw("openai_responses/stream_output_text.sse"),
        "text/event-stream",
    ),
    ":generateContent": (raw("gemini/generate_content_text.json"), b"", ""),
    ":streamGenerateContent": (b"", raw("gemini/stream_generate_content.sse"), "text/event-stream"),
    "/converse": (raw("bedrock/converse_text.json"), b"", ""),
    "/converse-stream": (
        b"",
        base64.b64decode(raw("bedrock/converse_stream_text.eventstream.b64")),
        "application/vnd.amazon.eventstream",
    ),
}


def _sse_with(stream: bytes, text: str, first: Callable[[dict[str, Any]], bool]) -> bytes:
    """*stream* (server-sent events) with *text* put before the first text delta *first*
    finds (and edits)."""
    lines, done = [], False
    for line in stream.decode().split("\n"):
        if not done and line.startswith("data: {"):
            event = json.loads(line[len("data: ") :])
            if first(event):
                line, done = "data: " + json.dumps(event), True
        lines.append(line)
    return "\n".join(lines).encode()


def _chat_delta(text: str) -> Callable[[dict[str, Any]], bool]:
    def edit(event: dict[str, Any]) -> bool:
        delta = event["choices"][0]["delta"] if event.get("choices") else {}
        if not delta.get("content"):
            return False
        delta["content"] = text + delta["content"]
        return True

    return edit


def _gemini_delta(text: str) -> Callable[[dict[str, Any]], bool]:
    def edit(event: dict[str, Any]) -> bool:
        part = event["candidates"][0]["content"]["parts"][0]
        part["text"] = text + part["text"]
        return True

    return edit


def _responses_delta(text: str) -> Callable[[dict[str, Any]], bool]:
    def edit(event: dict[str, Any]) -> bool:
        if event.get("type") != "response.output_text.delta":
            return False
        event["delta"] = text + event["delta"]
        return True

    return edit


def _eventstream_with(stream: bytes, text: str) -> bytes:
    messages, _ = split(stream)
    out, done = [], False
    for m in messages:
        payload = m.payload
        if not done and m.headers.get(":event-type") == "contentBlockDelta":
            data = json.loads(payload)
            data["delta"]["text"] = text + data["delta"]["text"]
            payload, done = json.dumps(data).encode(), True
        out.append(encode_message(m.headers, payload))
    return b"".join(out)


def _streamed(end: str, stream: bytes, text: str) -> bytes:
    """The recorded stream of the wire *end* names, its answer beginning with *text*."""
    if end == "/converse-stream":
        return _eventstream_with(stream, text)
    edit = {
        "/chat/completions": _chat_delta,
        "/responses": _responses_delta,
        ":streamGenerateContent": _gemini_delta,
    }[end](text)
    return _sse_with(stream, text, edit)


# AWS names the error type in a header; 403 is what Bedrock answers a bad signature or key.
AWS_DENIED = {"x-amzn-ErrorType": "UnrecognizedClientException:http://internal.amazon.com/"}


def _said(headers: Any) -> list[str]:
    """Every credential a request carried, as a server quoting it back would: each header's
    value, its token, a Basic pair decoded, the access key id of an AWS signature."""
    found = []
    for name, value in headers.items():
        if not is_credential(name):
            continue
        scheme, _, rest = value.partition(" ")
        found += [value, rest] if rest else [value]
        if scheme == "Basic":
            found.append(base64.b64decode(rest).decode())
        found += re.findall(r"Credential=([^/]+)/", value)
    return found


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        _, test_id, plan, *_ = self.path.split("/")
        self.server.received.setdefault(test_id, []).append(
            {k.lower(): v for k, v in self.headers.items()}
        )
        self.server.bodies.setdefault(test_id, []).append(body)
        self.server.hits[test_id] += 1
        actions = plan.split(",")
        action = actions[min(self.server.hits[test_id], len(actions)) - 1]
        path = self.path.partition("?")[0]
        aws = "/model/" in path
        end = next(e for e in ANSWERS if path.endswith(e))
        whole, stream, kind = ANSWERS[end]
        streamed = b'"stream":true' in body.replace(b" ", b"") or not whole
        if action in ("ok", "echoanswer"):  # echoanswer: an answer quoting the credentials
            said = " ".join(_said(self.headers)) + " " if action == "echoanswer" else ""
            if not streamed:
                answer = json.loads(whole)
                if said:
                    answer = json.loads(json.dumps(answer).replace('"fine"', json.dumps(said)))
                self._send(200, answer)
            else:
                self._send(200, _streamed(end, stream, said) if said else stream, kind=kind)
        elif action == "503":
            self._send(503, {"error": {"message": "overloaded, try later"}, "message": "busy"})
        elif action == "echo200":  # an answer of the wrong shape, quoting the credentials
            said = _said(self.headers)
            self._send(200, {"unexpected": said, "candidates": said, "output": said})
        else:  # echo401
            said = "; ".join(_said(self.headers))
            message = f"Incorrect API key provided: {said}. You can find your API key at ..."
            body_ = {"error": {"message": message, "code": "invalid_api_key"}, "message": message}
            self._send(403 if aws else 401, body_, AWS_DENIED if aws else {})

    def _send(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        kind: str = "application/json",
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: Counter[str] = Counter()
        self.received: dict[str, list[dict[str, str]]] = {}
        self.bodies: dict[str, list[bytes]] = {}

    def url(self, test_id: str, plan: str, tail: str = "") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{test_id}/{plan}{tail}"


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    yield from serving(_Server())


# --- the credentials, provider by provider ------------------------------------------------


class AccessToken:
    """What ``azure.identity``'s ``credential.get_token(...)`` returns: a token and its expiry
    (Conduit caches it until a minute before). Its repr shows the token, as azure.core's does."""

    def __init__(self, token: str) -> None:
        self.token, self.expires_on = token, time.time() + 3600

    def __repr__(self) -> str:
        return f"AccessToken(token={self.token!r}, expires_on={self.expires_on})"


class Tokens:
    """A token provider returning *token* as an AccessToken, counting its calls."""

    def __init__(self, token: str) -> None:
        self.token, self.calls = token, 0

    def __call__(self) -> AccessToken:
        self.calls += 1
        return AccessToken(self.token)


class Refreshing:
    """A token provider that gives a new token each time it is asked (the secret first, then
    the secret with a counter): masking must not ask it for one, nor miss the one sent."""

    def __init__(self, token: str) -> None:
        self.token, self.calls = token, 0

    def __call__(self) -> str:
        self.calls += 1
        return self.token if self.calls == 1 else f"{self.token}.{self.calls}"


def _bearer_of(got: dict[str, str], secret: str) -> bool:
    return got.get("authorization", "").startswith(f"Bearer {secret}")


def _header(name: str, scheme: str = "") -> Callable[[dict[str, str], str], bool]:
    return lambda got, secret: got.get(name) == f"{scheme}{secret}"


def _signed(part: str) -> Callable[[dict[str, str], str], bool]:
    """A SigV4-signed request: *part* is what shows the secret was used (the secret key never
    travels: a signature checks against it on the server)."""

    def check(got: dict[str, str], secret: str) -> bool:
        auth = got.get("authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 Credential="):
            return False
        if part == "token":
            return got.get("x-amz-security-token") == secret
        if part == "akid":
            return auth.startswith(f"AWS4-HMAC-SHA256 Credential={secret}/")
        return not any(secret in value for value in got.values())  # the key itself: never

    return check


# Fixed, well-formed values for the two AWS credentials a case does not vary.
AKID, AWS_SECRET = "AKIDSECRETSCAN", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETSCAN"


def _aws(**given: str) -> Callable[[str], dict[str, str]]:
    def env(secret: str) -> dict[str, str]:
        found = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET}
        found.update({k: secret if v == "*" else v for k, v in given.items()})
        return found

    return env


@attrs.frozen
class Cred:
    """One way a provider is given its credential: request options or environment variables,
    made from the secret's text; *sent* checks the server got it as the provider wants."""

    model: str
    sent: Callable[[dict[str, str], str], bool]
    options: Callable[[str], dict[str, Any]] = lambda s: {}
    env: Callable[[str], dict[str, str]] = lambda s: {}
    region: bool = False

    def request(self, secret: str, url: str | None, **extra: Any) -> Any:
        more: dict[str, Any] = {"region": "us-east-1"} if self.region else {}
        if url is not None:
            more["base_url"] = url
        return c.request(self.model, "hi", **self.options(secret), **more, **extra)

    def alternative(self, secret: str, url: str) -> dict[str, Any]:
        more = {"region": "us-east-1"} if self.region else {}
        return {"model": self.model, "base_url": url, **self.options(secret), **more}


def _key(model: str, sent: Callable[..., bool], region: bool = False) -> Cred:
    return Cred(model, sent, options=lambda s: {"api_key": s}, region=region)


def _var(model: str, var: str, sent: Callable[..., bool], region: bool = False) -> Cred:
    return Cred(model, sent, env=lambda s: {var: s}, region=region)


AZURE, GEMINI, BEDROCK = "azure:dep", "gemini:gemini-2.5-flash", f"bedrock:{HAIKU}"
CREDS: dict[str, Cred] = {
    "azure api_key": _key(AZURE, _header("api-key")),
    "azure AZURE_OPENAI_API_KEY": _var(AZURE, "AZURE_OPENAI_API_KEY", _header("api-key")),
    "azure token_provider": Cred(
        AZURE, _header("authorization", "Bearer "), options=lambda s: {"token_provider": lambda: s}
    ),
    "azure cached AccessToken": Cred(
        AZURE, _header("authorization", "Bearer "), options=lambda s: {"token_provider": Tokens(s)}
    ),
    "azure refreshing token_provider": Cred(
        AZURE, _bearer_of, options=lambda s: {"token_provider": Refreshing(s)}
    ),
    "azure AZURE_OPENAI_AD_TOKEN": _var(
        AZURE, "AZURE_OPENAI_AD_TOKEN", _header("authorization", "Bearer ")
    ),
    "gemini api_key": _key(GEMINI, _header("x-goog-api-key")),
    "gemini GEMINI_API_KEY": _var(GEMINI, "GEMINI_API_KEY", _header("x-goog-api-key")),
    "gemini GOOGLE_API_KEY": _var(GEMINI, "GOOGLE_API_KEY", _header("x-goog-api-key")),
    "bedrock api_key": _key(BEDROCK, _header("authorization", "Bearer "), region=True),
    "bedrock AWS_BEARER_TOKEN_BEDROCK": _var(
        BEDROCK, "AWS_BEARER_TOKEN_BEDROCK", _header("authorization", "Bearer "), region=True
    ),
    "bedrock AWS_ACCESS_KEY_ID": Cred(
        BEDROCK, _signed("akid"), env=_aws(AWS_ACCESS_KEY_ID="*"), region=True
    ),
    "bedrock AWS_SECRET_ACCESS_KEY": Cred(
        BEDROCK, _signed("secret"), env=_aws(AWS_SECRET_ACCESS_KEY="*"), region=True
    ),
    "bedrock AWS_SESSION_TOKEN": Cred(
        BEDROCK, _signed("token"), env=_aws(AWS_SESSION_TOKEN="*"), region=True
    ),
}
for _name, _var_name in (
    ("openrouter", "OPENROUTER_API_KEY"),
    ("mistral", "MISTRAL_API_KEY"),
    ("deepseek", "DEEPSEEK_API_KEY"),
    ("responses", "OPENAI_API_KEY"),
):
    _bearer = _header("authorization", "Bearer ")
    CREDS[f"{_name} api_key"] = _key(f"{_name}:some-model", _bearer)
    CREDS[f"{_name} {_var_name}"] = _var(f"{_name}:some-model", _var_name, _bearer)

#: Every variable a credential or an endpoint can come from: cleared before each test.
VARIABLES = (
    "OPENAI_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_VERSION",
    "OPENAI_API_VERSION",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "OPENROUTER_API_KEY",
    "MISTRAL_API_KEY",
    "DEEPSEEK_API_KEY",
    "OPENAI_BASE_URL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in VARIABLES:
        monkeypatch.delenv(var, raising=False)
    # no ~/.aws profile of the machine running the tests takes part
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _given(cred: Cred, secret: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Put *secret* where *cred* reads it from; return every secret the case holds."""
    env = cred.env(secret)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return [secret, *(v for v in env.values() if v != secret)]


# --- malformed credentials: refused before anything is sent, never echoed ---------------------


# (an environment variable cannot hold a NUL character: that shape is for options only)
MALFORMED_CASES = [
    (name, shape)
    for name in CREDS
    for shape in MALFORMED
    if not (CREDS[name].env("x") and "\x00" in MALFORMED[shape]("x"))
]


@pytest.mark.parametrize(("name", "shape"), MALFORMED_CASES)
def test_a_malformed_credential_is_refused_unsent_and_never_echoed(name, shape, server, sinks):
    cred, canary, first = CREDS[name], _canary(), _id()
    secret = MALFORMED[shape](canary)
    url = server.url(first, "ok", "/v1")
    with pytest.MonkeyPatch.context() as env:
        held = _given(cred, secret, env)
        with pytest.raises(c.ValidationError) as caught:
            req = cred.request(secret, url)
            c.call(pipe(req, c.with_logging, c.with_retry(initial_delay=0.001)))
        sinks.error("call", caught.value)
        if "api_key" in cred.options(secret):  # refused at the door, in a fallback too
            with pytest.raises(c.ValidationError) as caught_alt:
                c.with_fallback([cred.alternative(secret, url)])
            sinks.error("fallback", caught_alt.value)
    assert PROBLEM[shape] in str(caught.value)
    assert not c.is_retryable(caught.value)
    assert server.hits[first] == 0  # refused before anything was sent
    sinks.assert_clean(*held, secret.strip(), canary)


# --- well-formed credentials: sent as the provider wants, leaking nowhere ---------------------


def _alt_secret(cred: Cred, secret: str, other: str) -> str:
    """The secret the fallback alternative sends: its own, or (from the environment) the same."""
    return other if cred.options(other) else secret


@pytest.mark.parametrize("shape", list(SENDABLE))
@pytest.mark.parametrize("name", list(CREDS))
def test_a_sent_credential_leaks_nowhere_through_retry_fallback_batch_and_replay(
    name, shape, server, sinks, monkeypatch
):
    cred, canary, other = CREDS[name], _canary(), _canary()
    first, second = _id(), _id()
    secret, alt_secret = SENDABLE[shape](canary), SENDABLE[shape](other)
    held = _given(cred, secret, monkeypatch)
    req = cred.request(secret, server.url(first, "503", "/v1"))
    alt = cred.alternative(alt_secret, server.url(second, "ok", "/v1"))
    wrapped = _stack(req, alt, sinks.folder / "cassette.jsonl")
    sinks.display("request", req)
    sinks.display("wrapped", wrapped)
    sinks.display("middleware", list(middlewares(wrapped)))
    ctx = c.call(wrapped)
    assert ctx["fallbacks"] == 1 and c.content(ctx)
    sinks.display("context", ctx)
    done = c.batch(c.call, [wrapped, wrapped], checkpoint=sinks.folder / "ck.jsonl", progress=True)
    assert all(c.content(x) for x in done)
    sinks.display("batch", done)
    # the real credentials reached the server: 3 attempts per call, then the alternative's
    assert server.hits[first] == 9 and server.hits[second] == 3
    assert all(cred.sent(h, secret) for h in server.received[first])
    assert all(cred.sent(h, _alt_secret(cred, secret, alt_secret)) for h in server.received[second])
    assert not any(canary in b.decode() for b in server.bodies[first])  # headers only
    assert {"httpx", "httpcore", "app"} <= {r.name.split(".")[0] for r in sinks.handler.records}
    sinks.assert_clean(*held, alt_secret, canary, other)


def _echo(
    cred: Cred, server: _Server, sinks: _Sinks, secret: str, other: str, plan: str = "echo401"
) -> BaseException:
    """A call whose server quotes the credentials back; its error, once retries and fallback
    had their say (neither may send the credentials on)."""
    first, second = _id(), _id()
    req = cred.request(secret, server.url(first, plan, "/v1"))
    alt = cred.alternative(other, server.url(second, "ok", "/v1"))
    wrapped = _stack(req, alt, sinks.folder / "cassette.jsonl")
    with pytest.raises(c.ProviderError) as caught:
        c.call(wrapped)
    (failed,) = c.batch(c.call, [wrapped], checkpoint=sinks.folder / "ck.jsonl", progress=False)
    assert failed["error"]["type"] == type(caught.value).__name__
    with pytest.raises(c.ConduitError) as streamed:
        for _ in c.stream(cred.request(secret, server.url(first, plan, "/v1"))):
            pass
    sinks.error("stream", streamed.value)
    # an answer quoting the key is neither retried (it would be sent again) nor fallen back
    assert server.hits[first] == 3 and server.hits[second] == 0
    return caught.value


@pytest.mark.parametrize("shape", list(SENDABLE))
@pytest.mark.parametrize("name", list(CREDS))
def test_a_server_echoing_the_credentials_does_not_put_them_anywhere(
    name, shape, server, sinks, monkeypatch
):
    cred, canary, other = CREDS[name], _canary(), _canary()
    secret, alt_secret = SENDABLE[shape](canary), SENDABLE[shape](other)
    held = _given(cred, secret, monkeypatch)
    err = _echo(cred, server, sinks, secret, alt_secret)
    assert isinstance(err, c.AuthenticationError | c.PermissionDeniedError)
    sinks.error("echo", err)
    sinks.assert_clean(*held, alt_secret, canary, other)


@pytest.mark.parametrize("name", list(CREDS))
def test_an_answer_of_the_wrong_shape_quoting_the_credentials_is_masked(
    name, server, sinks, monkeypatch
):
    cred, canary, other = CREDS[name], _canary(), _canary()
    secret = f"sk-{canary}"
    held = _given(cred, secret, monkeypatch)
    err = _echo(cred, server, sinks, secret, f"sk-{other}", plan="echo200")
    assert err.status_code == 200 and "malformed" in err.data
    sinks.error("malformed", err)
    sinks.assert_clean(*held, canary, other)


# --- c.wire, c.show, c.estimate ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(CREDS))
def test_wire_show_and_estimate_mask_every_credential(name, server, sinks, monkeypatch):
    cred, canary, first = CREDS[name], _canary(), _id()
    secret = f"sk-{canary}"
    held = _given(cred, secret, monkeypatch)
    req = pipe(cred.request(secret, server.url(first, "ok", "/v1")), c.with_retry, c.with_logging)
    for stream in (False, True):
        sent = c.wire(req, stream=stream)
        assert sent["url"].startswith("http://127.0.0.1:") and "missing" not in sent
        shown = [v for k, v in sent["headers"].items() if is_credential(k)]
        assert shown and set(shown) <= {"***", "(signed when sent)"}
        sinks.texts[f"wire {stream}"] = json.dumps(sent, default=str)
        sinks.display(f"wire {stream}", sent)
    sinks.display("estimate", c.estimate(req))
    assert server.hits[first] == 0  # a preview sends nothing
    sinks.assert_clean(*held, canary)


# --- a password in a base URL variable --------------------------------------------------------

ONE_PER_PROVIDER = [
    "azure api_key",
    "gemini api_key",
    "bedrock api_key",
    "openrouter api_key",
    "mistral api_key",
    "deepseek api_key",
    "responses api_key",
]


def _base_variable(cred: Cred) -> str:
    var = lookup(cred.model.split(":")[0]).base_url_env
    assert var is not None
    return var


@pytest.mark.parametrize("name", ONE_PER_PROVIDER)
def test_a_password_in_a_base_url_variable_is_sent_as_basic_auth_and_leaks_nowhere(
    name, server, sinks, monkeypatch
):
    """The door takes ``user:password@`` out of a request's base_url; the provider's base URL
    variable (``MISTRAL_BASE_URL=https://user:pw@gateway/v1``) gets the same treatment."""
    cred, user, password, key = CREDS[name], _canary(), _canary(), f"sk-{_canary()}"
    port = server.server_address[1]

    def at(plan: str) -> str:
        test_id = _id()
        monkeypatch.setenv(
            _base_variable(cred), f"http://{user}:{password}@127.0.0.1:{port}/{test_id}/{plan}/v1"
        )
        return test_id

    first = at("503,ok")
    req = pipe(cred.request(key, None), c.with_logging, c.with_retry(initial_delay=0.001))
    sent = c.wire(req)
    assert user not in sent["url"] and sent["headers"]["Authorization"] == "***"
    sinks.display("wire", sent)
    ctx = c.call(req)
    assert c.content(ctx) and server.hits[first] == 2
    basic = server.received[first][0]["authorization"]
    assert base64.b64decode(basic.removeprefix("Basic ")).decode() == f"{user}:{password}"
    denied = at("echo401")
    with pytest.raises(c.ProviderError) as caught:
        c.call(req)
    assert server.hits[denied] == 1
    sinks.error("denied", caught.value)
    sinks.display("context", ctx)
    sinks.assert_clean(user, password, f"{user}:{password}", key)


# --- OpenTelemetry spans ----------------------------------------------------------------------


@pytest.mark.parametrize("capture", [False, True], ids=["metadata", "capture_content"])
@pytest.mark.parametrize("name", list(CREDS))
def test_tracing_spans_hold_no_credential(name, capture, server, sinks, monkeypatch):
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter, tracer_provider = InMemorySpanExporter(), TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    cred, canary, other = CREDS[name], _canary(), _canary()
    secret, alt_secret = f"sk-{canary}", f"sk-{other}"
    held = _given(cred, secret, monkeypatch)

    def traced(plan: str) -> Any:
        req = cred.request(secret, server.url(_id(), plan, "/v1"))
        alt = cred.alternative(alt_secret, server.url(_id(), "ok", "/v1"))
        return pipe(
            req,
            c.with_fallback([alt]),
            c.with_retry(max_attempts=2, initial_delay=0.001),
            c.with_tracing(tracer_provider=tracer_provider, capture_content=capture),
        )

    assert c.call(traced("503"))["fallbacks"] == 1
    for plan in ("echo401", "echo200"):
        with pytest.raises(c.ProviderError):
            c.call(traced(plan))
    assert "".join(e["text"] for e in c.stream(traced("ok")) if e["type"] == "content_delta")
    spans = exporter.get_finished_spans()
    assert len(spans) >= 8 and sum(len(s.events) for s in spans) >= 2  # errors recorded
    for i, span in enumerate(spans):
        sinks.texts[f"span {i} {span.name}"] = span.to_json()
    sinks.assert_clean(*held, alt_secret, canary, other)


# --- the command line: its log, --history, `conduit logs` --------------------------------------

ENV_CREDS = [name for name, cred in CREDS.items() if cred.env("x")]


def _cli(sinks: _Sinks, label: str, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    status, out, err = run_cli(sinks.capsys, *argv, stdin=stdin)
    sinks.texts[f"cli {label}"] = out + err
    return status, out, err


@pytest.mark.parametrize("name", ENV_CREDS)
def test_the_command_line_its_log_and_history_hold_no_credential(name, server, sinks, monkeypatch):
    cred, canary = CREDS[name], _canary()
    secret = SENDABLE["quote characters"](canary)  # escaped in the log's JSON
    held = _given(cred, secret, monkeypatch)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("CONDUIT_LOGS", str(sinks.folder / "logs.db"))
    monkeypatch.chdir(sinks.folder)

    def at(plan: str) -> str:
        test_id = _id()
        monkeypatch.setenv(_base_variable(cred), server.url(test_id, plan, "/v1"))
        return test_id

    common = ["-m", cred.model, "--retries", "2", "--timeout", "30"]
    first = at("503,ok")
    status, out, _ = _cli(sinks, "chat", "chat", *common, "--history", "h.json", "hello")
    assert status == 0 and out.strip() and server.hits[first] == 2
    assert all(cred.sent(h, secret) for h in server.received[first])
    denied = at("echo401")
    status, _, err = _cli(sinks, "denied", "chat", *common, "hello again")
    assert status == 3 and server.hits[denied] == 1 and "error" in err.lower()
    at("ok")
    typed = "first\n/history\n/save saved.json\n/exit\n"
    status, _, _ = _cli(
        sinks, "interactive", "chat", "-i", *common, "--history", "h.json", stdin=typed
    )
    assert status == 0 and (sinks.folder / "saved.json").exists()
    # A server answering with the credentials it was sent: the chat shows the answer as it
    # came (the terminal is the user's), and the log, which keeps it, masks them.
    at("echoanswer")
    status, out, _ = _cli(sinks, "echoed", "chat", *common, "what did I send?")
    assert status == 0 and any(value in out for value in held)  # (a secret key is never sent)
    del sinks.texts["cli echoed"]
    _cli(sinks, "logs", "logs")
    _, listed, _ = _cli(sinks, "logs json", "logs", "--json", "-n", "10")
    rows = [json.loads(line) for line in listed.splitlines() if line.strip()]
    assert len(rows) == 4 and any(row["error"] for row in rows)
    for row in rows:
        _cli(sinks, f"logs show {row['id']}", "logs", "show", row["id"])
    _cli(sinks, "logs search", "logs", "search", "hello")
    _cli(sinks, "models", "models")
    assert {p.name for p in sinks.folder.iterdir()} >= {"logs.db", "h.json", "saved.json"}
    sinks.assert_clean(*held, canary)


def _credential_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[dict[str, str], dict[str, str]]:
    """Set every provider's credential variable (not the paths to credential files) to a
    distinct value holding a canary; return (the values, the canaries), by name."""
    names = sorted(
        {v for p in PROVIDERS for v in (p.env_key, *p.credential_env) if v and is_credential(v)}
        - {"AWS_SHARED_CREDENTIALS_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE"}
    )
    canaries = {var: _canary() for var in names}
    values = {var: SENDABLE["quote characters"](f"{var.lower()}-{canaries[var]}") for var in names}
    for var, value in values.items():
        monkeypatch.setenv(var, value)
    return values, canaries


def test_the_call_log_masks_every_provider_credential_variable(sinks, monkeypatch):
    """The log masks the credentials in the environment wherever they turn up in what it
    keeps (a prompt, an answer, an error), for every provider: Gemini's second key name,
    Azure's Entra ID token and Bedrock's API key and AWS credentials included."""
    values, canaries = _credential_variables(monkeypatch)
    names = sorted(values)
    assert {"GOOGLE_API_KEY", "AZURE_OPENAI_AD_TOKEN", "AWS_BEARER_TOKEN_BEDROCK"} <= set(names)
    said = " and ".join(values.values())
    rows = logged(
        sinks.folder,
        {
            "model": "gemini:gemini-2.5-flash",
            "prompt": f"keys: {said}",
            "messages": [c.user(f"keys: {said}"), c.assistant(f"you sent {said}")],
            "ctx": {"response": {"role": "assistant", "content": f"you sent {said}"}},
            "system": f"system {said}",
        },
        {
            "model": "bedrock:m",
            "prompt": "hi",
            "messages": [c.user("hi")],
            "error": c.AuthenticationError(f"refused {said}"),
        },
    )
    assert len(rows) == 2
    sinks.texts["rows"] = json.dumps(rows)
    sinks.assert_clean(*values.values(), *canaries.values())


# --- provider batch APIs: the JSONL uploaded, the checkpoint, the errors ----------------------


class _EchoingBatches(BatchServer):
    """The batch stand-ins, with every per-item error and failed batch quoting the key (as a
    401 does), and the files uploaded to them kept apart from the ones they wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.uploaded: list[bytes] = []
        self.created_with: list[dict[str, str]] = []  # the headers each batch was made with

    def _route(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        if method == "POST" and path.rstrip("/").endswith("batches"):
            self.created_with.append({k.lower(): v for k, v in headers.items()})
        return super()._route(method, path, headers, body)

    def _quoting(self, data: bytes) -> bytes:
        quoted = json.dumps(f"refused, key {self.key}")[1:-1]
        return data.replace(b"refused on purpose.", quoted.encode())

    def _upload(self, headers: Any, body: bytes) -> tuple[int, Any]:
        status, answer = super()._upload(headers, body)
        self.uploaded.append(self.files[answer["id"]])
        return status, answer

    def _openai_finish(self, batch: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        super()._openai_finish(batch, lines)
        for error in (batch.get("errors") or {}).get("data") or ():
            error["message"] = f"{error['message']} (key {self.key})"
        for field in ("output_file_id", "error_file_id"):
            if batch.get(field):
                self.files[batch[field]] = self._quoting(self.files[batch[field]])

    def _anthropic_poll(self, batch_id: str) -> dict[str, Any]:
        batch = super()._anthropic_poll(batch_id)
        name = f"results-{batch_id}"
        if name in self.files:
            self.files[name] = self._quoting(self.files[name])
        return batch


@pytest.fixture(scope="module")
def batches() -> Iterator[_EchoingBatches]:
    found = _EchoingBatches()
    yield found
    found.close()


BATCH_MODELS = {"openai": "gpt-4o-mini", "anthropic": "anthropic:claude-haiku-4-5"}
BATCH_KEYS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


@pytest.mark.parametrize("given", ["api_key", "environment"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_provider_batches_hold_no_credential(provider, given, batches, sinks, monkeypatch):
    canary, wrong = _canary(), _canary()
    secret = f"sk-{canary}"
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    batches.key, batches.outcome, batches.hold = secret, "completed", 1
    uploaded = len(batches.uploaded)
    handler = c.provider_batch(provider, poll=0.01, max_poll=0.02)
    if given == "environment":
        monkeypatch.setenv(BATCH_KEYS[provider], secret)
    options = {"api_key": secret} if given == "api_key" else {}

    def run(texts: list[str], label: str, **more: Any) -> Any:
        reqs = [
            c.request(BATCH_MODELS[provider], t, base_url=batches.url, max_tokens=9, **options)
            for t in texts
        ]
        reqs = [r.update(c.freeze(more)) for r in reqs]
        done = c.batch(handler, reqs, checkpoint=sinks.folder / f"{label}.jsonl")
        sinks.display(label, done)
        return done

    done = run(["one", "fail two", "three"], "items")
    assert ["error" in d for d in done] == [False, True, False]
    assert "refused" in json.dumps(c.thaw(done[1]["error"]))  # the server's words, masked
    if provider == "openai":
        batches.outcome = "failed"
        failed = run(["four"], "failed")
        assert "does not exist" in failed[0]["error"]["message"]
        assert len(batches.uploaded) > uploaded
    refused = run(["five"], "refused", api_key=c.Secret(f"sk-{wrong}"))
    assert refused[0]["error"]["type"] == "AuthenticationError"
    with pytest.raises(c.ConduitError) as caught:  # one request alone is a batch of one
        handler(c.request(BATCH_MODELS[provider], "x", base_url=batches.url, api_key=f"sk-{wrong}"))
    sinks.error("alone", caught.value)
    for i, data in enumerate(batches.uploaded[uploaded:]):
        sinks.texts[f"uploaded {i}"] = data.decode()
    sinks.assert_clean(secret, canary, wrong)


# --- MCP servers: their environment, their errors, the SDK's and httpx's logs -----------------

MCP_SERVER = [sys.executable, str(Path(__file__).resolve().parents[1] / "mcp_server.py")]


def test_an_mcp_server_is_not_given_the_provider_keys_of_the_environment(sinks, monkeypatch):
    pytest.importorskip("mcp")
    names = {v for p in PROVIDERS for v in (p.env_key, *p.credential_env) if v}
    values = {var: f"sk-{_canary()}" for var in sorted(names) if is_credential(var)}
    for var, value in values.items():
        monkeypatch.setenv(var, value)
    with c.mcp_tools(MCP_SERVER) as tools:
        echo = next(t for t in tools if t["name"] == "echo_env")
        seen = {var: echo["fn"](name=var) for var in values}
        assert "/" in str(echo["fn"](name="PATH"))  # the tool reads the server's environment
    sinks.texts["the server's environment"] = repr(seen)
    sinks.display("tools", list(tools))
    own = f"sk-{_canary()}"  # a key given to a server on purpose is its own: masked in errors
    failing = [sys.executable, "-c", "import os, sys; sys.exit(os.environ['MY_API_TOKEN'])"]
    with (
        pytest.raises(c.ConduitError) as caught,
        c.mcp_tools(failing, env={"MY_API_TOKEN": own}, timeout=10),
    ):
        pass
    sinks.error("failing", caught.value)
    sinks.assert_clean(*values.values(), own)


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[tuple[str, str]]:
    """The test MCP server over streamable HTTP on a loopback port, wanting a bearer token."""
    pytest.importorskip("mcp")
    token = f"sk-{_canary()}"
    for port in mcp_over_http(token):
        yield f"127.0.0.1:{port}/mcp", token


def test_mcp_credentials_leak_nowhere_over_http(mcp_url, sinks):
    where, token = mcp_url
    with c.mcp_tools(f"http://{where}", headers={"Authorization": f"Bearer {token}"}) as tools:
        add = next(t for t in tools if t["name"] == "add")
        assert add["fn"](a=2, b=3) == "5"
    user, password, wrong, keyed = _canary(), _canary(), f"sk-{_canary()}", _canary()
    no_log_filter()  # as in a fresh process: the MCP client itself must mask its URL's key
    attempts = {
        "query": lambda: c.mcp_tools(f"http://{where}?api_key={keyed}", timeout=10),
        "userinfo": lambda: c.mcp_tools(f"http://{user}:{password}@{where}", timeout=10),
        "header": lambda: c.mcp_tools(
            {"url": f"http://{where}", "headers": {"X-Api-Key": wrong}}, timeout=10
        ),
    }
    for label, attempt in attempts.items():
        with pytest.raises(c.ConnectionError) as caught, attempt():
            pass
        sinks.error(label, caught.value)
    assert "http://***@127.0.0.1" in sinks.texts["userinfo error"]
    assert any("api_key=***" in r.getMessage() for r in sinks.handler.records)  # logged, masked
    sinks.assert_clean(token, user, password, f"{user}:{password}", wrong, keyed)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_requests_with_other_credentials_are_never_batched_together(provider, batches, sinks):
    """A batch is sent with its first request's credentials: requests whose credential
    headers differ (another project's token) go in batches of their own, each with its own."""
    secret, mine, theirs = f"sk-{_canary()}", f"t-{_canary()}", f"t-{_canary()}"
    batches.key, batches.outcome, batches.hold = secret, "completed", 1
    made = len(batches.created_with)
    reqs = [
        c.request(
            BATCH_MODELS[provider],
            text,
            base_url=batches.url,
            api_key=secret,
            max_tokens=9,
            headers={"X-Project-Token": token},
        )
        for text, token in (("one", mine), ("two", theirs), ("three", mine))
    ]
    done = c.batch(c.provider_batch(provider, poll=0.01, max_poll=0.02), reqs)
    assert all(c.content(d) for d in done)
    tokens = sorted(h["x-project-token"] for h in batches.created_with[made:])
    assert tokens == sorted([mine, theirs])
    sinks.display("done", done)
    sinks.assert_clean(secret, mine, theirs)


def test_a_batch_checkpoint_masks_every_provider_credential_variable(sinks, monkeypatch):
    """The checkpoint's last line of defence (an answer quoting a key is written masked)
    knows every provider's credential variables, not only the main key names."""
    values, canaries = _credential_variables(monkeypatch)
    said = " and ".join(values.values())
    req = c.request("mock:echo", "what is in the environment?", mock=lambda r: f"it holds {said}")
    (done,) = c.batch(c.call, [req], checkpoint=sinks.folder / "ck.jsonl", progress=False)
    assert canaries["GOOGLE_API_KEY"] in c.content(done)  # the answer, as the model gave it
    sinks.assert_clean(*values.values(), *canaries.values())


def test_a_cached_entra_token_is_asked_for_once_and_shown_nowhere(server, sinks):
    """An AccessToken is cached until a minute before it expires: asked for once, sent on
    each call, and neither the cache nor the tokens kept for masking show it in a repr."""
    canary = _canary()
    tokens = Tokens(f"eyJ0-{canary}")
    first = _id()
    req = c.request(AZURE, "hi", base_url=server.url(first, "ok", "/v1"), token_provider=tokens)
    for _ in range(3):
        assert c.content(c.call(req))
    denied = pipe(req.set("base_url", server.url(_id(), "echo401", "/v1")), c.with_logging)
    with pytest.raises(c.AuthenticationError) as caught:
        c.call(denied)
    assert tokens.calls == 1
    assert {h["authorization"] for h in server.received[first]} == {f"Bearer {tokens.token}"}
    sinks.error("denied", caught.value)
    sinks.display("request", req)
    sinks.texts["azure's caches"] = repr(azure._tokens) + repr(azure._issued)
    sinks.assert_clean(tokens.token, canary)


def test_every_credential_variable_names_its_own_cache_tenant():
    """A cached answer is never served to another credential: each credential variable (an
    Entra ID token in AZURE_OPENAI_AD_TOKEN too) tells the tenants of a shared cache apart."""
    from conduit.cache import tenant

    req = c.request(AZURE, "hi")
    for var in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "GOOGLE_API_KEY"):
        assert tenant(req, {var: "tok-a-0123"}) != tenant(req, {var: "tok-b-0123"}), var
