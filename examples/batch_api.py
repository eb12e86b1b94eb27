"""Half-price bulk work: c.batch runs requests as an Anthropic Message Batch, offline.

A tiny stand-in of the Message Batches API runs in this process on 127.0.0.1 (the real one is
https://api.anthropic.com/v1): it takes the batch, says ``in_progress`` on the first poll and
``ended`` on the next, then serves the results as JSON Lines in shuffled order, one of them an
error. The run is checkpointed: run the same call again and nothing is submitted twice.
"""

import json
import random
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import conduit as c

BATCHES: dict[str, dict] = {}


class StandIn(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, kind="application/json"):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self):  # POST /v1/messages/batches
        sent = json.loads(self.rfile.read(int(self.headers["content-length"])))
        batch_id = f"msgbatch_{len(BATCHES) + 1:04d}"
        BATCHES[batch_id] = {"requests": sent["requests"], "polls": 0}
        self.answer(
            200,
            {
                "id": batch_id,
                "type": "message_batch",
                "processing_status": "in_progress",
                "request_counts": {"processing": len(sent["requests"])},
            },
        )

    def do_GET(self):  # GET /v1/messages/batches/{id} and its results_url
        batch_id = self.path.split("/")[4]
        state = BATCHES[batch_id]
        if self.path.endswith("/results"):
            rows = [result(r) for r in state["requests"]]
            random.shuffle(rows)
            return self.answer(200, "".join(json.dumps(r) + "\n" for r in rows).encode(), "x-jsonl")
        state["polls"] += 1
        ended = state["polls"] > 1
        url = f"http://127.0.0.1:{self.server.server_port}{self.path}/results"
        self.answer(
            200,
            {
                "id": batch_id,
                "type": "message_batch",
                "processing_status": "ended" if ended else "in_progress",
                "request_counts": {"succeeded": len(state["requests"]) if ended else 0},
                "results_url": url if ended else None,
            },
        )


def result(request):
    question = request["params"]["messages"][-1]["content"]
    if "?" not in question:
        error = {"type": "invalid_request_error", "message": "not a question"}
        return {
            "custom_id": request["custom_id"],
            "result": {"type": "errored", "error": {"type": "error", "error": error}},
        }
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": f"{question.upper()} (answered)"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 20, "output_tokens": 8},
    }
    return {"custom_id": request["custom_id"], "result": {"type": "succeeded", "message": message}}


server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
threading.Thread(target=server.serve_forever, daemon=True).start()
base_url = f"http://127.0.0.1:{server.server_port}/v1"

questions = ["what is a batch?", "why half price?", "no question here", "how long does it take?"]
requests = [
    c.request("claude-haiku-4-5", q, base_url=base_url, api_key="sk-ant-example") for q in questions
]
handler = c.provider_batch(
    "anthropic", poll=0.05, on_status=lambda s: print("  poll:", s["status"])
)
checkpoint = Path(tempfile.mkdtemp()) / "run.jsonl"

results = c.batch(handler, requests, checkpoint=checkpoint, progress=False)
for ctx in results:
    if "error" in ctx:
        print(f"{ctx['messages'][-1]['content']!r} -> {ctx['error']['type']}")
    else:
        print(f"{ctx['messages'][-1]['content']!r} -> {c.content(ctx)} (${ctx['cost']:.6f})")

again = c.batch(handler, requests, checkpoint=checkpoint, progress=False)
print(f"rerun: {len(BATCHES)} batches submitted in all (only the failed item went again)")
server.shutdown()
