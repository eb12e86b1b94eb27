"""Mistral AI (chat completions on the OpenAI wire, with Mistral's own names).

What differs from OpenAI, from Mistral's API reference and its official SDK (``mistralai``):
``seed`` is ``random_seed``; ``tool_choice`` may be ``"any"`` (a tool must be called); a
stream sends its usage in the last chunk by itself, and the
request schema has no ``stream_options`` (extra fields are refused), so none is sent; Magistral
models answer with content *parts*, ``thinking`` parts among them, which the OpenAI codec reads
into reasoning blocks (calls and streams). Reasoning is not sent back. Embeddings
(``mistral-embed``) are asked for as base64, as on OpenAI.
"""

from __future__ import annotations

from typing import Any

import attrs

from conduit._types import Request
from conduit.providers import _http, openai

__all__ = ["MISTRAL", "WIRE", "encode_chat"]

_RENAMED = {"seed": "random_seed"}


def encode_chat(req: Request, stream: bool = False) -> dict[str, Any]:
    """Return the JSON body of a Mistral chat completion for *req*.

    >>> import conduit as c
    >>> body = encode_chat(c.request("mistral-small-latest", "Hi", seed=7), stream=True)
    >>> body["random_seed"], "seed" in body, "stream_options" in body, body["stream"]
    (7, False, False, True)
    """
    body = openai.encode_chat(req, stream, "mistral")
    if req["options"].get("tool_choice") == "any":  # Mistral's word for "required"
        body["tool_choice"] = "any"
    if stream and "stream_options" not in req["options"]:
        del body["stream_options"]
    for old, new in _RENAMED.items():
        if old in body:
            body.setdefault(new, body.pop(old))
    return body


MISTRAL = attrs.evolve(openai.from_registry("mistral"), encode=encode_chat)
WIRE = _http.wire(MISTRAL)
