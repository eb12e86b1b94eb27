"""Groq (OpenAI-compatible chat completions): the OpenAI codec at https://api.groq.com/openai/v1."""

from __future__ import annotations

from conduit.providers import _http, openai

__all__ = ["GROQ", "groq_acall", "groq_astream", "groq_call", "groq_stream"]

GROQ = openai.compatible("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", "GROQ_BASE_URL")


groq_call, groq_acall, groq_stream, groq_astream = _http.handlers(GROQ, __name__, "Groq")
