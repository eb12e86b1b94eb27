"""Azure OpenAI: chat completions and embeddings of a deployment, on the OpenAI codec.

The model is the *deployment* name (``azure:my-gpt-4o``). The endpoint is the request's
``base_url`` or ``AZURE_OPENAI_ENDPOINT``, in any of the forms Azure's documentation uses:

- the resource, ``https://<resource>.openai.azure.com``: with an API version (from
  ``AZURE_OPENAI_API_VERSION`` or ``OPENAI_API_VERSION``) the classic deployment URL
  ``/openai/deployments/<deployment>/chat/completions?api-version=...``; without one, the v1
  API, ``/openai/v1/chat/completions``, which needs no version;
- a v1 base, ``https://<resource>.openai.azure.com/openai/v1``;
- a deployment URL, ``.../openai/deployments/<deployment>``, with or without
  ``?api-version=...`` (the query is kept, never mangled).

Credentials: an API key (the request's ``api_key`` or ``AZURE_OPENAI_API_KEY``) goes in the
``api-key`` header; a Microsoft Entra ID token goes in ``Authorization: Bearer`` and comes from
the request's ``token_provider`` (a function returning a token, called for each request: the
``azure-identity`` provider refreshes it before it expires; a function returning an object
with ``token`` and ``expires_on``, like ``azure.core``'s ``AccessToken``, is cached here until a
minute before it expires), or from ``AZURE_OPENAI_AD_TOKEN``.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import attrs

from conduit._data import Secret, reveal
from conduit._types import Request
from conduit.errors import AuthenticationError, ValidationError
from conduit.providers import _http, openai

__all__ = ["AZURE", "WIRE", "azure_url", "credentials", "hidden_secrets"]

VERSION_VARIABLES = ("AZURE_OPENAI_API_VERSION", "OPENAI_API_VERSION")
TOKEN_VARIABLE = "AZURE_OPENAI_AD_TOKEN"


def _version() -> str | None:
    return next((os.environ[v] for v in VERSION_VARIABLES if os.environ.get(v)), None)


def azure_url(base: str, deployment: str, path: str, version: str | None = None) -> str:
    """Return the URL of *path* (``/chat/completions``, ``/embeddings``) for *deployment*.

    >>> azure_url("https://r.openai.azure.com", "gpt-4o", "/chat/completions", "2024-10-21")
    'https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21'
    >>> azure_url("https://r.openai.azure.com/", "gpt-4o", "/chat/completions")
    'https://r.openai.azure.com/openai/v1/chat/completions'
    >>> azure_url("https://r.openai.azure.com/openai/deployments/d?api-version=2025-01-01",
    ...           "ignored", "/chat/completions")
    'https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2025-01-01'
    """
    if not base:
        raise AuthenticationError(
            "no endpoint for azure: set AZURE_OPENAI_ENDPOINT (https://<resource>.openai.azure."
            "com) or pass base_url=... to c.request",
            provider="azure",
        )
    scheme, host, where, query, _ = urlsplit(base)
    where = where.rstrip("/")
    if "/openai/deployments/" in where or where.endswith("/openai/v1"):
        pass  # a deployment URL or a v1 base: the path goes on its end
    elif "api-version=" in query or version:
        where = f"{where}/openai/deployments/{quote(deployment, safe='')}"
        if "api-version=" not in query:
            query = f"{query}&api-version={version}" if query else f"api-version={version}"
    else:
        where = f"{where}/openai/v1"
    return urlunsplit((scheme, host, where + path, query, ""))


def _chat_url(base: str, req: Request, stream: bool) -> str:
    return azure_url(base, req["model"], "/chat/completions", _version())


def _embed_url(base: str, req: Request) -> str:
    return azure_url(base, req["model"], "/embeddings", _version())


@attrs.define
class _Cached:
    token: str = attrs.field(repr=False)
    until: float


_tokens: dict[int, tuple[Any, _Cached]] = {}
# The last tokens each token provider gave, masked in errors without asking it for another
# (a provider that refreshes would give a token that was never sent).
_issued: dict[int, tuple[Any, list[Secret]]] = {}  # Secret: no repr shows them
_lock = threading.Lock()


def _remember(provider: Any, token: str) -> None:
    with _lock:
        hit = _issued.get(id(provider))
        if hit is None or hit[0] is not provider:
            if len(_issued) >= 64:
                _issued.clear()
            hit = _issued[id(provider)] = (provider, [])
        if Secret(token) not in hit[1]:
            hit[1][:] = [*hit[1][-7:], Secret(token)]


def _token(provider: Any) -> str:
    """Call *provider* for a token; a token with ``expires_on`` is kept until a minute before."""
    now = time.time()
    with _lock:
        hit = _tokens.get(id(provider))
    if hit is not None and hit[0] is provider and hit[1].until > now:
        return hit[1].token
    got = provider()
    token = getattr(got, "token", got)
    if not isinstance(token, str) or not token:
        raise ValidationError(
            f"token_provider returned {type(got).__name__}, not a token: give a function "
            "returning the bearer token (a string) or an AccessToken"
        )
    _remember(provider, token)
    expires = getattr(got, "expires_on", None)
    if isinstance(expires, int | float):
        with _lock:
            if len(_tokens) >= 64:
                _tokens.clear()
            _tokens[id(provider)] = (provider, _Cached(token, float(expires) - 60))
    return token


def credentials(req: Request) -> dict[str, str]:
    """Return the auth header of *req*: ``api-key`` for a key, a bearer token for Entra ID.

    >>> import conduit as c
    >>> credentials(c.request("d", api_key="k"))
    {'api-key': 'k'}
    >>> credentials(c.request("d", token_provider=lambda: "tok"))
    {'Authorization': 'Bearer tok'}
    """
    key = reveal(req.get("api_key"))
    if key:
        return {"api-key": _http.checked_key(key, "api_key", "azure")}
    provider = req.get("token_provider")
    if provider is not None:
        token = _http.checked_key(_token(provider), "token_provider's token", "azure")
        return {"Authorization": f"Bearer {token}"}
    for var, header in (("AZURE_OPENAI_API_KEY", "api-key"), (TOKEN_VARIABLE, "Authorization")):
        value = os.environ.get(var)
        if value:
            value = _http.checked_key(value, var, "azure")
            return {header: value if header == "api-key" else f"Bearer {value}"}
    raise AuthenticationError(
        "no credentials for azure: set AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN), or pass "
        "api_key=... or token_provider=<a function returning an Entra ID token> to c.request",
        provider="azure",
    )


def hidden_secrets(req: Request) -> list[str]:
    """Return the credentials to mask in errors for *req* beyond its ``api_key`` and
    ``AZURE_OPENAI_API_KEY``: ``AZURE_OPENAI_AD_TOKEN`` and the tokens its ``token_provider``
    gave (never asking it for a new one).

    >>> import conduit as c
    >>> req = c.request("d", token_provider=lambda: "tok-1")
    >>> _ = credentials(req); hidden_secrets(req)
    ['tok-1']
    """
    found = [os.environ.get(TOKEN_VARIABLE) or ""]
    provider = req.get("token_provider")
    if provider is not None:
        with _lock:
            hit = _issued.get(id(provider))
        if hit is not None and hit[0] is provider:
            found += [t.value for t in hit[1]]
    return [s for s in found if s]


AZURE = attrs.evolve(
    openai.from_registry("azure"),
    url=_chat_url,
    embed_url=_embed_url,
    credentials=credentials,
    hidden=hidden_secrets,
)
WIRE = _http.wire(AZURE)
