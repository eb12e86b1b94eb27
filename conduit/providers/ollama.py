"""Ollama: chat through its OpenAI-compatible ``/v1`` API; native ``/api/chat`` bodies decode too;
embeddings through the native ``/api/embed``. No API key is needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from pyrsistent import PMap

from conduit._types import Request
from conduit.providers import _embed, _http, openai
from conduit.providers._embed import Embeddings
from conduit.response import make_response, make_tool_call, make_usage

__all__ = [
    "OLLAMA",
    "decode_embed",
    "decode_native_chat",
    "encode_embed",
    "ollama_acall",
    "ollama_aembed",
    "ollama_astream",
    "ollama_call",
    "ollama_embed",
    "ollama_stream",
]

OLLAMA = openai.compatible("ollama", "http://localhost:11434/v1", None, "OLLAMA_BASE_URL")

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


def encode_embed(model: str, texts: Sequence[str], options: Mapping[str, Any]) -> dict[str, Any]:
    """Return the body of a native ``/api/embed`` call.

    >>> encode_embed("all-minilm", ["a", "b"], {})
    {'model': 'all-minilm', 'input': ['a', 'b']}
    """
    return {"model": model, "input": list(texts), **dict(options)}


def decode_embed(body: Mapping[str, Any]) -> tuple[list[list[float]], PMap[str, Any]]:
    """Return (vectors, usage) from a native ``/api/embed`` answer."""
    return list(body.get("embeddings") or ()), make_usage(body.get("prompt_eval_count") or 0, 0)


_NATIVE = attrs.evolve(OLLAMA, base_url="http://localhost:11434")


def _native(settings: dict[str, Any]) -> dict[str, Any]:
    base = settings.get("base_url")
    if base and base.rstrip("/").endswith("/v1"):
        settings["base_url"] = base.rstrip("/")[: -len("/v1")]
    return settings


ollama_call, ollama_acall, ollama_stream, ollama_astream = _http.handlers(
    OLLAMA, __name__, "a local Ollama server"
)


def ollama_embed(texts: Sequence[str], model: str = "all-minilm", **settings: Any) -> Embeddings:
    """Return embeddings of *texts* from a local Ollama server (native ``/api/embed``)."""
    return _embed.embed(
        _NATIVE, "/api/embed", encode_embed, decode_embed, model, texts, **_native(settings)
    )


async def ollama_aembed(
    texts: Sequence[str], model: str = "all-minilm", **settings: Any
) -> Embeddings:
    """The async twin of :func:`ollama_embed`."""
    return await _embed.aembed(
        _NATIVE, "/api/embed", encode_embed, decode_embed, model, texts, **_native(settings)
    )
