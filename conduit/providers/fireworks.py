"""Fireworks AI (OpenAI-compatible chat completions): the OpenAI codec at the registry's base
URL. Reasoning models answer with ``reasoning_content``, read as reasoning blocks."""

from __future__ import annotations

from conduit.providers import _http, openai

__all__ = ["FIREWORKS", "WIRE"]

FIREWORKS = openai.from_registry("fireworks")
WIRE = _http.wire(FIREWORKS)
