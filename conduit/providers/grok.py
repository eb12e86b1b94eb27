"""xAI's Grok (OpenAI-compatible chat completions): the OpenAI codec at https://api.x.ai/v1."""

from __future__ import annotations

from conduit.providers import _http, openai

__all__ = ["GROK", "grok_acall", "grok_astream", "grok_call", "grok_stream"]

GROK = _http.Provider(
    name="grok",
    base_url="https://api.x.ai/v1",
    base_url_env="XAI_BASE_URL",
    path="/chat/completions",
    env_key="XAI_API_KEY",
    encode=openai.encode_chat,
    decode=openai.decode_chat,
    stream_start=openai.stream_start,
    stream_step=openai.stream_step,
    stream_end=openai.stream_end,
    auth=_http.bearer,
)


grok_call, grok_acall, grok_stream, grok_astream = _http.handlers(GROK, __name__, "xAI's Grok")
