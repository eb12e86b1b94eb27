"""Embeddings as requests: build one, read its vectors; pure functions over frozen maps.

An embedding request is a request whose texts are under ``"input"``; the provider's
``<p>_embed`` handler answers it with a context whose ``response`` holds the vectors as
base64 rows of little-endian float32 (the form OpenAI sends with ``encoding_format=base64``).
That keeps the response plain data (it caches, replays and compares like any other) and makes
:func:`vectors` one ``numpy.frombuffer`` over the joined rows.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from pyrsistent import PMap, pmap, pvector

from conduit._types import Request
from conduit.errors import ShapeError, ValidationError, want_list
from conduit.request import as_request, request

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Embeddings",
    "as_embeddings",
    "embedding_request",
    "embedding_response",
    "encode_rows",
    "vectors",
]


def embedding_request(model: str, texts: Sequence[str], **settings: Any) -> Request:
    """Return a request embedding *texts* with *model* (``"provider:model"`` dispatches).

    Connection settings stay at the top level; other keywords (``dimensions``, ...) are options.

    >>> req = embedding_request("text-embedding-3-small", ["a", "b"], dimensions=256)
    >>> list(req["input"]), req["options"]["dimensions"]
    (['a', 'b'], 256)
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ValidationError(
            "embedding_request takes a list of texts; wrap a single text in a list: "
            f"c.embedding_request(model, [text]), got {type(texts).__name__}"
        )
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValidationError(
            f"input[{bad[0]}] is a {type(texts[bad[0]]).__name__}; every text to embed is a str"
        )
    return request(model, (), **settings).set("input", pvector(texts))


def encode_rows(rows: Any) -> tuple[str, ...]:
    """Return each row of *rows* (floats) as base64 little-endian float32.

    >>> encode_rows([[1.0, 0.0]])
    ('AACAPwAAAAA=',)
    """
    import numpy as np

    matrix = np.asarray(rows, dtype="<f4")
    if matrix.ndim == 1:
        matrix = matrix.reshape(len(matrix) and 1, -1)
    return tuple(base64.b64encode(row.tobytes()).decode("ascii") for row in matrix)


#: The largest float32; NaN and infinity are not float32 numbers a decoder accepts either.
FLOAT32_MAX = 3.4028234663852886e38


def number_row(value: Any, where: str) -> Sequence[Any]:
    """Return *value*, one embedding given as numbers, if it is a list of finite float32
    numbers; else a :class:`~conduit.errors.ShapeError` naming *where* (for the codecs).

    >>> number_row([0.5, 1], "data[0]")
    [0.5, 1]
    >>> number_row([1e300], "data[0]")
    Traceback (most recent call last):
    conduit.errors.ShapeError: data[0] holds something other than float32 numbers
    """
    row: Sequence[Any] = want_list(value, where)
    if not all(type(x) in (int, float) and abs(x) <= FLOAT32_MAX for x in row):
        raise ShapeError(f"{where} holds something other than float32 numbers")
    return row


def one_width(widths: Any, where: str) -> None:
    """Raise a :class:`~conduit.errors.ShapeError` unless every row of *where* has one width.

    >>> one_width([3, 3], "embeddings")
    >>> one_width([3, 2], "embeddings")
    Traceback (most recent call last):
    conduit.errors.ShapeError: embeddings holds rows of different lengths
    """
    if len(set(widths)) > 1:
        raise ShapeError(f"{where} holds rows of different lengths")


def one_per_text(rows: int, req: Request) -> None:
    """Raise a :class:`~conduit.errors.ShapeError` unless an answer's *rows* are one per text
    the embedding request *req* sent (a short answer must not pair vectors with wrong texts).

    >>> one_per_text(2, embedding_request("m", ["a", "b"]))
    >>> one_per_text(1, embedding_request("m", ["a", "b"]))
    Traceback (most recent call last):
    conduit.errors.ShapeError: 1 embeddings for 2 texts
    """
    sent = len(req["input"])
    if rows != sent:
        raise ShapeError(f"{rows} embeddings for {sent} texts")


def embedding_response(model: str, rows: Any, usage: Mapping[str, Any]) -> PMap[str, Any]:
    """Return the response of an embedding call: base64 rows (strings pass through), usage.

    >>> embedding_response("m", [[1.0, 0.0]], {})["embeddings"]
    pvector(['AACAPwAAAAA='])
    """
    if len(rows) and not isinstance(rows[0], str):
        rows = encode_rows(rows)
    return pmap({"model": model, "embeddings": pvector(rows), "usage": pmap(usage)})


def vectors(ctx: Any) -> np.ndarray[Any, Any]:
    """Return the float32 matrix (one row per input text, read-only) of an embedding context.

    >>> import conduit as c
    >>> ctx = c.mock_embed(c.embedding_request("mock:any", ["a", "b"]))
    >>> c.vectors(ctx).shape
    (2, 16)
    """
    import numpy as np

    frozen = as_request(ctx) if not isinstance(ctx, PMap) else ctx
    resp = frozen.get("response")
    if resp is None or "embeddings" not in resp:
        raise ValidationError(
            "this context holds no embeddings: pass an embedding request through an embed "
            "handler first, e.g. c.embed(c.embedding_request(model, texts))"
        )
    rows = resp["embeddings"]
    if not rows:
        return _read_only(np.zeros((0, 0), dtype=np.float32))
    try:
        decoded = [base64.b64decode(r, validate=True) for r in rows]
    except (binascii.Error, TypeError, ValueError) as exc:
        raise ValidationError(
            f"this context's embeddings are not base64 rows of float32 numbers ({exc}): build "
            "the response with conduit.embeddings.embedding_response, or re-run the embed call"
        ) from None
    widths = {len(d) for d in decoded}
    if len(widths) != 1 or next(iter(widths)) % 4:
        raise ValidationError(
            "this context's embedding rows differ in length or are not float32 (4 bytes a "
            "number): the response was changed or cut; re-run the embed call"
        )
    raw = b"".join(decoded)
    matrix = np.frombuffer(raw, dtype="<f4").reshape(len(rows), -1).astype(np.float32, copy=False)
    return _read_only(matrix)


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


def as_embeddings(ctx: Request) -> Embeddings:
    """Return the :class:`Embeddings` value of an embedding context (the shortcuts' result)."""
    resp = ctx["response"]
    return Embeddings(
        vectors=vectors(ctx), model=resp.get("model") or ctx["model"], usage=resp["usage"]
    )
