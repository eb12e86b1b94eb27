"""The examples' live path: with a key set they call the provider over real HTTP.

A loopback server stands in for OpenAI (OPENAI_BASE_URL), answering with recorded OpenAI
payloads (tests/fixtures/providers/openai); each example runs as a script with OPENAI_API_KEY
set and must finish, having sent its requests, with the key, to the server. Examples whose live
path needs a particular answer (a JSON label, a schema, one vector per chunk) are covered
offline only.
"""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.providers.helpers import raw

ROOT = Path(__file__).resolve().parents[1]
LIVE = ["quickstart", "streaming", "memory", "replay", "approval", "agent", "rag"]


class Recorded(BaseHTTPRequestHandler):
    seen: ClassVar[list] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.seen.append(
            {"path": self.path, "auth": self.headers.get("authorization"), "body": body}
        )
        if body.get("stream"):
            payload, kind = raw("openai/stream_text.sse"), "text/event-stream"
        else:
            payload, kind = raw("openai/chat_text.json"), "application/json"
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def openai_stand_in():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", LIVE)
def test_example_runs_against_the_provider_when_a_key_is_set(name, openai_stand_in):
    Recorded.seen.clear()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "OPENAI_API_KEY": "sk-live-test",
        "OPENAI_BASE_URL": openai_stand_in,
    }
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{name}.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert Recorded.seen, f"{name} never called the provider"
    assert all(r["auth"] == "Bearer sk-live-test" for r in Recorded.seen)
    assert all(r["path"] == "/v1/chat/completions" for r in Recorded.seen)
    assert all(r["body"]["model"] == "gpt-4o-mini" for r in Recorded.seen)
    assert "sk-live-test" not in out.stdout + out.stderr
    assert "mock" not in json.dumps([r["body"] for r in Recorded.seen])
