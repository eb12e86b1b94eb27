"""Ollama: chat through its OpenAI-compatible ``/v1`` API; native ``/api/chat`` bodies decode too;
embeddings through the native ``/api/embed``. No API key is needed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from conduit._data import thaw
from conduit._types import Request
from conduit.embeddings import embedding_response
from conduit.providers import _http, openai
from conduit.response import make_response, make_tool_call, make_usage

__all__ = ["OLLAMA", "WIRE", "decode_embed", "decode_native_chat", "encode_embed"]

_STOP = {"stop": "end_turn", "length": "max_tokens"}


def decode_native_chat(req: Request, body: Mapping[str, Any]) -> Request:
    """Return *req* with the response of a native ``/api/chat`` *body* (tool calls get ids).

    >>> import conduit as c
    >>> ctx = decode_native_chat(c.request("m"), {"model": "llama3.2", "done": True,
    ...     "message": {"role": "assistant", "content": "Hi"}, "prompt_eval_count": 3,
    ...     "eval_count": 1})
    >>> c.content(ctx), c.usage(ctx)["total_tokens"]
    ('Hi', 4)
    """
    msg = body.get("message") or {}
    calls = [
        make_tool_call(
            call.get("id") or f"call_{i}",
            call["function"]["name"],
            call["function"].get("arguments") or {},
        )
        for i, call in enumerate(msg.get("tool_calls") or ())
    ]
    resp = make_response(
        msg.get("content") or "",
        model=body.get("model") or req["model"],
        stop_reason="tool_use"
        if calls
        else _STOP.get(body.get("done_reason") or "stop", "end_turn"),
        usage=make_usage(body.get("prompt_eval_count") or 0, body.get("eval_count") or 0),
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
    """Return *req* with the response of a native ``/api/embed`` answer."""
    resp = embedding_response(
        body.get("model") or req["model"],
        list(body.get("embeddings") or ()),
        make_usage(body.get("prompt_eval_count") or 0, 0),
    )
    return req.set("response", resp)


OLLAMA = attrs.evolve(
    openai.from_registry("ollama"),
    embed_path="/api/embed",
    encode_embed=encode_embed,
    decode_embed=decode_embed,
    embed_at_root=True,
)
WIRE = _http.wire(OLLAMA)
