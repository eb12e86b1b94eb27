"""The imperative shell shared by every HTTP provider: pooled clients, send/asend, streams.

Nothing here decides anything about a provider's format: that is the codec's job. This module
reads the API key (request, else environment), performs the exchange, and maps transport
failures and HTTP errors to Conduit's errors.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import os
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import attrs
import httpx

from conduit._data import reveal
from conduit._drive import Done, check_deadline, deadline_error, remaining
from conduit._types import Request
from conduit.dispatch import reroute
from conduit.errors import (
    AuthenticationError,
    ConnectionError,
    ProviderError,
    TimeoutError,
    error_from_response,
)
from conduit.middleware import acall_with, astream_with, call_with, stream_with
from conduit.sse import SSE, aiter_sse, iter_sse
from conduit.streams import collect

__all__ = [
    "Provider",
    "acall",
    "aclient",
    "aevents",
    "asend",
    "astream",
    "bearer",
    "call",
    "client",
    "events",
    "handlers",
    "prepare",
    "send",
    "stream",
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
    stream_step: Callable[[Any, SSE], tuple[Any, list[Any]]]
    stream_end: Callable[[Any], list[Any]]
    auth: Callable[[str], dict[str, str]]
    headers: Mapping[str, str] = attrs.field(factory=dict)
    base_url_env: str | None = None


def bearer(key: str) -> dict[str, str]:
    """Return the ``Authorization`` header for a bearer token."""
    return {"Authorization": f"Bearer {key}"}


def _api_key(spec: Provider, req: Request) -> str | None:
    key = reveal(req.get("api_key"))
    if key:
        return key
    if spec.env_key and os.environ.get(spec.env_key):
        return os.environ[spec.env_key]
    if spec.env_key and not req.get("base_url"):
        raise AuthenticationError(
            f"no API key for {spec.name}: set the {spec.env_key} environment variable or pass "
            f"api_key=... to c.request",
            provider=spec.name,
        )
    return None  # a custom base_url (a local OpenAI-compatible server) may need no key


def prepare(spec: Provider, req: Request, stream: bool) -> tuple[str, dict[str, str], bytes]:
    """Return (url, headers, body) for *req*; reads the API key from the environment if needed."""
    base = req.get("base_url") or (spec.base_url_env and os.environ.get(spec.base_url_env))
    url = (base or spec.base_url).rstrip("/") + spec.path
    headers = {"Content-Type": "application/json", **spec.headers}
    key = _api_key(spec, req)
    if key:
        headers.update(spec.auth(key))
    headers.update(req.get("headers") or {})
    body = json.dumps(spec.encode(req, stream), separators=(",", ":")).encode()
    return url, headers, body


def _timeout(req: Request) -> Any:
    """The request's timeout, shortened to what is left before its deadline."""
    seconds = req.get("timeout")
    left = remaining(req, time.monotonic())
    if seconds is None and left is None:  # passing a Timeout costs httpx ~25 us a call
        return httpx.USE_CLIENT_DEFAULT
    limit = min(float(x) for x in (seconds, left) if x is not None)
    return httpx.Timeout(limit, connect=min(5.0, limit))


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
        closer = _closer(found)
        await closer.asend(None)
        _aclients[loop] = found
        _closers[loop] = closer
    return found


def _transport_error(spec: Provider, exc: httpx.HTTPError, req: Request | None = None) -> Exception:
    deadline = req.get("conduit/deadline") if req is not None else None
    if isinstance(exc, httpx.TimeoutException) and deadline is not None:
        now = time.monotonic()
        if now >= deadline - 0.01:
            return deadline_error(now, deadline)
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutError(
            f"{spec.name} did not answer in time ({type(exc).__name__}); raise the request's "
            "timeout or add c.with_retry",
            data={"provider": spec.name},
        )
    return ConnectionError(
        f"could not talk to {spec.name}: {type(exc).__name__}: {exc}; check base_url and the "
        "network, or add c.with_retry",
        data={"provider": spec.name},
    )


def _fail(spec: Provider, status: int, headers: httpx.Headers, content: bytes) -> ProviderError:
    return error_from_response(spec.name, status, dict(headers), content, now=time.time())


def _json(spec: Provider, response: httpx.Response) -> Any:
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


def send(spec: Provider, req: Request) -> Request:
    """Perform one chat call for *req* and return the context with its response."""
    other, req = reroute(req, spec.name, "call")
    if other is not None:
        return other(req)  # type: ignore[no-any-return]
    url, headers, body = prepare(spec, req, False)
    try:
        r = client().post(url, content=body, headers=headers, timeout=_timeout(req))
    except httpx.HTTPError as exc:
        raise _transport_error(spec, exc, req) from exc
    if r.status_code >= 400:
        raise _fail(spec, r.status_code, r.headers, r.content)
    return spec.decode(req, _json(spec, r), spec.name)


