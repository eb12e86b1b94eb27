"""A real HTTP/1.1 server on loopback that misbehaves on cue, for fault tests.

The URL says what to do: ``/<id>/<plan>/v1/chat/completions`` where *plan* is a comma list of
actions, one per request received for that *id* (the last repeats):

- ``ok``; any status of :data:`STATUSES` (``429~SECONDS`` sets Retry-After);
- ``echo``: a 401 whose message repeats the credential the client sent, as OpenAI's does;
- ``reset`` (close without answering), ``slow~SECONDS`` (then ok);
- ``trunc``: half the answer (a stream, or a body shorter than its content-length), then close;
- ``trickle~SECONDS[~BYTES]``: the answer BYTES (default 1) at a time every SECONDS, headers
  included;
- ``drip~SECONDS``: the headers and the first half of the body at once (a stream: its events
  up to the last, or Bedrock's frames up to ``messageStop``), then the rest one byte every
  SECONDS;
- ``keepalive~SECONDS``: a stream's headers, then a keep-alive every SECONDS forever (a
  ``: keep-alive`` comment, Anthropic's ``ping`` event, for Bedrock a frame of an event type
  Conduit skips; a plain call gets JSON's leading whitespace instead, a byte every SECONDS);
- ``ends~mid``, ``ends~early``, ``ends~nometa``: a whole HTTP answer (its content-length
  true) whose stream stops half-way through an event (a frame), at an event boundary before
  the stream's end (no finish reason, no ``response.completed``, no ``messageStop``), or (a
  Bedrock stream) after ``messageStop`` but before its closing ``metadata``;
- ``named~NAME``: the provider's own error answer NAME (:attr:`Dialect.named`);
- ``fail~NAME``: a 200 stream whose only item is the provider's in-stream error NAME
  (:attr:`Dialect.fails`); ``fail~NAME~late``: the stream's first events, then that error;
- ``badjson``; ``body~NAME``: a 200 whose JSON (or, streamed, whose events) is ``MALFORMED[NAME]``.

The path says whose wire to speak (:func:`dialect_of`): OpenAI's chat completions (Azure's
too), the Responses API (``/responses``), Anthropic's Messages (``/messages``), Gemini
(``:generateContent``, ``:streamGenerateContent``) or Bedrock (``/converse``,
``/converse-stream``), each with its recorded answers (``tests/fixtures/providers``) and its
own error bodies and stream framing. ``headers[id]`` keeps the headers of the last request
for each id.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conduit.providers._eventstream import encode_message, split

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "providers"

CHAT = json.dumps(
    {
        "id": "chatcmpl-f",
        "object": "chat.completion",
        "model": "fault-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "recovered"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
).encode()


def _chunk(text: str, finish: str | None = None) -> bytes:
    body = {
        "id": "c",
        "model": "fault-model",
        "choices": [
            {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
        ],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


STREAM = b"".join(_chunk(f"w{i} ") for i in range(20)) + _chunk("", "stop") + b"data: [DONE]\n\n"

STATUSES = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    424: "Failed Dependency",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}

#: Well-formed JSON of the wrong shape, served whole (a call) or as every event (a stream).
MALFORMED: dict[str, Any] = {
    "null_choice": {"choices": [None]},
    "str_choices": {"choices": "x"},
    "list_top": [1, 2],
    "str_message": {"choices": [{"message": "hi", "finish_reason": "stop"}]},
    "int_content": {"choices": [{"message": {"content": 5}, "finish_reason": "stop"}]},
    "bad_call": {"choices": [{"message": {"tool_calls": [{"function": 3}]}}]},
    "no_index": {"choices": [{"delta": {"tool_calls": [{"index": None, "function": []}]}}]},
}


def _response(status: int, body: bytes, kind: str = "application/json", extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status} {STATUSES[status]}\r\ncontent-type: {kind}\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def _error(status: int, message: str, extra: str = "") -> bytes:
    body = json.dumps({"error": {"message": message, "type": "fault", "code": None}})
    return _response(status, body.encode(), extra=extra)


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass(frozen=True)
class Dialect:
    """One provider's wire, as the fault server speaks it."""

    name: str
    call: bytes  # a 200's JSON body
    stream: bytes  # a whole stream
    #: the stream cut at an item boundary before its end, and the item that follows the cut
    early: bytes
    tail: bytes
    #: ``error(status, message, retry_after)``: a whole HTTP error answer in this wire's shape
    error: Callable[[int, str, str | None], bytes]
    #: the provider's own error answers by name, and its in-stream errors (one stream item)
    named: dict[str, bytes] = field(default_factory=dict)
    fails: dict[str, bytes] = field(default_factory=dict)
    stream_type: str = "text/event-stream"
    beat: bytes = b": keep-alive\n\n"  # what keeps a stream alive without an event
    nometa: bytes = b""  # Bedrock: the stream up to messageStop, without its metadata


