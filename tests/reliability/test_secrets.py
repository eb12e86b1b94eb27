"""The secret scan: no key, credential header or URL password reaches any sink.

Each case runs real calls against a loopback server (one that answers, fails with 503, or
echoes the credentials it received in a 401 body, as OpenAI's "Incorrect API key provided:
sk-..." does) with every logger at DEBUG (httpx and httpcore included), then looks for the
secret in every sink: exceptions (str, repr, args, body, data, the chained traceback), every
log record (message, args, fields, formatted), every file written (batch checkpoint, replay
cassette), every display (repr, str, ``c.show``, IPython) and what reached stdout/stderr.
Each secret carries a random canary, so an escaped copy (JSON, repr) is found too.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from toolz import pipe

import conduit as c
from conduit import calllog
from conduit._data import _URL_LOGGERS, _url_filter, is_credential, reveal
from conduit._types import Request
from conduit.mcp import _http_target, server_spec
from conduit.middleware import middlewares
from conduit.request import as_request
from tests.serving import serving

CHAT = {
    "id": "chatcmpl-s",
    "object": "chat.completion",
    "model": "secret-model",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        _, test_id, plan, *_ = self.path.split("/")
        self.server.received.setdefault(test_id, []).append(
            {":path": self.path, **{k.lower(): v for k, v in self.headers.items()}}
        )
        self.server.hits[test_id] += 1
        actions = plan.split(",")
        action = actions[min(self.server.hits[test_id], len(actions)) - 1]
        if action == "ok":
            self._send(200, CHAT)
        elif action == "503":
            self._send(503, {"error": {"message": "overloaded, try later"}})
        elif action == "echoanswer":  # an answer quoting what was sent: the URL, credentials
            said = "; ".join(
                f"{k}: {_plain(k, v)}" for k, v in self.headers.items() if is_credential(k)
            )
            answer = json.loads(json.dumps(CHAT))
            answer["choices"][0]["message"]["content"] = f"you sent {self.path} with {said}"
            self._send(200, answer)
        else:  # echo401: what OpenAI does with a wrong key, for every credential received
            said = "; ".join(
                f"{k}: {_plain(k, v)}" for k, v in self.headers.items() if is_credential(k)
            )
            message = (
                f"Incorrect API key provided: {said} (to {self.path}). You can find your API "
                "key at ..."
            )
            body = {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            }
            self._send(401, body)

    def _send(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
        pass


def _plain(name: str, value: str) -> str:
    scheme, _, rest = value.partition(" ")
    if name.lower() == "authorization" and scheme == "Basic":
        return base64.b64decode(rest).decode()
    return rest if name.lower() == "authorization" else value


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: Counter[str] = Counter()
        self.received: dict[str, list[dict[str, str]]] = {}

    def url(self, test_id: str, plan: str, userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.server_address[1]}/{test_id}/{plan}/v1"


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    yield from serving(_Server())


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def sinks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[_Sinks]:
    """Every logger at DEBUG into one handler; the scan reads it, tmp_path and stdout/stderr."""
    handler = _Records()
    root = logging.getLogger()
    names = ("httpx", "httpcore", "conduit", "app")
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in ("", *names)]
    root.addHandler(handler)
    for logger, _ in saved:
        logger.setLevel(logging.DEBUG)
    try:
        yield _Sinks(handler, tmp_path, capsys)
    finally:
        root.removeHandler(handler)
        for logger, level in saved:
            logger.setLevel(level)


class _Sinks:
    def __init__(self, handler: _Records, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.handler, self.folder, self.capsys = handler, folder, capsys
        self.texts: dict[str, str] = {}

    def error(self, label: str, exc: BaseException) -> None:
        """Record every way an exception can be printed or read."""
        parts = [str(exc), repr(exc), repr(exc.args), "".join(traceback.format_exception(exc))]
        for attr in ("body", "data", "message", "ctx"):
            parts.append(repr(getattr(exc, attr, None)))
        if isinstance(exc, c.ConduitError):
            parts.append(json.dumps(c.thaw(exc.data), default=str))
        self.texts[f"{label} error"] = "\n".join(parts)

    def display(self, label: str, value: Any, reprs: bool = True) -> None:
        """Record repr, str, c.show and (when IPython is installed) its text/plain display."""
        if reprs:
            self.texts[f"{label} repr"] = repr(value) + "\n" + str(value)
        self.texts[f"{label} show"] = c.show(value)
        self.texts[f"{label} ipython"] = _ipython(value)

    def everything(self) -> dict[str, str]:
        found = dict(self.texts)
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        for i, r in enumerate(self.handler.records):
            found[f"log {i} ({r.name})"] = "\n".join(
                [formatter.format(r), repr(r.msg), repr(r.args), repr(vars(r))]
            )
        for path in self.folder.rglob("*"):
            if path.is_file():
                found[f"file {path.name}"] = path.read_bytes().decode("utf-8", "replace")
        out = self.capsys.readouterr()
        found["stdout/stderr"] = out.out + out.err
        return found

    def assert_clean(self, *secrets: str) -> None:
        """No sink holds any of *secrets*, nor its canary, nor its base64 (Basic auth) form."""
        needles = {s for s in secrets if s} | {
            base64.b64encode(s.encode()).decode() for s in secrets
        }
        leaks = [
            f"{where}: {needle[:12]}…"
            for where, text in self.everything().items()
            for needle in needles
            if needle in text
        ]
        assert not leaks, "secret found in: " + ", ".join(leaks)


@functools.cache
def _shell() -> Any:
    """One IPython shell for the whole run, without a history database: a shell per display
    left a history-saving thread behind each time, and exiting took minutes."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    return InteractiveShell.instance(config=config)


