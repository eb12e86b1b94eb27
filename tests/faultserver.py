"""A real HTTP/1.1 server on loopback that misbehaves on cue, for fault tests.

The URL says what to do: ``/<id>/<plan>/v1/chat/completions`` where *plan* is a comma list of
actions, one per request received for that *id* (the last repeats):

- ``ok``; any status of :data:`STATUSES` (``429~SECONDS`` sets Retry-After);
- ``echo``: a 401 whose message repeats the credential the client sent, as OpenAI's does;
- ``reset`` (close without answering), ``slow~SECONDS`` (then ok);
- ``trunc``: half the answer (a stream, or a body shorter than its content-length), then close;
- ``trickle~SECONDS``: the answer one byte every SECONDS, headers included;
- ``keepalive~SECONDS``: a stream's headers, then a ``: keep-alive`` comment every SECONDS
  forever (a plain call gets JSON's leading whitespace instead, a byte every SECONDS);
- ``badjson``; ``body~NAME``: a 200 whose JSON (or, streamed, whose events) is ``MALFORMED[NAME]``.

``headers[id]`` keeps the headers of the last request for each id.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from typing import Any

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
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
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
                _, test_id, plan, *_ = line.split(" ")[1].split("/")
                self.hits[test_id] += 1
                self.headers[test_id] = headers
                actions = plan.split(",")
                action = actions[min(self.hits[test_id], len(actions)) - 1]
                stream = b'"stream":true' in body
                if not await self._act(action, stream, headers, writer):
                    return
        except (asyncio.IncompleteReadError, OSError, asyncio.CancelledError):
            pass
        finally:
            self.open_connections -= 1
            self.writers.discard(writer)
            writer.close()

    async def _act(
        self, action: str, stream: bool, headers: dict[str, str], writer: asyncio.StreamWriter
    ) -> bool:
        name, _, arg = action.partition("~")
        ok = _response(200, STREAM, "text/event-stream") if stream else _response(200, CHAT)
        if name == "ok":
            writer.write(ok)
        elif name == "429":
            writer.write(_error(429, "slow down", extra=f"retry-after: {arg or '0'}\r\n"))
        elif name.isdigit():
            writer.write(_error(int(name), f"fault {name}"))
        elif name == "echo":
            writer.write(_error(401, f"Incorrect API key provided: {_credential(headers)}."))
        elif name == "reset":
            writer.transport.abort()
            return False
        elif name == "slow":
            await asyncio.sleep(float(arg))
            writer.write(ok)
        elif name == "trunc":
            writer.write(ok[: len(ok) - len(STREAM if stream else CHAT) // 2])
            await writer.drain()
            writer.transport.abort()
            return False
        elif name == "trickle":
            for i in range(len(ok)):
                writer.write(ok[i : i + 1])
                await writer.drain()
                await asyncio.sleep(float(arg))
        elif name == "keepalive":
            await self._keep_alive(stream, float(arg), writer)
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

    async def _keep_alive(self, stream: bool, every: float, writer: asyncio.StreamWriter) -> None:
        kind, beat = (
            ("text/event-stream", b": keep-alive\n\n") if stream else ("application/json", b" ")
        )
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
