"""Embedders: functions from a list of texts to an L2-normalised float32 matrix (one row each).

``hash_embedder`` is the embedded default: feature hashing of words, word pairs and character
trigrams — deterministic, offline, no model. Provider embedders batch calls to OpenAI or Ollama.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from conduit.errors import ConduitError, ValidationError

__all__ = [
    "Embedder",
    "hash_embed",
    "hash_embedder",
    "normalize",
    "provider_embedder",
    "sentence_transformer_embedder",
]

Embedder = Callable[[Sequence[str]], np.ndarray[Any, Any]]
_WORD = re.compile(r"[a-z0-9]+")


def normalize(matrix: Any) -> np.ndarray[Any, Any]:
    """Return *matrix* as float32 rows of unit length (zero rows stay zero), read-only."""
    m = np.asarray(matrix, dtype=np.float32)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    out: np.ndarray[Any, Any] = np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)
    out.setflags(write=False)
    return out


def _features(text: str) -> dict[str, float]:
    words = _WORD.findall(text.lower())
    feats: dict[str, float] = {}
    for w in words:
        feats["w:" + w] = feats.get("w:" + w, 0.0) + 1.0
        padded = f"<{w}>"
        for i in range(len(padded) - 2):
            key = "c:" + padded[i : i + 3]
            feats[key] = feats.get(key, 0.0) + 0.25
    for a, b in itertools.pairwise(words):
        key = f"b:{a} {b}"
        feats[key] = feats.get(key, 0.0) + 0.5
    return feats


def hash_embed(texts: Sequence[str], dim: int = 384) -> np.ndarray[Any, Any]:
    """Return the hashed feature vectors of *texts* (pure, deterministic across processes).

    >>> m = hash_embed(["the cat sat", "the cat sat", "stock prices fell"], dim=64)
    >>> m.shape, m.dtype.name, float(m[0] @ m[1]) > 0.99, float(m[0] @ m[2]) < 0.5
    ((3, 64), 'float32', True, True)
    """
    if isinstance(texts, str):
        raise ValidationError("embedders take a list of texts; wrap a single text in a list")
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for feature, count in _features(text).items():
            h = zlib.crc32(feature.encode())
            sign = 1.0 if h & 0x80000000 else -1.0
            out[row, h % dim] += sign * (1.0 + math.log(count)) if count >= 1 else sign * count
    return normalize(out)


def hash_embedder(dim: int = 384) -> Embedder:
    """Return the offline feature-hashing embedder with *dim* dimensions (picklable).

    >>> embed = hash_embedder(128)
    >>> embed(["hello world"]).shape
    (1, 128)
    """
    if dim < 8:
        raise ValidationError(f"an embedding needs at least 8 dimensions, got {dim}")
    return functools.partial(hash_embed, dim=dim)


def _provider_embed(
    texts: Sequence[str],
    model: str,
    batch_size: int,
    settings: dict[str, Any],
    middleware: tuple[Any, ...] = (),
) -> np.ndarray[Any, Any]:
    from toolz import compose_left

    from conduit.embeddings import embedding_request, vectors
    from conduit.exchange import embed

    if isinstance(texts, str):
        raise ValidationError("embedders take a list of texts; wrap a single text in a list")
    prepare = compose_left(*middleware) if middleware else (lambda r: r)
    parts = [
        vectors(
            embed(prepare(embedding_request(model, list(texts[i : i + batch_size]), **settings)))
        )
        for i in range(0, len(texts), batch_size)
    ]
    return normalize(np.vstack(parts)) if parts else np.zeros((0, 0), dtype=np.float32)


def provider_embedder(
    model: str = "openai:text-embedding-3-small",
    *,
    batch_size: int = 256,
    middleware: Sequence[Any] = (),
    **settings: Any,
) -> Embedder:
    """Return an embedder calling ``"openai:..."`` or ``"ollama:..."`` in batches.

    Each batch is an embedding request: *middleware* (``c.with_retry``, ``c.with_cache(...)``,
    ``c.with_budget(...)``, ...) applies to it as to any call.

    >>> import conduit as c
    >>> embed = provider_embedder("mock:any", middleware=[c.with_retry])
    >>> embed(["a", "b"]).shape
    (2, 16)
    """
    return functools.partial(
        _provider_embed,
        model=model,
        batch_size=batch_size,
        settings=settings,
        middleware=tuple(middleware),
    )


def _st_embed(texts: Sequence[str], name: str) -> np.ndarray[Any, Any]:
    model = _st_model(name)
    return normalize(model.encode(list(texts), convert_to_numpy=True))


@functools.lru_cache(maxsize=4)
def _st_model(name: str) -> Any:
    try:
        from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]
    except ImportError:
        raise ConduitError(
            "sentence-transformer embeddings need the extra: pip install "
            "'conduit-llm[sentence-transformers]'"
        ) from None
    return SentenceTransformer(name)


def sentence_transformer_embedder(name: str = "all-MiniLM-L6-v2") -> Embedder:
    """Return an embedder running a sentence-transformers model locally (optional extra)."""
    return functools.partial(_st_embed, name=name)
