"""The pooled clients keep no cookies: one caller's answer never sets what another's request
sends.

Conduit's HTTP clients are shared by every request of the process, whatever key it carries,
so a cookie one provider answer sets (Cloudflare's ``__cf_bm`` on api.openai.com, say) must not
come back on the next request, another tenant's included. A real loopback server sets a cookie
on every answer and records the ``Cookie`` header of every request.
"""

from __future__ import annotations

import asyncio
import json
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import pytest

import conduit as c
from conduit.providers import _http
from tests.serving import serving

ANSWER = {
    "id": "chatcmpl-1",
    "model": "m",
    "choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
STREAM = (
    'data: {"id":"c","model":"m","choices":[{"delta":{"content":"ok"}}]}\n\n'
    'data: {"id":"c","model":"m","choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
    "data: [DONE]\n\n"
)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append(self.headers.get("Cookie"))  # type: ignore[attr-defined]
        stream = body.get("stream")
        out = (STREAM if stream else json.dumps(ANSWER)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream" if stream else "application/json")
        self.send_header("Content-Length", str(len(out)))
        n = len(self.server.seen)  # type: ignore[attr-defined]
        self.send_header("Set-Cookie", f"__cf_bm=tenant{n}; Path=/; HttpOnly")
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.seen = []  # type: ignore[attr-defined]
    yield from serving(srv)


def _req(srv: HTTPServer, key: str) -> c.Request:
    return c.request("m", "hi", base_url=f"http://127.0.0.1:{srv.server_port}/v1", api_key=key)


def test_a_cookie_one_answer_sets_is_never_sent_again(server):
    for key in ("sk-tenant-a", "sk-tenant-a", "sk-tenant-b"):
        assert c.content(c.openai_call(_req(server, key))) == "ok"
    assert c.collect(c.openai_stream(_req(server, "sk-tenant-b")))["content"] == "ok"
    assert server.seen == [None, None, None, None]  # four answers set cookies; none came back
    assert len(_http.client().cookies) == 0


def test_the_async_client_keeps_none_either(server):
    async def turns() -> list[str]:
        out = []
        for key in ("sk-tenant-a", "sk-tenant-b"):
            out.append(c.content(await c.openai_acall(_req(server, key))))
        events = [e async for e in c.openai_astream(_req(server, "sk-tenant-a"))]
        out.append(c.collect(events)["content"])
        assert len((await _http.aclient()).cookies) == 0
        return out

    assert asyncio.run(turns()) == ["ok", "ok", "ok"]
    assert server.seen == [None, None, None]


def test_a_cookie_the_caller_gives_is_sent_with_that_request_only(server):
    given = _req(server, "sk-tenant-a").set("headers", {"Cookie": "session=mine"})
    assert c.content(c.openai_call(given)) == "ok"
    assert c.content(c.openai_call(_req(server, "sk-tenant-b"))) == "ok"
    assert server.seen == ["session=mine", None]
    assert "session=mine" not in repr(c.reply(c.openai_call(given), "next"))  # masked
