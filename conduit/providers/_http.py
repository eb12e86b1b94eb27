"""The imperative shell shared by every HTTP provider: pooled clients, post/apost, streams.

Nothing here decides anything about a provider's format: that is the codec's job. This module
reads the API key (request, else environment), performs the I/O the exchange asks for, and
maps transport failures and HTTP errors to Conduit's errors. :func:`wire` turns a
:class:`Provider` into the :class:`~conduit.providers._wire.Wire` the exchange runs.

Three guarantees live here. A call's deadline bounds every socket operation (connect, each
write, each read), not just the first: the pooled clients' network backends shorten each one
to the time left, so a server trickling bytes or keep-alives cannot stretch the call. Every
error built here (transport, HTTP status, malformed answer) has the request's secrets masked,
in its message, its body and the exceptions chained to it. And whatever a codec raises on an
answer of the wrong shape reaches the caller as a ``ProviderError``.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import binascii
import contextlib
import functools
import json
import os
import re
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any

import attrs
import httpcore
import httpx

from conduit._data import (
    Secret,
    hide_url_secrets_in_logs,
    is_credential,
    mask_url,
    peek,
    query_secrets,
    reveal,
    secret_problem,
    split_userinfo,
    url_secrets,
)
from conduit._drive import Effect, bounded, overdue, time_left
from conduit._types import Flow, Request
from conduit.errors import (
    AuthenticationError,
    ConduitError,
    ConnectionError,
    ProviderError,
    TimeoutError,
    ValidationError,
    error_from_response,
    malformed,
    redact,
    redact_error,
)
from conduit.providers._wire import Decoder, Framer, Wire

__all__ = [
    "TRANSPORT_ERRORS",
    "Provider",
    "aclient",
    "aopen_stream",
    "apost",
    "bearer",
    "call_flow",
    "checked_key",
    "client",
    "decode_failure",
    "embed_flow",
    "joined_url",
    "json_body",
    "open_stream",
    "post",
    "prepare",
    "request_headers",
    "secrets",
    "status_error",
    "transport_error",
    "wire",
]

DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)
# httpx's own defaults: a larger keep-alive pool makes httpcore scan more connections per
# request (measured: 20 kept alive gave twice the throughput of 100 at concurrency 100).
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


@attrs.frozen(kw_only=True)
class Provider:
    """How to reach one service: its URL, key variable, auth header and pure codec."""

    name: str
    base_url: str
    path: str
    env_key: str | None
    encode: Callable[[Request, bool], dict[str, Any]]
    decode: Callable[[Request, Mapping[str, Any], str], Request]
    stream_start: Callable[[str], Any]
    stream_steps: Callable[[Any, Any], tuple[Any, list[Any]]]  # (state, SSEs) -> (state, events)
    stream_end: Callable[[Any], list[Any]]
    auth: Callable[[str], dict[str, str]]
    headers: Mapping[str, str] = attrs.field(factory=dict)
    base_url_env: str | None = None
    embed_path: str | None = None  # where embeddings are served, if the service has them
    encode_embed: Callable[[Request], dict[str, Any]] | None = None
    decode_embed: Callable[[Request, Mapping[str, Any]], Request] | None = None
    embed_at_root: bool = False  # the embeddings path hangs off the server root, not ``/v1``
    # Hooks for services that do not fit "POST base_url + path with a key header":
    #: ``url(base, req, stream)``: the chat URL from the resolved base URL (Gemini, Azure,
    #: Bedrock put the model or deployment in the path); default ``base + path``.
    url: Callable[[str, Request, bool], str] | None = None
    #: ``embed_url(base, req)``: the embeddings URL; default ``base + embed_path``.
    embed_url: Callable[[str, Request], str] | None = None
    #: ``sign(req, url, headers, body)``: the headers to send, given the finished request
    #: (AWS SigV4 signs the URL, headers and body); called once per attempt, never cached.
    sign: Callable[[Request, str, dict[str, str], bytes], dict[str, str]] | None = None
    #: ``credentials(req)``: the auth headers, for services whose credential is not one key
    #: (Azure's Entra ID token function); replaces the key lookup and ``auth`` when set.
    credentials: Callable[[Request], dict[str, str]] | None = None
    #: A factory of the stream's framing (default: server-sent events).
    framing: Callable[[], Framer] | None = None
    #: ``hidden(req)``: every secret to mask in errors for *req* beyond its ``api_key``, the
    #: ``env_key`` variable and credential headers: the ones it relies on but never sends (an
    #: AWS secret key) and the ones ``credentials`` would have to fetch again (an Entra ID
    #: token: the ones already issued). When set, masking does not call ``credentials``.
    hidden: Callable[[Request], list[str]] | None = None


def bearer(key: str) -> dict[str, str]:
    """Return the ``Authorization`` header for a bearer token."""
    return {"Authorization": f"Bearer {key}"}


def checked_key(key: str, where: str, provider: str) -> str:
    """Refuse a key that HTTP cannot carry (whitespace, control or non-ASCII characters): sent,
    it would fail in the transport with the key in the message, or be sent again by a retry."""
    problem = secret_problem(key, where)
    if problem is not None:
        raise ValidationError(problem, data={"provider": provider})
    return key


def _api_key(spec: Provider, req: Request) -> str | None:
    key = reveal(req.get("api_key"))
    if key:
        return checked_key(key, "api_key", spec.name)
    if spec.env_key and os.environ.get(spec.env_key):
        return checked_key(os.environ[spec.env_key], spec.env_key, spec.name)
    if spec.env_key and not (req.get("base_url") or _custom_base(spec)):
        raise AuthenticationError(
            f"no API key for {spec.name}: set the {spec.env_key} environment variable or pass "
            f"api_key=... to c.request",
            provider=spec.name,
        )
    return None  # a custom base URL (a local OpenAI-compatible server) may need no key


def _given_base(spec: Provider, req: Request) -> str:
    base = peek(req, "base_url") or (spec.base_url_env and os.environ.get(spec.base_url_env))
    return str(base or spec.base_url).rstrip("/")


@functools.lru_cache(maxsize=64)
def _split_base(base: str) -> tuple[str, str | None]:
    """:func:`split_userinfo` of a base URL, once per distinct URL (it is read on every call).
    A URL with a key in its query has it masked in httpx's log lines from then on."""
    if query_secrets(base):
        hide_url_secrets_in_logs()
    return split_userinfo(base)