def _ipython(value: Any) -> str:
    try:
        shell = _shell()
    except ImportError:  # pragma: no cover - IPython is a dev dependency
        return ""
    c.display.install()
    return str(shell.display_formatter.format(value)[0]["text/plain"])


def logged(folder: Path, *calls: dict[str, Any]) -> list[dict[str, Any]]:
    """Write *calls* (``log.record`` fields) to a call log in *folder*, as the CLI does, and
    return its rows: what the log keeps."""
    log = calllog.open_log(folder / "logs.db")
    assert log is not None
    try:
        for call in calls:
            fields = {"conversation": "c1", "command": "chat", "started": time.time()}
            log.record(**{**fields, "latency": 0.1, **call})
        return log.recent()
    finally:
        log.close()


def no_log_filter() -> None:
    """Take Conduit's filter off the loggers that print URLs, as in a process that has not
    been given a URL with a key yet (so a test sees the code under test install it)."""
    for name in _URL_LOGGERS:
        logging.getLogger(name).removeFilter(_url_filter)


def _canary() -> str:
    return "CANARY" + uuid.uuid4().hex[:20]


def _id() -> str:
    """A test's path on the server (never a canary: URLs are logged, and rightly so)."""
    return "t" + uuid.uuid4().hex[:12]


# Keys of every malformed shape: refused when the request is built, never sent.
MALFORMED = {
    "trailing newline": lambda k: f"sk-{k}\n",
    "trailing CRLF": lambda k: f"sk-{k}\r\n",
    "surrounding spaces": lambda k: f"  sk-{k}  ",
    "leading tab": lambda k: f"\tsk-{k}",
    "non-ASCII": lambda k: f"sk-{k}\N{RIGHT SINGLE QUOTATION MARK}x",
    "no-break space inside": lambda k: f"sk-{k}\N{NO-BREAK SPACE}x",
    "control character": lambda k: f"sk-{k}\x00x",
    "newline inside": lambda k: f"sk-{k}\nsk-other",
}

# Keys that are valid in HTTP, however odd: they are sent, and must still leak nowhere.
SENDABLE = {
    "sk- key": lambda k: f"sk-proj-{k}",
    "non-sk key": lambda k: f"{k}-gsk-ant-xai",
    "very long": lambda k: f"sk-{k}" + "x9" * 4000,
    "quote characters": lambda k: f"sk-{k}\"'`\\<>",
}

PROBLEM = {
    "trailing newline": "ends with a newline: strip it, e.g. open(path).read().strip()",
    "trailing CRLF": "ends with a newline",
    "surrounding spaces": "has whitespace at its start and end: strip it, e.g. key.strip()",
    "leading tab": "has whitespace at its start",
    "non-ASCII": "non-ASCII character (RIGHT SINGLE QUOTATION MARK)",
    "no-break space inside": "non-ASCII character (NO-BREAK SPACE)",
    "control character": "control character (U+0000)",
    "newline inside": "control character (U+000A)",
}


