"""OpenRouter (many providers' models behind one OpenAI-compatible API and one key).

What differs from OpenAI, from OpenRouter's API reference: app attribution headers,
``HTTP-Referer`` (your site) and ``X-Title`` (your app's name), read from
``OPENROUTER_SITE_URL`` and ``OPENROUTER_APP_NAME`` when set (a request's own ``headers``
win); reasoning comes as ``reasoning`` text and as ``reasoning_details`` items with signatures,
which the OpenAI codec reads into reasoning blocks and sends back on the next turn as
``reasoning_details`` (so Anthropic and Gemini models keep their signed thinking across tool
calls). Model names are the provider's path: ``openrouter:anthropic/claude-sonnet-4.5``.
"""

from __future__ import annotations

import os

import attrs

from conduit._types import Request
from conduit.providers import _http, openai

__all__ = ["OPENROUTER", "WIRE", "attributed"]

#: (environment variable, header) of OpenRouter's app attribution.
ATTRIBUTION = (("OPENROUTER_SITE_URL", "HTTP-Referer"), ("OPENROUTER_APP_NAME", "X-Title"))


def attributed(req: Request, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """Return *headers* with the attribution headers the environment sets (a request's own
    headers of those names are kept). Read on every call, so a changed variable counts.

    >>> os.environ["OPENROUTER_APP_NAME"] = "My app"
    >>> attributed({}, "u", {"X-Title": "Mine"}, b"")["X-Title"], attributed({}, "u", {}, b"")
    ('Mine', {'X-Title': 'My app'})
    >>> del os.environ["OPENROUTER_APP_NAME"]
    """
    for var, header in ATTRIBUTION:
        value = os.environ.get(var)
        if value and header not in headers:
            headers = {**headers, header: value}
    return headers


OPENROUTER = attrs.evolve(openai.from_registry("openrouter"), sign=attributed)
WIRE = _http.wire(OPENROUTER)
