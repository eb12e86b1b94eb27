"""Together AI (OpenAI-compatible chat completions): the OpenAI codec at the registry's base
URL. Reasoning models answer with ``reasoning``, read as reasoning blocks and not sent back."""

from __future__ import annotations

from conduit.providers import _http, openai

__all__ = ["TOGETHER", "WIRE"]

TOGETHER = openai.from_registry("together")
WIRE = _http.wire(TOGETHER)