def base_of(spec: Provider, req: Request) -> str:
    """The base URL *req* goes to: its ``base_url``, the provider's variable, or the default.

    A ``user:password@`` in it (the variable's: the request's own is taken out at the door)
    is not part of it: it is sent as ``Authorization: Basic``, as the door does, so the URL
    httpx logs and ``c.wire`` shows never holds a password.
    """
    return _split_base(_given_base(spec, req))[0]


def _custom_base(spec: Provider) -> bool:
    """Whether the provider's base URL variable points somewhere of the user's own (a local
    OpenAI-compatible server, say), where a key may not be needed."""
    value = spec.base_url_env and os.environ.get(spec.base_url_env)
    return bool(value) and str(value).rstrip("/") != spec.base_url.rstrip("/")


def joined_url(base: str, build: Callable[[str], str]) -> str:
    """The URL *build* makes from *base*, with a query *base* carries (a proxy's ``?team=a``)
    kept at the end, where a query belongs, rather than before the path. (A provider's own URL
    function calls it where the query means nothing to the provider; Azure reads its own.)

    >>> joined_url("https://proxy.example/v1?team=a", lambda b: b + "/chat/completions")
    'https://proxy.example/v1/chat/completions?team=a'
    >>> joined_url("https://h/v1beta?key=k", lambda b: b + "/m:streamGenerateContent?alt=sse")
    'https://h/v1beta/m:streamGenerateContent?alt=sse&key=k'
    """
    if "?" not in base:
        return build(base)
    base, _, query = base.partition("?")
    url = build(base.rstrip("/"))
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _url(path: str, root: bool, base: str) -> str:
    if root and base.endswith("/v1"):
        base = base[: -len("/v1")]
    return base + path