def _openai_error(status: int, message: str, retry: str | None = None) -> bytes:
    return _error(status, message, extra="" if retry is None else f"retry-after: {retry}\r\n")


def _sse_events(stream: bytes) -> list[bytes]:
    """The events of a recorded stream, each with its blank line (LF or CRLF, as recorded)."""
    return re.findall(rb".+?(?:\r\n\r\n|\n\n)", stream, re.S)


def _before(items: list[bytes], marker: bytes) -> tuple[bytes, bytes]:
    """The items before the first one holding *marker*, and that one."""
    at = next(i for i, item in enumerate(items) if marker in item)
    return b"".join(items[:at]), items[at]


# --- Gemini: {"error": {"code", "message", "status", "details"}}; RetryInfo, no Retry-After --

GRPC = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _google_body(status: int, message: str, retry: str | None = None) -> bytes:
    err: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": GRPC.get(status, "UNKNOWN"),
    }
    if retry is not None:
        err["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry}s"}
        ]
    return json.dumps({"error": err}).encode()


def _gemini_error(status: int, message: str, retry: str | None = None) -> bytes:
    return _response(status, _google_body(status, message, retry))


#: Google's documented answers (ai.google.dev/gemini-api/docs/troubleshooting), as name -> status
GEMINI_NAMED = {
    "RESOURCE_EXHAUSTED": (429, "Resource has been exhausted (e.g. check quota).", "0.01"),
    "UNAVAILABLE": (503, "The model is overloaded. Please try again later.", None),
    "INTERNAL": (500, "An internal error has occurred.", None),
    "DEADLINE_EXCEEDED": (504, "Deadline expired before operation could complete.", None),
    "INVALID_ARGUMENT": (
        400,
        "You can only set only one of thinking budget and thinking level.",
        None,
    ),
    "FAILED_PRECONDITION": (400, "User location is not supported for the API use.", None),
    "PERMISSION_DENIED": (403, "Method doesn't allow unregistered callers.", None),
    "NOT_FOUND": (404, "models/fault-model is not found for API version v1beta.", None),
}


def _gemini() -> Dialect:
    stream = _fixture("gemini/stream_generate_content.sse")
    early, tail = _before(_sse_events(stream), b"finishReason")
    named = {k: _gemini_error(*v) for k, v in GEMINI_NAMED.items()}
    fails = {k: b"data: " + _google_body(*v) + b"\n\n" for k, v in GEMINI_NAMED.items()}
    return Dialect(
        "gemini",
        _fixture("gemini/generate_content_text.json"),
        stream,
        early,
        tail,
        _gemini_error,
        named,
        fails,
    )


# --- Bedrock: {"message"} with x-amzn-ErrorType; binary event-stream frames ------------------