@pytest.mark.parametrize("shape", list(MALFORMED))
def test_a_malformed_key_is_refused_at_the_door_and_never_echoed(shape, server, sinks):
    canary = _canary()
    first = _id()
    key = MALFORMED[shape](canary)
    url = server.url(first, "ok")
    attempts = {
        "request": lambda: c.request("gpt-4o-mini", "hi", api_key=key, base_url=url),
        "secret": lambda: c.request("gpt-4o-mini", "hi", api_key=c.Secret(key), base_url=url),
        "as_request": lambda: c.call({"model": "gpt-4o-mini", "api_key": key, "base_url": url}),
        "header": lambda: c.request("m", "hi", headers={"x-api-key": key}, base_url=url),
        "fallback": lambda: c.with_fallback([{"model": "b", "api_key": key}]),
        "set": lambda: c.call(c.request("gpt-4o-mini", "hi", base_url=url).set("api_key", key)),
    }
    for label, attempt in attempts.items():
        with pytest.raises(c.ValidationError) as caught:
            attempt()
        assert PROBLEM[shape] in str(caught.value), label
        sinks.error(label, caught.value)
    assert server.hits[first] == 0  # refused before anything was sent
    sinks.assert_clean(key, key.strip(), canary)


def test_a_validation_error_about_the_model_never_echoes_the_key(sinks):
    canary = _canary()
    key = f"sk-{canary}"
    failures = {
        "no model": lambda: as_request({"api_key": key, "messages": ["hi"]}),
        "call without model": lambda: c.call({"api_key": key, "messages": ["hi"]}),
        "empty model": lambda: c.request("", "hi", api_key=key),
        "model is the key": lambda: c.request(None, "hi", api_key=key),  # type: ignore[arg-type]
        "single map to fallback": lambda: c.with_fallback({"model": "b", "api_key": key}),
        "headers not a map": lambda: c.request("m", headers=[("Authorization", key)]),
        "bad header name": lambda: c.request("m", headers={f"x {key}": "v"}),
    }
    for label, fail in failures.items():
        with pytest.raises(c.ValidationError) as caught:
            fail()
        sinks.error(label, caught.value)
    sinks.assert_clean(key, canary)


def _stack(req: Request, alt: dict[str, Any], cassette: Path) -> Request:
    return pipe(
        req,
        c.with_logging(logger="app", level="DEBUG"),
        c.with_fallback([alt]),
        c.with_retry(max_attempts=3, initial_delay=0.001, max_delay=0.002),
        c.with_replay(cassette, mode="record"),
    )


@pytest.mark.parametrize("shape", list(SENDABLE))
def test_a_sent_key_leaks_nowhere_through_retry_fallback_batch_and_replay(shape, server, sinks):
    canary, other = _canary(), _canary()
    first, second = _id(), _id()
    key, alt_key = SENDABLE[shape](canary), SENDABLE[shape](other)
    req = c.request("gpt-4o-mini", "hi", api_key=key, base_url=server.url(first, "503"))
    alt = {"model": "backup", "api_key": alt_key, "base_url": server.url(second, "ok")}
    wrapped = _stack(req, alt, sinks.folder / "cassette.jsonl")
    sinks.display("request", req)
    sinks.display("wrapped", wrapped)
    sinks.display("middleware", list(middlewares(wrapped)))
    ctx = c.call(wrapped)
    assert ctx["fallbacks"] == 1 and c.content(ctx) == "fine"
    sinks.display("context", ctx)
    done = c.batch(c.call, [wrapped, wrapped], checkpoint=sinks.folder / "ck.jsonl", progress=True)
    assert all(c.content(x) == "fine" for x in done)
    sinks.display("batch", done)
    # the real keys did reach the server: 3 attempts per call, then the alternative's key
    assert server.hits[first] == 9 and server.hits[second] == 3
    assert {h["authorization"] for h in server.received[first]} == {f"Bearer {key}"}
    assert {h["authorization"] for h in server.received[second]} == {f"Bearer {alt_key}"}
    assert {"httpx", "httpcore", "app"} <= {r.name.split(".")[0] for r in sinks.handler.records}
    sinks.assert_clean(key, alt_key, canary, other)


async def test_an_async_call_leaks_nothing_either(server, sinks):
    canary, other = _canary(), _canary()
    first, second = _id(), _id()
    key, alt_key = f"sk-{canary}", f"sk-{other}"
    req = c.request("gpt-4o-mini", "hi", api_key=key, base_url=server.url(first, "503"))
    alt = {"model": "backup", "api_key": alt_key, "base_url": server.url(second, "ok")}
    ctx = await c.acall(_stack(req, alt, sinks.folder / "cassette.jsonl"))
    await asyncio.sleep(0)
    assert ctx["fallbacks"] == 1 and server.hits[first] == 3
    sinks.display("context", ctx)
    sinks.assert_clean(key, alt_key, canary, other)


