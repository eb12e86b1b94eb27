"""xAI's Grok (OpenAI-compatible chat completions): the OpenAI codec at the registry's base URL."""

from __future__ import annotations

from conduit.providers import _http, openai

__all__ = ["GROK", "WIRE"]

GROK = openai.from_registry("grok")
WIRE = _http.wire(GROK)
