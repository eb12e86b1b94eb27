"""xAI's Grok (OpenAI-compatible chat completions): the OpenAI codec at https://api.x.ai/v1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from conduit._event import Event
from conduit._types import Request
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


def grok_call(req: Any) -> Request:
    """Call xAI's Grok for *req*; the key comes from the request or ``XAI_API_KEY``."""
    return _http.call(GROK, req)


async def grok_acall(req: Any) -> Request:
    """The async twin of :func:`grok_call`."""
    return await _http.acall(GROK, req)


def grok_stream(req: Any) -> Iterator[Event]:
    """Stream the answer of xAI's Grok to *req* as Conduit events."""
    return _http.stream(GROK, req)


def grok_astream(req: Any) -> AsyncIterator[Event]:
    """The async twin of :func:`grok_stream`."""
    return _http.astream(GROK, req)