def _echo_401(server: _Server, sinks: _Sinks, key: str, other: str) -> BaseException:
    first, second = _id(), _id()
    req = c.request("gpt-4o-mini", "hi", api_key=key, base_url=server.url(first, "echo401"))
    alt = {"model": "backup", "api_key": f"sk-{other}", "base_url": server.url(second, "ok")}
    wrapped = _stack(req, alt, sinks.folder / "cassette.jsonl")
    with pytest.raises(c.AuthenticationError) as caught:
        c.call(wrapped)
    (failed,) = c.batch(c.call, [wrapped], checkpoint=sinks.folder / "ck.jsonl", progress=False)
    assert failed["error"]["type"] == "AuthenticationError"
    # a 401 is neither retried (the key would be sent again) nor sent to the fallback provider
    assert server.hits[first] == 2 and server.hits[second] == 0
    return caught.value


@pytest.mark.parametrize("shape", list(SENDABLE))
def test_a_401_is_not_retried_nor_fallen_back_and_logs_stay_clean(shape, server, sinks):
    canary, other = _canary(), _canary()
    key = SENDABLE[shape](canary)
    _echo_401(server, sinks, key, other)
    sinks.texts.clear()
    for path in sinks.folder.rglob("*"):  # the error's own sinks: the next test
        path.unlink()
    sinks.assert_clean(key, canary)


@pytest.mark.parametrize("shape", list(SENDABLE))
def test_a_server_echoing_the_key_does_not_put_it_in_the_error(shape, server, sinks):
    canary, other = _canary(), _canary()
    key = SENDABLE[shape](canary)
    sinks.error("echo", _echo_401(server, sinks, key, other))
    sinks.assert_clean(key, canary)


CREDENTIAL_HEADERS = {
    "Authorization": "Bearer tok-{}",
    "Proxy-Authorization": "Basic {}",
    "x-api-key": "{}",
    "api-key": "az-{}",
    "Cookie": "session={}",
    "X-Custom-Token": "t-{}",
    "X-Client-Secret": "cs-{}",
}


def _with_headers(canary: str, url: str) -> tuple[Request, dict[str, str]]:
    headers = {
        name: value.format(canary + str(i))
        for i, (name, value) in enumerate(CREDENTIAL_HEADERS.items())
    }
    req = c.request("gpt-4o-mini", "hi", headers={**headers, "X-Trace": "t1"}, base_url=url)
    return req, headers


def test_credential_headers_are_masked_in_every_display(sinks):
    canary = _canary()
    req, headers = _with_headers(canary, "http://127.0.0.1:9/v1")
    assert all(isinstance(req["headers"][h], c.Secret) for h in headers)
    assert req["headers"]["X-Trace"] == "t1"  # not a credential: kept readable
    wrapped = pipe(
        req, c.with_fallback([{"model": "b", "headers": {"Authorization": f"Bearer {canary}b"}}])
    )
    for label, value in {"request": req, "wrapped": wrapped, "thawed": c.thaw(req)}.items():
        sinks.display(label, value)
    sinks.display("middleware", middlewares(wrapped)[0])
    sinks.assert_clean(canary, *headers.values())


def test_credential_headers_are_sent_and_leak_nowhere(server, sinks):
    canary = _canary()
    first = _id()
    req, headers = _with_headers(canary, server.url(first, "503,ok"))
    ctx = c.call(pipe(req, c.with_logging, c.with_retry(initial_delay=0.001)))
    assert c.content(ctx) == "fine" and server.hits[first] == 2
    got = server.received[first][-1]
    assert all(got[name.lower()] == value for name, value in headers.items())
    sinks.display("context", ctx)
    sinks.assert_clean(canary, *headers.values())


