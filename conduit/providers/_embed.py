"""The embeddings shell: one POST, a pure decode, a read-only float32 matrix plus usage."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import httpx
from pyrsistent import PMap

from conduit.errors import ValidationError
from conduit.providers import _http
from conduit.request import request

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Embeddings", "aembed", "embed"]

Decode = Callable[[Mapping[str, Any]], tuple[list[list[float]], PMap[str, Any]]]
Encode = Callable[[str, Sequence[str], Mapping[str, Any]], dict[str, Any]]


def _read_only(rows: Any) -> np.ndarray[Any, Any]:
    import numpy as np

    matrix = np.asarray(rows, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix.reshape(0 if matrix.size == 0 else 1, -1)
    matrix.setflags(write=False)
    return matrix


@attrs.frozen(kw_only=True)
class Embeddings:
    """Vectors for texts: ``vectors`` (n by d float32, read-only), ``model`` and ``usage``."""

    vectors: np.ndarray[Any, Any] = attrs.field(eq=False, converter=_read_only)
    model: str
    usage: PMap[str, Any]


def _prepare(
    spec: _http.Provider,
    path: str,
    encode: Encode,
    model: str,
    texts: Sequence[str],
    settings: dict[str, Any],
) -> tuple[str, dict[str, str], bytes]:
    if isinstance(texts, str):
        raise ValidationError("embed takes a list of texts; wrap a single text in a list")
    conn = {k: settings.pop(k) for k in ("api_key", "base_url", "headers") if k in settings}
    req = request(model, **conn)
    url, headers, _ = _http.prepare(attrs.evolve(spec, path=path), req, False)
    body = json.dumps(encode(model, list(texts), settings)).encode()
    return url, headers, body


def embed(
    spec: _http.Provider,
    path: str,
    encode: Encode,
    decode: Decode,
    model: str,
    texts: Sequence[str],
    **settings: Any,
) -> Embeddings:
    """Embed *texts* with *model* at *spec*'s service."""
    url, headers, body = _prepare(spec, path, encode, model, texts, settings)
    try:
        r = _http.client().post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise _http._transport_error(spec, exc) from exc
    return _finish(spec, model, decode, r)


async def aembed(
    spec: _http.Provider,
    path: str,
    encode: Encode,
    decode: Decode,
    model: str,
    texts: Sequence[str],
    **settings: Any,
) -> Embeddings:
    """The async twin of :func:`embed`."""
    url, headers, body = _prepare(spec, path, encode, model, texts, settings)
    try:
        r = await (await _http.aclient()).post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise _http._transport_error(spec, exc) from exc
    return _finish(spec, model, decode, r)


def _finish(spec: _http.Provider, model: str, decode: Decode, r: httpx.Response) -> Embeddings:
    if r.status_code >= 400:
        raise _http._fail(spec, r.status_code, r.headers, r.content)
    vectors, usage = decode(_http._json(spec, r))
    return Embeddings(vectors=vectors, model=model, usage=usage)
