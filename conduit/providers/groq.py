"""Groq (OpenAI-compatible chat completions): the OpenAI codec at the registry's base URL."""

from __future__ import annotations

from conduit.providers import _http, openai

__all__ = ["GROQ", "WIRE"]

GROQ = openai.from_registry("groq")
WIRE = _http.wire(GROQ)