def test_url_userinfo_is_masked_in_every_display(sinks):
    user, password = _canary(), _canary()
    req = c.request("gpt-4o-mini", "hi", base_url=f"https://{user}:{password}@proxy.example/v1")
    assert req["base_url"] == "https://proxy.example/v1"
    assert (
        reveal(req["headers"]["Authorization"])
        == "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    )
    sinks.display("request", req)
    hand_built = c.freeze({"base_url": f"https://{user}:{password}@h/v1"})  # past the door
    sinks.display("hand-built", hand_built, reprs=False)
    sinks.assert_clean(user, password, f"{user}:{password}")


def test_url_userinfo_is_sent_as_basic_auth_and_leaks_nowhere(server, sinks):
    user, password = _canary(), _canary()
    first = _id()
    url = server.url(first, "ok", userinfo=f"{user}:{password}@")
    ctx = c.call(pipe(c.request("gpt-4o-mini", "hi", base_url=url, api_key="sk-x"), c.with_logging))
    assert c.content(ctx) == "fine"
    sent = server.received[first][0]["authorization"]
    assert base64.b64decode(sent.removeprefix("Basic ")).decode() == f"{user}:{password}"
    sinks.display("context", ctx)
    sinks.assert_clean(user, password, f"{user}:{password}")


@pytest.mark.parametrize("given", ["at the door", "set after it"])
def test_a_key_in_the_base_urls_query_is_sent_and_leaks_nowhere(given, server, sinks):
    """A proxy's ``?key=...`` goes to the server at the end of the URL (after the path, with
    the proxy's other parameters) and nowhere else: not the request's repr, ``c.wire``, httpx's
    INFO line for the request, the logging middleware or the context shown afterwards."""
    key, first = _canary(), _id()
    no_log_filter()
    url = f"{server.url(first, 'ok')}?key={key}&team=blue"
    if given == "at the door":
        req = c.request("gpt-4o-mini", "hi", base_url=url, api_key="sk-x")
    else:
        req = c.request("gpt-4o-mini", "hi", api_key="sk-x").set("base_url", url)
    sinks.display("request", as_request(req))
    sinks.assert_clean(key)  # the request as the door keeps it
    sent = c.wire(req)
    assert sent["url"].endswith(f"/{first}/ok/v1/chat/completions?key=***&team=blue")
    sinks.texts["wire"] = repr(sent)
    ctx = c.call(pipe(req, c.with_logging))
    assert c.content(ctx) == "fine"
    path = server.received[first][0][":path"]
    assert path == f"/{first}/ok/v1/chat/completions?key={key}&team=blue"  # sent whole
    assert any(r.name == "httpx" and "key=***" in r.getMessage() for r in sinks.handler.records)
    sinks.display("context", ctx)
    sinks.assert_clean(key)


def test_a_logged_error_quoting_a_keyed_url_is_masked_with_its_traceback(sinks):
    """The MCP SDK logs a failed GET with ``exc_info``, and httpx2's error text quotes the
    URL: the traceback is masked too, and the punctuation around a URL is kept."""
    key = _canary()
    no_log_filter()
    url = f"http://127.0.0.1:9/mcp?api_key={key}"

    _http_target(server_spec(url))  # what connecting does first: the filter goes on
    log = logging.getLogger("httpx2")
    try:
        raise RuntimeError(f"Client error '405 Method Not Allowed' for url '{url}'")
    except RuntimeError:
        log.debug("GET stream error", exc_info=True)
    log.info("see (%s), then <%s>, retrying", url, url)
    shown = [logging.Formatter("%(message)s").format(r) for r in sinks.handler.records]
    assert any("for url 'http://127.0.0.1:9/mcp?api_key=***'" in s for s in shown), shown
    masked = "http://127.0.0.1:9/mcp?api_key=***"
    assert f"see ({masked}), then <{masked}>, retrying" in shown
    sinks.assert_clean(key)


URL_SECRETS = {  # how a credential can sit in a base URL, each with its canary
    "query key": lambda s: ("", f"?key={s}"),
    "query key with a space": lambda s: ("", f"?api_key={s}%20tail"),
    "query key httpx encodes": lambda s: ("", f"?key={s} <tail>"),
    "authorization parameter": lambda s: ("", f"?authorization={s}&team=blue"),
    "passphrase parameter": lambda s: ("", f"?passphrase={s}"),
    "password with a slash": lambda s: (f"bob:{s}/x@", ""),
    "password with an at sign": lambda s: (f"bob:{s}@x@", ""),
}


@pytest.mark.parametrize("shape", list(URL_SECRETS))
@pytest.mark.parametrize("given", ["base_url", "OPENAI_BASE_URL"])
def test_a_credential_in_the_url_leaks_nowhere_when_the_server_quotes_it(
    shape, given, server, sinks, monkeypatch
):
    """A base URL's credential (given to the request, or in the provider's variable) reaches
    the server, which quotes it back in a 401 and in an answer: the error, the logs, the
    displays, the batch checkpoint and the call log hold it masked."""
    canary, first, second = _canary(), _id(), _id()
    userinfo, query = URL_SECRETS[shape](canary)

    def url(test_id: str, plan: str) -> str:
        return server.url(test_id, plan, userinfo) + query

    def request(test_id: str, plan: str) -> Request:
        if given == "base_url":
            return c.request("gpt-4o-mini", "hi", base_url=url(test_id, plan), api_key="sk-x")
        monkeypatch.setenv("OPENAI_BASE_URL", url(test_id, plan))
        return c.request("gpt-4o-mini", "hi", api_key="sk-x")

    req = request(first, "echo401")
    sinks.display("request", req)
    sinks.texts["wire"] = repr(c.wire(req))
    with pytest.raises(c.AuthenticationError) as caught:
        c.call(pipe(req, c.with_logging))
    sent = server.received[first][0]
    assert canary in unquote(sent[":path"]) + _plain("authorization", sent["authorization"])
    sinks.error("echo401", caught.value)
    answered = request(second, "echoanswer")
    out = c.batch(c.call, [answered], checkpoint=sinks.folder / "ck.jsonl", progress=False)
    assert "you sent" in c.content(out[0])  # the answer, quoting it, is the user's to see
    answer = [c.user("hi"), c.assistant(c.content(out[0]))]
    logged(
        sinks.folder,
        {"model": "openai:gpt-4o-mini", "prompt": "hi", "messages": answer, "ctx": out[0]},
    )
    pairs = [f"bob:{canary}/x", f"bob:{canary}@x"]  # as the Basic header carries them
    sinks.assert_clean(canary, *(base64.b64encode(p.encode()).decode() for p in pairs))


def test_a_url_httpx_cannot_parse_is_a_clear_error_that_quotes_nothing(sinks):
    canary = _canary()
    req = c.request("gpt-4o-mini", "hi", base_url=f"http://127.0.0.1:{canary}/v1", api_key="k-1")
    with pytest.raises(c.ValidationError, match=r"is not a URL httpx can send \(Invalid port\)"):
        c.call(req)
    with pytest.raises(c.ValidationError) as caught:
        list(c.openai_stream(req))
    sinks.error("invalid", caught.value)
    assert "percent-encode" in str(caught.value)


@pytest.mark.parametrize("shape", ["trailing newline", "non-ASCII", "newline inside"])
def test_a_malformed_key_from_the_environment_is_refused_unsent(shape, server, sinks, monkeypatch):
    canary = _canary()
    first = _id()
    key = MALFORMED[shape](canary)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    req = c.request("gpt-4o-mini", "hi", base_url=server.url(first, "ok"))
    with pytest.raises(c.ConduitError) as caught:
        c.call(pipe(req, c.with_logging, c.with_retry(initial_delay=0.001)))
    sinks.error("env", caught.value)
    assert server.hits[first] == 0 and not c.is_retryable(caught.value)
    sinks.assert_clean(key, key.strip(), canary)


FALLS_BACK = {
    "503": (c.ServerError("busy", status_code=503), True),
    "529": (c.ServerError("overloaded", status_code=529), True),
    "429": (c.RateLimitError("slow down", status_code=429), True),
    "timeout": (c.TimeoutError("slow"), True),
    "connection": (c.ConnectionError("reset"), True),
    "404 model": (c.NotFoundError("no such model", status_code=404), True),
    "context length": (c.ContextLengthError("too long", status_code=400), True),
    "400": (c.BadRequestError("bad", status_code=400), False),
    "422": (c.BadRequestError("bad", status_code=422), False),
    "401": (c.AuthenticationError("bad key", status_code=401), False),
    "403": (c.PermissionDeniedError("denied", status_code=403), False),
    "deadline": (c.TimeoutError("spent", data={"deadline_exceeded": True}), False),
    "validation": (c.ValidationError("malformed"), False),
    "budget": (c.BudgetExceededError("spent"), False),
    "your own": (RuntimeError("bug"), False),
}


@pytest.mark.parametrize("case", list(FALLS_BACK))
def test_fallback_only_on_errors_another_model_could_fix(case):
    """A 401 or 400 is not sent on to the next provider: it would fail the same, or leak."""
    err, falls_back = FALLS_BACK[case]
    tried: list[str] = []

    def script(r: Request) -> Any:
        tried.append(r["model"])
        return err if r["model"] == "first" else "second answered"

    req = c.request("mock:first", "hi", mock=script)
    run = pipe(req, c.with_fallback([{"model": "mock:second", "api_key": "sk-second"}]))
    if falls_back:
        assert c.content(c.call(run)) == "second answered" and tried == ["first", "second"]
    else:
        with pytest.raises(type(err)):
            c.call(run)
        assert tried == ["first"]