def chat_url(spec: Provider, req: Request, stream: bool) -> str:
    """The URL of a chat call (or stream) for *req*."""
    if spec.url is not None:
        return spec.url(base_of(spec, req), req, stream)
    base = base_of(spec, req)
    return base + spec.path if "?" not in base else joined_url(base, lambda at: at + spec.path)


def embed_url(spec: Provider, req: Request) -> str:
    """The URL of an embedding request for *req*."""
    if spec.embed_url is not None:
        return spec.embed_url(base_of(spec, req), req)
    assert spec.embed_path is not None, "wire() checks this"
    return joined_url(base_of(spec, req), partial(_url, spec.embed_path, spec.embed_at_root))


def _sent(spec: Provider, req: Request, url: str, body: bytes) -> dict[str, str]:
    headers = request_headers(spec, req)
    return headers if spec.sign is None else spec.sign(req, url, headers, body)


def request_headers(spec: Provider, req: Request) -> dict[str, str]:
    """Return the headers a call of *req* to *spec* sends (before any signing): the provider's
    own, its credentials (the key, checked), Basic auth for a base URL's userinfo, and the
    request's ``headers`` (credential ones checked)."""
    headers = {"Content-Type": "application/json", **spec.headers}
    if spec.credentials is not None:
        headers.update(spec.credentials(req))
    else:
        key = _api_key(spec, req)
        if key:
            headers.update(spec.auth(key))
    basic = _split_base(_given_base(spec, req))[1]
    if basic is not None:  # a base URL variable's user:password@, sent as httpx would send it
        headers["Authorization"] = basic
    for name, value in (peek(req, "headers") or {}).items():
        if isinstance(value, Secret) or is_credential(name):
            value = checked_key(reveal(value) or "", f"headers[{name!r}]", spec.name)
        headers[name] = value
    return headers


