"""Ollama: chat through its OpenAI-compatible ``/v1`` API; native ``/api/chat`` bodies decode too;
embeddings through the native ``/api/embed``. No API key is needed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from conduit._data import thaw
from conduit._types import Request
from conduit.embeddings import embedding_response, number_row, one_per_text, one_width
from conduit.errors import ConduitError, ShapeError, malformed, want, want_count, want_list
from conduit.providers import _http, openai
from conduit.response import make_response, make_tool_call, make_usage

__all__ = ["OLLAMA", "WIRE", "decode_embed", "decode_native_chat", "encode_chat", "encode_embed"]

_STOP = {"stop": "end_turn", "length": "max_tokens"}
_encode = openai.encoder("ollama")


def encode_chat(req: Request, stream: bool = False) -> dict[str, Any]:
    """Return the body of an OpenAI-compatible ``/v1/chat/completions`` call to Ollama.

    Ollama's ``think`` option (``True``/``False`` or a level) is written as the
    ``reasoning_effort`` that API reads (``False`` is ``"none"``, ``True`` is ``"medium"``);
    a ``reasoning_effort`` given too wins.

    >>> import conduit as c
    >>> encode_chat(c.request("qwen3", "hi", think=False))["reasoning_effort"]
    'none'
    """
    body = _encode(req, stream)
    if "think" in body:
        think = body.pop("think")
        effort = "none" if think is False else "medium" if think is True else think
        body.setdefault("reasoning_effort", effort)
    return body


def decode_native_chat(req: Request, body: Mapping[str, Any]) -> Request:
    """Return *req* with the response of a native ``/api/chat`` *body* (tool calls get ids).

    The message's ``thinking`` becomes a ``reasoning`` block before the answer's text.

    >>> import conduit as c
    >>> ctx = decode_native_chat(c.request("m"), {"model": "llama3.2", "done": True,
    ...     "message": {"role": "assistant", "content": "Hi"}, "prompt_eval_count": 3,
    ...     "eval_count": 1})
    >>> c.content(ctx), c.usage(ctx)["total_tokens"]
    ('Hi', 4)
    """
    try:
        return _native_chat(req, body)
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed("ollama", "chat answer", body, exc) from exc


def _native_call(call: Any, i: int) -> Any:
    where = f"message.tool_calls[{i}]"
    fn = want(want(call, Mapping, where).get("function"), Mapping, f"{where}.function")
    name = fn.get("name")
    if not name or type(name) is not str:
        raise ShapeError(f"{where}.function.name is missing")
    args = want(fn.get("arguments") or {}, Mapping, f"{where}.function.arguments")
    return make_tool_call(want(call.get("id") or f"call_{i}", str, f"{where}.id"), name, args)


def _native_chat(req: Request, body: Any) -> Request:
    want(body, Mapping, "the answer")
    msg = want(body.get("message") or {}, Mapping, "message")
    listed = want_list(msg.get("tool_calls") or (), "message.tool_calls")
    calls = [_native_call(call, i) for i, call in enumerate(listed)]
    reason = want(body.get("done_reason") or "stop", str, "done_reason")
    text = want(msg.get("content") or "", str, "message.content")
    thinking = want(msg.get("thinking") or "", str, "message.thinking")
    blocks = [{"type": "reasoning", "text": thinking}, {"type": "text", "text": text}]
    resp = make_response(
        [b for b in blocks if b["text"]] if thinking else text,
        model=want(body.get("model") or req["model"], str, "model"),
        stop_reason="tool_use" if calls else _STOP.get(reason, "end_turn"),
        usage=make_usage(
            want_count(body, "", "prompt_eval_count") or 0,
            want_count(body, "", "eval_count") or 0,
        ),
        tool_calls=calls,
    )
    return req.set("response", resp)


def encode_embed(req: Request) -> dict[str, Any]:
    """Return the body of a native ``/api/embed`` call.

    >>> import conduit as c
    >>> encode_embed(c.embedding_request("all-minilm", ["a", "b"]))
    {'model': 'all-minilm', 'input': ['a', 'b']}
    """
    return {"model": req["model"], "input": list(req["input"]), **thaw(req["options"])}


def decode_embed(req: Request, body: Mapping[str, Any]) -> Request:
    """Return *req* with the response of a native ``/api/embed`` answer.

    >>> import conduit as c
    >>> c.vectors(decode_embed(c.embedding_request("m", ["a"]), {"embeddings": [[0.5]]})).tolist()
    [[0.5]]
    """
    try:
        want(body, Mapping, "the answer")
        rows = want(body.get("embeddings") or [], list, "embeddings")
        rows = [number_row(row, f"embeddings[{i}]") for i, row in enumerate(rows)]
        one_width(map(len, rows), "embeddings")
        one_per_text(len(rows), req)
        resp = embedding_response(
            want(body.get("model") or req["model"], str, "model"),
            rows,
            make_usage(want_count(body, "", "prompt_eval_count") or 0, 0),
        )
    except ConduitError:
        raise
    except Exception as exc:
        raise malformed("ollama", "embeddings answer", body, exc) from exc
    return req.set("response", resp)


def server_root(base: str) -> str:
    """Return the Ollama server's root for a base URL given with or without ``/v1``.

    ``OLLAMA_BASE_URL`` (or ``base_url``) may name the server, as Ollama's own documentation
    does (``http://localhost:11434``), or its OpenAI-compatible API (``.../v1``): chat goes to
    ``<root>/v1/chat/completions`` and embeddings to ``<root>/api/embed`` either way.

    >>> server_root("http://localhost:11434"), server_root("http://gpu-box:11434/v1/")
    ('http://localhost:11434', 'http://gpu-box:11434')
    """
    base = base.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def _chat_url(base: str, req: Request, stream: bool) -> str:
    return _http.joined_url(base, lambda root: server_root(root) + "/v1/chat/completions")


def _embed_url(base: str, req: Request) -> str:
    return _http.joined_url(base, lambda root: server_root(root) + "/api/embed")


OLLAMA = attrs.evolve(
    openai.from_registry("ollama"),
    encode=encode_chat,
    url=_chat_url,
    embed_path="/api/embed",
    embed_url=_embed_url,
    encode_embed=encode_embed,
    decode_embed=decode_embed,
)
WIRE = _http.wire(OLLAMA)
