"""xAI's Grok (OpenAI-compatible chat completions): the OpenAI codec at https://api.x.ai/v1."""

from __future__ import annotations

from conduit.providers import _http, openai

__all__ = ["GROK", "grok_acall", "grok_astream", "grok_call", "grok_stream"]

GROK = openai.compatible("grok", "https://api.x.ai/v1", "XAI_API_KEY", "XAI_BASE_URL")


grok_call, grok_acall, grok_stream, grok_astream = _http.handlers(GROK, __name__, "xAI's Grok")
