"""A real HTTP/1.1 server on loopback that misbehaves on cue, for fault tests.

The URL says what to do: ``/<id>/<plan>/v1/chat/completions`` where *plan* is a comma list of
actions, one per request received for that *id* (the last repeats): ``ok``, ``429~SECONDS``
(Retry-After), ``500``/``502``/``503``/``529``, ``reset`` (close without answering),
``slow~SECONDS`` (then ok), ``trunc`` (half a stream, then close), ``badjson``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter

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


def _response(status: int, body: bytes, kind: str = "application/json", extra: str = "") -> bytes:
    reason = {
        200: "OK",
        429: "Too Many Requests",
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        529: "Overloaded",
    }[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {kind}\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


class FaultServer:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.open_connections = 0
        self.writers: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(5)

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
                line = head.split(b"\r\n")[0].decode()
                length = 0
                for h in head.split(b"\r\n"):
                    if h.lower().startswith(b"content-length:"):
                        length = int(h.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                _, test_id, plan, *_ = line.split(" ")[1].split("/")
                self.hits[test_id] += 1
                actions = plan.split(",")
                action = actions[min(self.hits[test_id], len(actions)) - 1]
                stream = b'"stream":true' in body
                if not await self._act(action, stream, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.open_connections -= 1
            self.writers.discard(writer)
            writer.close()

    async def _act(self, action: str, stream: bool, writer: asyncio.StreamWriter) -> bool:
        name, _, arg = action.partition("~")
        ok = _response(200, STREAM, "text/event-stream") if stream else _response(200, CHAT)
        if name == "ok":
            writer.write(ok)
        elif name == "429":
            err = b'{"error": {"message": "slow down", "type": "rate_limit_error"}}'
            writer.write(_response(429, err, extra=f"retry-after: {arg or '0'}\r\n"))
        elif name in ("500", "502", "503", "529"):
            writer.write(_response(int(name), b'{"error": {"message": "server trouble"}}'))
        elif name == "reset":
            writer.transport.abort()
            return False
        elif name == "slow":
            await asyncio.sleep(float(arg))
            writer.write(ok)
        elif name == "trunc":
            writer.write(_response(200, STREAM, "text/event-stream")[: len(STREAM) // 2])
            await writer.drain()
            writer.transport.abort()
            return False
        elif name == "badjson":
            writer.write(_response(200, b"{not json at all"))
        await writer.drain()
        return True

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