async def asend(spec: Provider, req: Request) -> Request:
    """The async twin of :func:`send`."""
    other, req = reroute(req, spec.name, "acall")
    if other is not None:
        return await other(req)  # type: ignore[no-any-return]
    url, headers, body = prepare(spec, req, False)
    try:
        r = await (await aclient()).post(url, content=body, headers=headers, timeout=_timeout(req))
    except httpx.HTTPError as exc:
        raise _transport_error(spec, exc, req) from exc
    if r.status_code >= 400:
        raise _fail(spec, r.status_code, r.headers, r.content)
    return spec.decode(req, _json(spec, r), spec.name)


def _decode_events(spec: Provider, req: Request, sses: Iterator[SSE]) -> Iterator[Any]:
    state = spec.stream_start(spec.name)
    seen: list[Any] = []
    deadline = req.get("conduit/deadline")
    for sse in sses:
        if deadline is not None:
            check_deadline(req, time.monotonic())
        state, out = spec.stream_step(state, sse)
        seen.extend(out)
        yield from out
    end = spec.stream_end(state)
    seen.extend(end)
    yield from end
    yield Done(req.update({"response": collect(seen), "conduit/events": tuple(seen)}))


def events(spec: Provider, req: Request) -> Iterator[Any]:
    """Yield the Conduit events of a streamed chat call, then :class:`Done`."""
    other, req = reroute(req, spec.name, "stream")
    if other is not None:
        yield from other(req)
        return
    url, headers, body = prepare(spec, req, True)
    try:
        with client().stream(
            "POST", url, content=body, headers=headers, timeout=_timeout(req)
        ) as r:
            if r.status_code >= 400:
                raise _fail(spec, r.status_code, r.headers, r.read())
            yield from _decode_events(spec, req, iter_sse(r.iter_bytes()))
    except httpx.HTTPError as exc:
        raise _transport_error(spec, exc, req) from exc


async def aevents(spec: Provider, req: Request) -> AsyncIterator[Any]:
    """The async twin of :func:`events`."""
    other, req = reroute(req, spec.name, "astream")
    if other is not None:
        async for item in other(req):
            yield item
        return
    url, headers, body = prepare(spec, req, True)
    try:
        async with (await aclient()).stream(
            "POST", url, content=body, headers=headers, timeout=_timeout(req)
        ) as r:
            if r.status_code >= 400:
                raise _fail(spec, r.status_code, r.headers, await r.aread())
            state = spec.stream_start(spec.name)
            seen: list[Any] = []
            deadline = req.get("conduit/deadline")
            async for sse in aiter_sse(r.aiter_bytes()):
                if deadline is not None:
                    check_deadline(req, time.monotonic())
                state, out = spec.stream_step(state, sse)
                seen.extend(out)
                for event in out:
                    yield event
            end = spec.stream_end(state)
            seen.extend(end)
            for event in end:
                yield event
            yield Done(req.update({"response": collect(seen), "conduit/events": tuple(seen)}))
    except httpx.HTTPError as exc:
        raise _transport_error(spec, exc, req) from exc


def call(spec: Provider, req: Any) -> Request:
    """Call *spec* for *req* inside the middleware recorded on it."""
    return call_with(functools.partial(send, spec), req)


async def acall(spec: Provider, req: Any) -> Request:
    """The async twin of :func:`call`."""
    return await acall_with(functools.partial(asend, spec), req)


def stream(spec: Provider, req: Any) -> Iterator[Any]:
    """Stream *spec*'s answer to *req* as events, inside the middleware recorded on it."""
    return stream_with(functools.partial(events, spec), req)


def astream(spec: Provider, req: Any) -> AsyncIterator[Any]:
    """The async twin of :func:`stream`."""
    return astream_with(functools.partial(aevents, spec), req)


def handlers(
    spec: Provider, module: str, title: str
) -> tuple[
    Callable[[Any], Request],
    Callable[[Any], Awaitable[Request]],
    Callable[[Any], Iterator[Any]],
    Callable[[Any], AsyncIterator[Any]],
]:
    """Return *spec*'s ``call``, ``acall``, ``stream`` and ``astream`` handlers.

    Each is named ``<provider>_<kind>`` in *module*, so that once the module binds it to that
    name it pickles by reference (Dask, multiprocessing) like a function written there.
    """

    def call_(req: Any) -> Request:
        return call(spec, req)

    async def acall_(req: Any) -> Request:
        return await acall(spec, req)

    def stream_(req: Any) -> Iterator[Any]:
        return stream(spec, req)

    def astream_(req: Any) -> AsyncIterator[Any]:
        return astream(spec, req)

    docs = {
        call_: f"Call {title} for *req*, inside its middleware; return the context.",
        acall_: f"Call {title} for *req* (async), inside its middleware; return the context.",
        stream_: f"Stream the answer of {title} to *req* as Conduit events.",
        astream_: f"Stream the answer of {title} to *req* as Conduit events (async).",
    }
    for fn, doc in docs.items():
        kind = fn.__name__.rstrip("_")
        fn.__name__ = fn.__qualname__ = f"{spec.name}_{kind}"
        fn.__module__ = module
        fn.__doc__ = doc + _key_note(spec)
    return call_, acall_, stream_, astream_


def _key_note(spec: Provider) -> str:
    if spec.env_key is None:
        return " No API key is needed."
    return f" The key comes from the request's ``api_key`` or ``{spec.env_key}``."
