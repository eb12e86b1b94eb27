"""Groq (OpenAI-compatible chat completions): the OpenAI codec at https://api.groq.com/openai/v1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from conduit._event import Event
from conduit._types import Request
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


def groq_call(req: Any) -> Request:
    """Call Groq for *req*; the key comes from the request or ``GROQ_API_KEY``."""
    return _http.call(GROQ, req)


async def groq_acall(req: Any) -> Request:
    """The async twin of :func:`groq_call`."""
    return await _http.acall(GROQ, req)


def groq_stream(req: Any) -> Iterator[Event]:
    """Stream the answer of Groq to *req* as Conduit events."""
    return _http.stream(GROQ, req)


def groq_astream(req: Any) -> AsyncIterator[Event]:
    """The async twin of :func:`groq_stream`."""
    return _http.astream(GROQ, req)
