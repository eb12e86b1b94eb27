"""DeepSeek (OpenAI-compatible chat completions): the OpenAI codec at the registry's base URL.

Its quirks live in the OpenAI codec, keyed by the provider's name: ``reasoning_content`` is
decoded into reasoning blocks and sent back on assistant turns that called tools (DeepSeek's
thinking-mode guide requires it; a 400 otherwise), and ``prompt_cache_hit_tokens`` is read as
``cache_read_tokens``.
"""

from __future__ import annotations

from conduit.providers import _http, openai

__all__ = ["DEEPSEEK", "WIRE"]

DEEPSEEK = openai.from_registry("deepseek")
WIRE = _http.wire(DEEPSEEK)