def _credential(value: str) -> list[str]:
    """A credential header's value and the secrets inside it (a scheme's token, Basic's pair)."""
    found = [value]
    scheme, _, token = value.partition(" ")
    if token:
        found.append(token)
    if scheme.lower() == "basic":
        try:
            pair = base64.b64decode(token, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return found
        found += [pair, *pair.split(":", 1)]
    return found


def secrets(spec: Provider, req: Request) -> list[str]:
    """Return every secret *req* sends to *spec* (key, credential headers, URL userinfo), for
    masking in errors. Read only when an error is built, so a call that succeeds pays nothing.

    >>> from conduit.providers.openai import OPENAI
    >>> secrets(OPENAI, {"api_key": "sk-1", "base_url": "https://u:pw@h/v1"})
    ['sk-1', 'Bearer sk-1', 'u:pw', 'u:pw', 'u', 'pw', 'u', 'pw']
    """
    found: list[str] = []
    key = reveal(req.get("api_key")) or (spec.env_key and os.environ.get(spec.env_key))
    if isinstance(key, str) and key:
        found += [key, *spec.auth(key).values()]
    if spec.hidden is not None:  # what the provider says to mask, without fetching anything
        with contextlib.suppress(Exception):  # masking must not fail the error it masks
            found += spec.hidden(req)
    elif spec.credentials is not None:
        with contextlib.suppress(Exception):
            found += [t for v in spec.credentials(req).values() for t in _credential(v)]
    for name, value in (req.get("headers") or {}).items():
        text = reveal(value)
        if isinstance(text, str) and (isinstance(value, Secret) or is_credential(name)):
            found += _credential(text)
    return found + url_secrets(_given_base(spec, req))


_URLS: dict[str, httpx.URL] = {}


def _parsed(url: str) -> httpx.URL:
    """Return *url* parsed, once per distinct URL: httpx parses a string URL on every request
    (measured: passing the parsed URL saves ~15 us a call, a twentieth of a loopback call)."""
    found = _URLS.get(url)
    if found is None:
        if len(_URLS) >= 256:
            _URLS.clear()
        found = _URLS[url] = httpx.URL(url)
    return found


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # json.dumps would build one per call


def _body(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


def prepare(spec: Provider, req: Request, stream: bool) -> tuple[str, dict[str, str], bytes]:
    """Return (url, headers, body) for *req*; reads the API key from the environment if needed."""
    url, body = chat_url(spec, req, stream), _body(spec.encode(req, stream))
    return url, _sent(spec, req, url, body), body


class _Until(float):
    """A timeout in seconds that carries the call's deadline down to the network backend.

    httpx and httpcore hand timeouts through untouched to every socket operation, so the
    backend (:class:`_Backend`) can shorten each operation to the time left then.
    """

    __slots__ = ("deadline",)
    deadline: float


def _until(seconds: float, deadline: float) -> _Until:
    out = _Until(seconds)
    out.deadline = deadline
    return out


def _timeout(req: Request) -> Any:
    """The request's timeout, shortened to what is left before its deadline, and carrying the
    deadline so that each later read is shortened too."""
    if "timeout" not in req and "conduit/deadline" not in req:
        return httpx.USE_CLIENT_DEFAULT  # passing a Timeout costs httpx ~25 us a call
    seconds = req.get("timeout")
    left = time_left(req)
    if left is None:
        if seconds is None:
            return httpx.USE_CLIENT_DEFAULT
        return httpx.Timeout(float(seconds), connect=min(5.0, float(seconds)))
    limit = left if seconds is None else min(float(seconds), left)
    deadline = req["conduit/deadline"]
    return httpx.Timeout(_until(limit, deadline), connect=_until(min(5.0, limit), deadline))


def _step(timeout: float | None, late: type[Exception]) -> float | None:
    """The timeout of one socket operation: what is left of the deadline it carries, if any."""
    if type(timeout) is not _Until:
        return timeout
    left = bounded(timeout, timeout.deadline, time.monotonic())
    if left <= 0:
        raise late("the call's deadline passed")
    return left


class _Stream(httpcore.NetworkStream):
    """A connection whose every read and write is bounded by the call's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _step(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _step(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        step = _step(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, step))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        step = _step(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, step, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        step = _step(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, step, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AStream(httpcore.AsyncNetworkStream):
    """The async twin of :class:`_Stream`."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, _step(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, _step(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        step = _step(timeout, httpcore.ConnectTimeout)
        return _AStream(await self._inner.start_tls(ssl_context, server_hostname, step))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _ABackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        step = _step(timeout, httpcore.ConnectTimeout)
        inner = await self._inner.connect_tcp(host, port, step, local_address, socket_options)
        return _AStream(inner)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        step = _step(timeout, httpcore.ConnectTimeout)
        return _AStream(await self._inner.connect_unix_socket(path, step, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _bound(pooled: httpx.Client | httpx.AsyncClient, wrap: Callable[[Any], Any]) -> None:
    """Put *pooled*'s connection pools (the direct one and any proxy's) on a deadline-aware
    network backend. httpx builds its pools without a backend argument, so it is swapped in;
    ``tests/reliability/test_transport.py`` fails if a new httpx stops honouring this."""
    for transport in (pooled._transport, *pooled._mounts.values()):
        pool = getattr(transport, "_pool", None)
        inner = getattr(pool, "_network_backend", None)
        if inner is not None:
            pool._network_backend = wrap(inner)  # type: ignore[union-attr]


class _NoCookies(httpx.Cookies):
    """The pooled clients' cookie jar, which keeps nothing.

    One client serves every request of the process, whoever's key it carries: a cookie one
    answer sets (a CDN's session cookie, say) must not ride on another caller's request. No
    provider API needs cookies, and httpx's reading of them costs about 10 us a call.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None


def _stateless(pooled: httpx.Client | httpx.AsyncClient) -> None:
    """Give *pooled* the jar that keeps nothing (httpx reads ``client.cookies`` on every answer;
    ``tests/reliability/test_cookies.py`` fails if a new httpx stops honouring this)."""
    pooled._cookies = _NoCookies()


_lock = threading.Lock()
_client: httpx.Client | None = None
_aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)
_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
    weakref.WeakKeyDictionary()
)


def client() -> httpx.Client:
    """Return the process's pooled sync client (connections are reused across calls)."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = httpx.Client(timeout=DEFAULT_TIMEOUT, limits=LIMITS)
                _bound(_client, _Backend)
                _stateless(_client)
                atexit.register(_client.close)
    return _client


async def _closer(pooled: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """Suspended for the loop's lifetime; the loop's shutdown_asyncgens() runs the finally."""
    try:
        yield
    finally:
        await pooled.aclose()


async def aclient() -> httpx.AsyncClient:
    """Return the pooled async client of the running event loop.

    It is closed when the loop shuts down (``asyncio.run`` and most runners call
    ``loop.shutdown_asyncgens()``), so no socket outlives its loop.
    """
    loop = asyncio.get_running_loop()
    found = _aclients.get(loop)
    if found is None:
        found = httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, limits=LIMITS)
        _bound(found, _ABackend)
        _stateless(found)
        closer = _closer(found)
        await closer.asend(None)
        _aclients[loop] = found
        _closers[loop] = closer
    return found


#: What the transport shells catch: httpx's errors, and a URL httpx cannot parse (raised
#: before any request, and not an ``httpx.HTTPError``).
TRANSPORT_ERRORS = (httpx.HTTPError, httpx.InvalidURL)


def transport_error(
    spec: Provider, exc: httpx.HTTPError | httpx.InvalidURL, req: Request | None = None
) -> Exception:
    """Return the Conduit error for a transport failure; the request's secrets are masked in it
    and in *exc*'s chain (h11 puts an illegal header's value in its message)."""
    hidden = secrets(spec, req) if req is not None else []
    redact_error(exc, hidden)
    if isinstance(exc, httpx.InvalidURL):  # its text quotes the part it choked on: not shown
        where = mask_url(base_of(spec, req)) if req is not None else "the URL"
        variable = f" or {spec.base_url_env}" if spec.base_url_env else ""
        return ValidationError(
            f"{spec.name}: {where} is not a URL httpx can send ({_reason(exc)}); check base_url"
            f"{variable}, and percent-encode reserved characters in a password "
            "(urllib.parse.quote(password, safe=''))",
            data={"provider": spec.name},
        )
    late = overdue(req, slack=0.01) if req is not None else None
    if isinstance(exc, httpx.TimeoutException) and late is not None:
        return late
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutError(
            f"{spec.name} did not answer in time ({type(exc).__name__}); raise the request's "
            "timeout or add c.with_retry",
            data={"provider": spec.name},
        )
    where = ""
    if req is not None:
        with contextlib.suppress(Exception):  # naming the server must not fail the error
            where = f" at {mask_url(base_of(spec, req))}"
    return ConnectionError(
        redact(
            f"could not talk to {spec.name}{where}: {type(exc).__name__}: {exc}; check base_url "
            "and the network, or add c.with_retry",
            hidden,
        ),
        data={"provider": spec.name},
    )


def _reason(exc: Exception) -> str:
    """httpx's reason with what it quotes left out (``Invalid port: '...'`` -> ``Invalid port``).

    >>> _reason(httpx.InvalidURL("Invalid port: 'pa'"))
    'Invalid port'
    """
    return re.sub(r"\s*:?\s*'[^']*'", "", str(exc)).strip() or type(exc).__name__


def _sent_credentials(sent: httpx.Headers | None) -> list[str]:
    """The credential headers a request went out with: a signature made for this attempt
    (SigV4's ``Authorization``), a session token; ``secrets`` cannot know them in advance."""
    return [t for k, v in (sent or {}).items() if is_credential(k) for t in _credential(v)]


def status_error(
    spec: Provider,
    req: Request,
    status: int,
    headers: httpx.Headers,
    content: bytes,
    sent: httpx.Headers | None = None,
) -> ProviderError:
    """Return the error for an HTTP *status* >= 400 answer to *req* (its kind from the status
    and the provider's error body); every secret sent (*sent*: the request's headers) masked."""
    hidden = secrets(spec, req) + _sent_credentials(sent)
    return error_from_response(
        spec.name, status, dict(headers), content, now=time.time(), secrets=hidden
    )


def decode_failure(spec: Provider, req: Request, what: str, exc: Exception) -> Exception:
    """Return the error to raise for *exc*, raised while decoding *spec*'s answer: a Conduit
    error as it is, anything else (a codec meeting an answer of the wrong shape) as a
    malformed-answer ``ProviderError``; the request's secrets masked either way."""
    err = exc if isinstance(exc, ConduitError) else malformed(spec.name, what, None, exc)
    if err is not exc:
        err.__cause__ = exc  # raised later (a stream's decoder raises it on the next call)
    return redact_error(err, secrets(spec, req))  # type: ignore[return-value]


def json_body(spec: Provider, response: httpx.Response) -> Any:
    """Return *response*'s JSON body; a body that is not JSON is a ``ProviderError`` quoting it."""
    try:
        return json.loads(response.content)
    except ValueError:
        raise ProviderError(
            f"{spec.name} answered HTTP {response.status_code} with a body that is not JSON: "
            f"{response.content[:200]!r}",
            provider=spec.name,
            status_code=response.status_code,
            body=response.content[:2000].decode("utf-8", "replace"),
        ) from None


def post(spec: Provider, req: Request, url: str, headers: dict[str, str], body: bytes) -> Any:
    """POST *body* for *req* and return the response (the sync effect shell)."""
    try:
        return client().post(_parsed(url), content=body, headers=headers, timeout=_timeout(req))
    except TRANSPORT_ERRORS as exc:
        raise transport_error(spec, exc, req) from exc


async def apost(
    spec: Provider, req: Request, url: str, headers: dict[str, str], body: bytes
) -> Any:
    """The async twin of :func:`post`."""
    try:
        return await (await aclient()).post(
            _parsed(url), content=body, headers=headers, timeout=_timeout(req)
        )
    except TRANSPORT_ERRORS as exc:
        raise transport_error(spec, exc, req) from exc


def _answer(spec: Provider, req: Request, r: httpx.Response) -> Any:
    if r.status_code >= 400:
        raise status_error(spec, req, r.status_code, r.headers, r.content, r.request.headers)
    return json_body(spec, r)


def _post(spec: Provider, req: Request, url: str, body: bytes) -> Effect:
    args = (spec, req, url, _sent(spec, req, url, body), body)
    return Effect(partial(post, *args), partial(apost, *args))


def call_flow(spec: Provider, req: Request) -> Flow:
    """Yield the POST of one chat call for *req* as an Effect; return the decoded context."""
    r = yield _post(spec, req, chat_url(spec, req, False), _body(spec.encode(req, False)))
    try:
        return spec.decode(req, _answer(spec, req, r), spec.name)
    except Exception as exc:
        err = decode_failure(spec, req, "chat completion", exc)
        if err is exc:
            raise
        raise err from exc


def embed_flow(spec: Provider, req: Request) -> Flow:
    """Yield the POST of one embedding request as an Effect; return the decoded context."""
    assert spec.encode_embed and spec.decode_embed, "wire() checks this"
    url = embed_url(spec, req)
    r = yield _post(spec, req, url, _body(spec.encode_embed(req)))
    try:
        return spec.decode_embed(req, _answer(spec, req, r))
    except Exception as exc:
        err = decode_failure(spec, req, "embeddings answer", exc)
        if err is exc:
            raise
        raise err from exc


def open_stream(spec: Provider, req: Request) -> Iterator[bytes]:
    """Yield the raw bytes of a streamed chat call (the sync stream shell)."""
    url, headers, body = prepare(spec, req, True)
    try:
        with client().stream(
            "POST", _parsed(url), content=body, headers=headers, timeout=_timeout(req)
        ) as r:
            if r.status_code >= 400:
                raise status_error(spec, req, r.status_code, r.headers, r.read(), r.request.headers)
            yield from r.iter_bytes()
    except TRANSPORT_ERRORS as exc:
        raise transport_error(spec, exc, req) from exc


async def aopen_stream(spec: Provider, req: Request) -> AsyncIterator[bytes]:
    """The async twin of :func:`open_stream`."""
    url, headers, body = prepare(spec, req, True)
    try:
        async with (await aclient()).stream(
            "POST", _parsed(url), content=body, headers=headers, timeout=_timeout(req)
        ) as r:
            if r.status_code >= 400:
                raise status_error(
                    spec, req, r.status_code, r.headers, await r.aread(), r.request.headers
                )
            async for chunk in r.aiter_bytes():
                yield chunk
    except TRANSPORT_ERRORS as exc:
        raise transport_error(spec, exc, req) from exc


def decoder(spec: Provider, req: Request) -> Decoder:
    """Return the stream decoder for *spec*'s server-sent events."""
    guard = partial(decode_failure, spec, req, "stream event")
    start = spec.stream_start(spec.name)
    steps, end = spec.stream_steps, spec.stream_end
    return Decoder(req, start, steps, end, sse=True, guard=guard, framing=spec.framing)


def preview(spec: Provider, req: Request, stream: bool = False) -> dict[str, Any]:
    """Return the HTTP request a call for *req* would send, without sending it: method, URL,
    headers with every secret masked, and the JSON body (of an embedding request, when *req*
    has ``"input"``). A missing key is reported under ``"missing"`` rather than raised; a
    signature made at send time (SigV4) is not computed: its header reads ``(signed when
    sent)`` (a header the request already carries, a Bedrock API key's, is masked)."""
    if peek(req, "input") is None:
        url, body = chat_url(spec, req, stream), spec.encode(req, stream)
    elif spec.encode_embed is None:
        raise ValidationError(f"{spec.name} has no embeddings: there is no wire request to show")
    else:
        url, body = embed_url(spec, req), spec.encode_embed(req)
    out: dict[str, Any] = {"provider": spec.name, "method": "POST", "url": mask_url(url)}
    try:
        headers = request_headers(spec, req)
    except AuthenticationError as exc:
        headers = {"Content-Type": "application/json", **spec.headers}
        out["missing"] = str(exc)
    hidden = secrets(spec, req)
    masked = {k: "***" if is_credential(k) else redact(str(v), hidden) for k, v in headers.items()}
    if spec.sign is not None and not any(k.lower() == "authorization" for k in headers):
        masked["Authorization"] = "(signed when sent)"  # SigV4: a bearer key is not signed
    return {**out, "headers": masked, "body": body}


def wire(spec: Provider) -> Wire:
    """Return the :class:`Wire` the exchange uses to talk to *spec*'s service."""
    return Wire(
        preview=partial(preview, spec),
        name=spec.name,
        call=partial(call_flow, spec),
        open=partial(open_stream, spec),
        aopen=partial(aopen_stream, spec),
        decoder=partial(decoder, spec),
        embed=partial(embed_flow, spec) if spec.embed_path or spec.embed_url else None,
    )
