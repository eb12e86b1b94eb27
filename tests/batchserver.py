"""Loopback stand-ins for OpenAI's Batch API and Anthropic's Message Batches, on real HTTP.

Built from the documented wire formats (the fixtures under ``tests/fixtures/providers/*/``
named ``batch_*`` are the providers' own examples; see SOURCES there):

- OpenAI: ``POST /v1/files`` (multipart, ``purpose=batch``, a JSONL file of
  ``{custom_id, method, url, body}`` lines), ``POST /v1/batches``, ``GET /v1/batches/{id}``
  (``validating`` -> ``in_progress`` -> ``finalizing`` -> ``completed``, or ``failed`` /
  ``expired`` on cue), ``GET /v1/files/{id}/content`` (output and error files).
- Anthropic: ``POST /v1/messages/batches`` (``{requests: [{custom_id, params}]}``),
  ``GET /v1/messages/batches/{id}`` (``in_progress`` -> ``ended``, with ``request_counts``),
  ``GET`` its ``results_url`` (JSONL of ``succeeded`` / ``errored`` / ``expired`` results).

Answers are ``"answer to <the last user message>"``; a request whose text contains ``fail``
gets a per-item error (a 400 line). Results come in shuffled order. ``hold`` is how many polls
a batch stays in progress; ``outcome`` is ``"completed"``, ``"failed"`` or ``"expired"``; the
next ``flaky`` status reads answer 503. ``created`` counts batch creations per provider,
``polls`` the status reads. Every request must carry ``key`` (a 401 otherwise, which echoes
the key sent, as OpenAI's does).
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import random
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _text(messages: list[dict[str, Any]]) -> str:
    content = messages[-1]["content"]
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content)
    return str(content)


def _openai_body(body: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": 1724858089,
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"answer to {_text(body['messages'])}"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
    }


def _anthropic_message(params: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "id": f"msg_{n:024d}",
        "type": "message",
        "role": "assistant",
        "model": params["model"],
        "content": [{"type": "text", "text": f"answer to {_text(params['messages'])}"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1000, "output_tokens": 500},
    }


class BatchServer:
    def __init__(self, key: str = "sk-batch-test-0123456789abcdef") -> None:
        self.key = key
        self.hold = 2
        self.outcome = "completed"
        self.flaky = 0  # this many status reads answer 503 first
        self.created: Counter[str] = Counter()
        self.polls: Counter[str] = Counter()
        self.files: dict[str, bytes] = {}
        self.queries: list[str] = []  # each request's query (a gateway's ?team=...), or ""
        self.batches: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.random = random.Random(7)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server._serve(self, "GET")

            def do_POST(self) -> None:
                server._serve(self, "POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- plumbing ----------------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler, method: str) -> None:
        body = h.rfile.read(int(h.headers.get("content-length") or 0))
        sent = h.headers.get("x-api-key") or h.headers.get("authorization", "").removeprefix(
            "Bearer "
        )
        if method == "GET" and "batches/" in h.path and "results" not in h.path and self.flaky:
            self.flaky -= 1
            return self._reply(h, 503, {"error": {"message": "busy", "type": "server_error"}})
        if sent != self.key:
            message = f"Incorrect API key provided: {sent}."
            return self._reply(h, 401, {"error": {"message": message, "type": "invalid_api_key"}})
        try:
            with self.lock:
                path, _, query = h.path.partition("?")
                self.queries.append(query)
                status, answer = self._route(method, path, h.headers, body)
        except (KeyError, ValueError, TypeError) as exc:
            status, answer = 400, {"error": {"message": f"bad request: {exc!r}", "type": "x"}}
        self._reply(h, status, answer)

    def _reply(self, h: BaseHTTPRequestHandler, status: int, answer: Any) -> None:
        raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        kind = "application/jsonl" if isinstance(answer, bytes) else "application/json"
        h.send_response(status)
        h.send_header("content-type", kind)
        h.send_header("content-length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)

    def _route(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if parts[:3] == ["v1", "messages", "batches"]:
            if headers.get("anthropic-version") is None:
                return 400, {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "anthropic-version missing",
                    },
                }
            if method == "POST" and len(parts) == 3:
                return self._anthropic_create(json.loads(body))
            if method == "GET" and len(parts) == 4:
                return 200, self._anthropic_poll(parts[3])
            if method == "GET" and len(parts) == 5 and parts[4] == "results":
                return 200, self.files[f"results-{parts[3]}"]
        if method == "POST" and parts == ["v1", "files"]:
            return self._upload(headers, body)
        if method == "POST" and parts == ["v1", "batches"]:
            return self._openai_create(json.loads(body))
        if method == "GET" and parts[:2] == ["v1", "batches"] and len(parts) == 3:
            return 200, self._openai_poll(parts[2])
        if method == "GET" and parts[:2] == ["v1", "files"] and parts[3:] == ["content"]:
            return 200, self.files[parts[2]]
        return 404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}}

    # --- OpenAI ------------------------------------------------------------------------------

    def _upload(self, headers: Any, body: bytes) -> tuple[int, Any]:
        head = f"Content-Type: {headers['content-type']}\r\n\r\n".encode()
        parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        fields = {p.get_param("name", header="content-disposition"): p for p in parsed.iter_parts()}
        if fields["purpose"].get_content().strip() != "batch":
            raise ValueError("purpose must be batch")
        data = fields["file"].get_payload(decode=True)
        lines = [json.loads(line) for line in data.splitlines() if line.strip()]
        ids = [line["custom_id"] for line in lines]
        if len(set(ids)) != len(ids):
            raise ValueError("custom_id values must be unique")
        for line in lines:
            if line["method"] != "POST" or line["url"] != "/v1/chat/completions":
                raise ValueError(f"bad line {line['custom_id']}")
            if not line["body"]["messages"]:
                raise ValueError("no messages")
        file_id = f"file-{next(self.ids)}"
        self.files[file_id] = data
        return 200, {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": 1711471533,
            "filename": fields["file"].get_filename(),
            "purpose": "batch",
        }

    def _openai_create(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body["endpoint"] != "/v1/chat/completions" or body["completion_window"] != "24h":
            raise ValueError("endpoint or completion_window")
        lines = [json.loads(x) for x in self.files[body["input_file_id"]].splitlines() if x]
        self.created["openai"] += 1
        batch = {
            "id": f"batch_{next(self.ids)}",
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": 1711471533,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": None,
        }
        self.batches[batch["id"]] = {"object": batch, "lines": lines, "polls": 0}
        return 200, batch

    def _openai_poll(self, batch_id: str) -> dict[str, Any]:
        state = self.batches[batch_id]
        batch, lines = state["object"], state["lines"]
        state["polls"] += 1
        self.polls["openai"] += 1
        if batch["status"] in ("completed", "failed", "expired"):
            return batch
        if state["polls"] == 1:
            batch["status"] = "in_progress"
        elif state["polls"] <= 1 + self.hold:
            done = min(len(lines), len(lines) * (state["polls"] - 1) // (self.hold + 1))
            batch["request_counts"]["completed"] = done
        elif batch["status"] == "in_progress":
            batch["status"] = "finalizing"
        else:
            self._openai_finish(batch, lines)
        return batch

    def _openai_finish(self, batch: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        if self.outcome == "failed":
            batch["status"] = "failed"
            batch["errors"] = {
                "object": "list",
                "data": [
                    {
                        "code": "invalid_request",
                        "message": "the model does not exist",
                        "param": None,
                        "line": 1,
                    }
                ],
            }
            return
        ran = lines if self.outcome == "completed" else lines[: len(lines) // 2]
        out, errors = [], []
        for n, line in enumerate(ran):
            ok = "fail" not in _text(line["body"]["messages"])
            response = {
                "status_code": 200 if ok else 400,
                "request_id": f"req_{n}",
                "body": _openai_body(line["body"], n)
                if ok
                else {
                    "error": {
                        "message": "This request was refused on purpose.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
            }
            row = {
                "id": f"batch_req_{n}",
                "custom_id": line["custom_id"],
                "response": response,
                "error": None,
            }
            (out if ok else errors).append(row)
        for line in lines[len(ran) :]:
            errors.append(
                {
                    "id": "batch_req_x",
                    "custom_id": line["custom_id"],
                    "response": None,
                    "error": {
                        "code": "batch_expired",
                        "message": "This request could "
                        "not be executed before the completion window expired.",
                    },
                }
            )
        for rows, field in ((out, "output_file_id"), (errors, "error_file_id")):
            if rows:
                self.random.shuffle(rows)
                file_id = f"file-{next(self.ids)}"
                self.files[file_id] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch[field] = file_id
        batch["status"] = "completed" if self.outcome == "completed" else "expired"
        batch["request_counts"] = {
            "total": len(lines),
            "completed": len(out),
            "failed": len(errors),
        }

    # --- Anthropic ---------------------------------------------------------------------------

    def _anthropic_create(self, body: dict[str, Any]) -> tuple[int, Any]:
        requests = body["requests"]
        for r in requests:
            if not CUSTOM_ID.match(r["custom_id"]):
                raise ValueError(f"custom_id {r['custom_id']!r}")
            if not (r["params"]["max_tokens"] and r["params"]["messages"]):
                raise ValueError("max_tokens and messages are required")
        if len({r["custom_id"] for r in requests}) != len(requests):
            raise ValueError("custom_id values must be unique")
        self.created["anthropic"] += 1
        batch_id = f"msgbatch_{next(self.ids):024d}"
        batch = {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": {
                "processing": len(requests),
                "succeeded": 0,
                "errored": 0,
                "canceled": 0,
                "expired": 0,
            },
            "ended_at": None,
            "created_at": "2024-08-20T18:37:24.100435Z",
            "expires_at": "2024-08-21T18:37:24.100435Z",
            "cancel_initiated_at": None,
            "results_url": None,
        }
        self.batches[batch_id] = {"object": batch, "lines": requests, "polls": 0}
        return 200, batch

    def _anthropic_poll(self, batch_id: str) -> dict[str, Any]:
        state = self.batches[batch_id]
        batch, requests = state["object"], state["lines"]
        state["polls"] += 1
        self.polls["anthropic"] += 1
        if batch["processing_status"] == "ended" or state["polls"] <= self.hold:
            return batch
        ran = requests if self.outcome == "completed" else requests[: len(requests) // 2]
        rows = []
        for n, r in enumerate(ran):
            if "fail" in _text(r["params"]["messages"]):
                result = {
                    "type": "errored",
                    "error": {
                        "type": "error",
                        "error": {
                            "type": "invalid_request_error",
                            "message": "This request was refused on purpose.",
                        },
                    },
                }
            else:
                result = {"type": "succeeded", "message": _anthropic_message(r["params"], n)}
            rows.append({"custom_id": r["custom_id"], "result": result})
        rows += [
            {"custom_id": r["custom_id"], "result": {"type": "expired"}}
            for r in requests[len(ran) :]
        ]
        self.random.shuffle(rows)
        self.files[f"results-{batch_id}"] = "".join(json.dumps(r) + "\n" for r in rows).encode()
        kinds = Counter(r["result"]["type"] for r in rows)
        batch["request_counts"] = {
            "processing": 0,
            "succeeded": kinds["succeeded"],
            "errored": kinds["errored"],
            "canceled": 0,
            "expired": kinds["expired"],
        }
        batch["processing_status"] = "ended"
        batch["ended_at"] = "2024-08-20T19:37:24.100435Z"
        batch["results_url"] = f"{self.url}/messages/batches/{batch_id}/results"
        return batch