#: Converse's exceptions and their HTTP statuses (botocore's bedrock-runtime service model).
BEDROCK_EXCEPTIONS = {
    "ValidationException": 400,
    "ServiceQuotaExceededException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}
_BEDROCK_BY_STATUS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
#: ConverseStream's in-stream exceptions (the union's members), sent as exception frames.
BEDROCK_STREAM_EXCEPTIONS = (
    "throttlingException",
    "serviceUnavailableException",
    "internalServerException",
    "validationException",
    "modelStreamErrorException",
)


def _aws_error(status: int, message: str, name: str | None) -> bytes:
    """A Bedrock error answer; a status Bedrock never sends (a proxy's) names no type."""
    extra = "x-amzn-RequestId: 7f1f0c1e-0000-4000-8000-000000000000\r\n"
    if name is not None:
        extra += (
            f"x-amzn-ErrorType: {name}:http://internal.amazon.com/coral/com.amazon.bedrock/\r\n"
        )
    return _response(status, json.dumps({"message": message}).encode(), extra=extra)


def _bedrock_error(status: int, message: str, retry: str | None = None) -> bytes:
    return _aws_error(status, message, _BEDROCK_BY_STATUS.get(status))


def _exception_frame(name: str) -> bytes:
    payload: dict[str, Any] = {"message": f"{name} in the stream"}
    if name == "modelStreamErrorException":
        payload |= {"originalStatusCode": 500, "originalMessage": "the model failed"}
    headers = {":message-type": "exception", ":exception-type": name}
    return encode_message(
        {**headers, ":content-type": "application/json"}, json.dumps(payload).encode()
    )


def _bedrock() -> Dialect:
    stream = base64.b64decode(_fixture("bedrock/converse_stream_text.eventstream.b64"))
    frames, _ = split(stream)
    raw = [encode_message(m.headers, m.payload) for m in frames]
    assert b"".join(raw) == stream  # the recording's frames, re-encoded byte for byte
    kinds = [m.headers[":event-type"] for m in frames]
    stop = kinds.index("messageStop")
    return Dialect(
        "bedrock",
        _fixture("bedrock/converse_text.json"),
        stream,
        b"".join(raw[:stop]),
        raw[stop],
        _bedrock_error,
        {k: _aws_error(v, f"{k}: fault", k) for k, v in BEDROCK_EXCEPTIONS.items()},
        {k: _exception_frame(k) for k in BEDROCK_STREAM_EXCEPTIONS},
        stream_type="application/vnd.amazon.eventstream",
        # Bedrock sends no keep-alives: a frame of an event type Conduit skips stands in for one
        beat=encode_message({":message-type": "event", ":event-type": "keepAlive"}, b"{}"),
        nometa=b"".join(raw[: stop + 1]),
    )


# --- the Responses API: chat completions' error bodies; typed events, errors in the stream --


def _responses_failed(code: str, message: str) -> bytes:
    resp = {"id": "resp_f", "object": "response", "status": "failed", "model": "fault-model"}
    data = {
        "type": "response.failed",
        "response": {**resp, "error": {"code": code, "message": message}},
    }
    return b"event: response.failed\ndata: " + json.dumps(data).encode() + b"\n\n"


def _responses_error_event(error: dict[str, Any]) -> bytes:
    return b"event: error\ndata: " + json.dumps({"type": "error", **error}).encode() + b"\n\n"


def _responses() -> Dialect:
    stream = _fixture("openai_responses/stream_output_text.sse")
    early, tail = _before(_sse_events(stream), b"response.completed")
    recorded = _fixture("openai_responses/stream_error_insufficient_quota.chunks.txt").decode()
    quota = json.loads(recorded.splitlines()[2])  # the recorded error event
    assert quota["type"] == "error"
    fails = {
        "rate_limit_exceeded": _responses_failed("rate_limit_exceeded", "Rate limit reached"),
        "server_error": _responses_failed("server_error", "The server had an error"),
        "insufficient_quota": _responses_error_event({"error": quota["error"]}),
        "invalid_prompt": _responses_error_event(
            {"code": "invalid_prompt", "message": "Invalid prompt", "param": None}
        ),
    }
    return Dialect(
        "responses",
        _fixture("openai_responses/response_output_text.json"),
        stream,
        early,
        tail,
        _openai_error,
        fails=fails,
    )


# --- Anthropic: {"type": "error", "error": {"type", "message"}}; error events in the stream ----

ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _anthropic_body(kind: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def _anthropic_error(status: int, message: str, retry: str | None = None) -> bytes:
    kind = ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    extra = "request-id: req_fault\r\n" + ("" if retry is None else f"retry-after: {retry}\r\n")
    return _response(status, _anthropic_body(kind, message), extra=extra)


def _anthropic() -> Dialect:
    stream = _fixture("anthropic/stream_text.sse")
    early, tail = _before(_sse_events(stream), b"message_stop")
    by_type = {kind: status for status, kind in ANTHROPIC_TYPES.items()}
    recorded = _fixture("anthropic/stream_error_overloaded.sse").strip() + b"\n\n"
    fails = {
        kind: b"event: error\ndata: " + _anthropic_body(kind, f"{kind} in the stream") + b"\n\n"
        for kind in ("rate_limit_error", "api_error", "invalid_request_error")
    }
    return Dialect(
        "anthropic",
        _fixture("anthropic/message_text.json"),
        stream,
        early,
        tail,
        _anthropic_error,
        {kind: _response(status, _anthropic_body(kind, kind)) for kind, status in by_type.items()},
        {"overloaded_error": recorded, **fails},
        beat=b'event: ping\ndata: {"type": "ping"}\n\n',  # Anthropic's own keep-alive
    )


OPENAI = Dialect(
    "openai",
    CHAT,
    STREAM,
    b"".join(_chunk(f"w{i} ") for i in range(20)),
    _chunk("", "stop"),
    _openai_error,
)
DIALECTS = {d.name: d for d in (OPENAI, _anthropic(), _gemini(), _bedrock(), _responses())}


def dialect_of(path: str) -> tuple[Dialect, bool | None]:
    """Return (the wire a request path speaks, whether it asks for a stream: None when the
    body says, as in OpenAI's and the Responses API's ``"stream": true``)."""
    where = path.partition("?")[0]
    for ending, (name, stream) in _ENDINGS.items():
        if where.endswith(ending):
            return DIALECTS[name], stream
    return OPENAI, None


#: How each wire's request path ends: (its dialect, whether it streams; None: the body says).
_ENDINGS: dict[str, tuple[str, bool | None]] = {
    ":generateContent": ("gemini", False),
    ":streamGenerateContent": ("gemini", True),
    "/converse": ("bedrock", False),
    "/converse-stream": ("bedrock", True),
    "/responses": ("responses", None),
    "/messages": ("anthropic", None),
}


def _credential(headers: dict[str, str]) -> str:
    auth = headers.get("authorization", "")
    return auth.removeprefix("Bearer ") or headers.get("x-api-key", "")


class FaultServer:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.headers: dict[str, dict[str, str]] = {}
        self.open_connections = 0
        self.writers: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(60):  # a loaded machine can be slow to start a thread's loop
            raise RuntimeError("the fault server did not start within 60 s")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def url(self, test_id: str, plan: str) -> str:
        return f"http://127.0.0.1:{self.port}/{test_id}/{plan}/v1"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        self.writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for h in lines:
                    name, _, value = h.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                path = line.split(" ")[1]
                _, test_id, plan, *_ = path.split("/")
                self.hits[test_id] += 1
                self.headers[test_id] = headers
                actions = plan.split(",")
                action = actions[min(self.hits[test_id], len(actions)) - 1]
                dialect, stream = dialect_of(path)
                if stream is None:
                    stream = b'"stream":true' in body
                if not await self._act(action, dialect, stream, headers, writer):
                    return
        except (asyncio.IncompleteReadError, OSError, asyncio.CancelledError):
            pass
        finally:
            self.open_connections -= 1
            self.writers.discard(writer)
            writer.close()

    async def _act(
        self,
        action: str,
        wire: Dialect,
        stream: bool,
        headers: dict[str, str],
        writer: asyncio.StreamWriter,
    ) -> bool:
        name, _, arg = action.partition("~")
        body = wire.stream if stream else wire.call
        ok = _response(200, body, wire.stream_type) if stream else _response(200, body)
        if name == "ok":
            writer.write(ok)
        elif name == "429":
            writer.write(wire.error(429, "slow down", arg or "0"))
        elif name.isdigit():
            writer.write(wire.error(int(name), f"fault {name}", None))
        elif name == "echo":
            writer.write(
                wire.error(401, f"Incorrect API key provided: {_credential(headers)}.", None)
            )
        elif name == "named":
            writer.write(wire.named[arg])
        elif name == "fail":
            what, _, when = arg.partition("~")
            before = wire.early if when == "late" else b""
            writer.write(_response(200, before + wire.fails[what], wire.stream_type))
        elif name == "ends":
            cut = {
                "mid": wire.early + wire.tail[: len(wire.tail) // 2],
                "early": wire.early,
                "nometa": wire.nometa,
            }[arg]
            writer.write(_response(200, cut, wire.stream_type))
        elif name == "reset":
            writer.transport.abort()
            return False
        elif name == "slow":
            await asyncio.sleep(float(arg))
            writer.write(ok)
        elif name == "trunc":
            writer.write(ok[: len(ok) - len(body) // 2])
            await writer.drain()
            writer.transport.abort()
            return False
        elif name == "trickle":
            every, _, size = arg.partition("~")
            await self._trickle(ok, 0, float(every), int(size or 1), writer)
        elif name == "drip":
            first = len(wire.early) if stream else len(body) // 2
            await self._trickle(ok, len(ok) - len(body) + first, float(arg), 1, writer)
        elif name == "keepalive":
            await self._keep_alive(stream, wire, float(arg), writer)
        elif name == "badjson":
            writer.write(_response(200, b"{not json at all"))
        elif name == "body":
            bad = json.dumps(MALFORMED[arg]).encode()
            if stream:
                writer.write(_response(200, b"data: " + bad + b"\n\n", "text/event-stream"))
            else:
                writer.write(_response(200, bad))
        await writer.drain()
        return True

    async def _trickle(
        self, answer: bytes, at_once: int, every: float, size: int, writer: asyncio.StreamWriter
    ) -> None:
        """Send *answer*'s first *at_once* bytes, then *size* bytes every *every* seconds."""
        writer.write(answer[:at_once])
        for i in range(at_once, len(answer), size):
            await writer.drain()
            await asyncio.sleep(every)
            writer.write(answer[i : i + size])

    async def _keep_alive(
        self, stream: bool, wire: Dialect, every: float, writer: asyncio.StreamWriter
    ) -> None:
        kind, beat = (wire.stream_type, wire.beat) if stream else ("application/json", b" ")
        writer.write(
            f"HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: 99999999\r\n\r\n".encode()
        )
        while True:
            await writer.drain()
            await asyncio.sleep(every)
            writer.write(beat)

    async def _shutdown(self) -> None:
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.server.wait_closed()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
