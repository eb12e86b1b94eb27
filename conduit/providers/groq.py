"""Groq (OpenAI-compatible chat completions): the OpenAI codec at https://api.groq.com/openai/v1."""

from __future__ import annotations

from conduit.providers import _http, openai

__all__ = ["GROQ", "groq_acall", "groq_astream", "groq_call", "groq_stream"]

GROQ = _http.Provider(
    name="groq",
    base_url="https://api.groq.com/openai/v1",
    base_url_env="GROQ_BASE_URL",
    path="/chat/completions",
    env_key="GROQ_API_KEY",
    encode=openai.encode_chat,
    decode=openai.decode_chat,
    stream_start=openai.stream_start,
    stream_step=openai.stream_step,
    stream_end=openai.stream_end,
    auth=_http.bearer,
)


groq_call, groq_acall, groq_stream, groq_astream = _http.handlers(GROQ, __name__, "Groq")
