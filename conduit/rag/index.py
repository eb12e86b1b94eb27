"""Scoring a query against a matrix of document vectors: pure functions over read-only arrays.

The memory and SQLite stores both hold a matrix and search it here; any store backend that keeps
its vectors in numpy can too. Filters (metadata values that must match, or a function of the
metadata) apply before the top-k cut, so ``k`` hits come back whenever ``k`` documents match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from pyrsistent import PVector, pvector

from conduit._data import freeze_map
from conduit.errors import ValidationError

__all__ = [
    "METRICS",
    "Filter",
    "check_dimensions",
    "check_metric",
    "hits_from",
    "matches",
    "search_matrix",
    "top_k",
]

Filter = Mapping[str, Any] | Callable[[Mapping[str, Any]], bool] | None
METRICS = ("cosine", "dot")


def check_metric(metric: str) -> str:
    """Return *metric* if a store can score by it (``cosine`` or ``dot``); raise otherwise.

    >>> check_metric("dot")
    'dot'
    """
    if metric not in METRICS:
        raise ValidationError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    return metric


def check_dimensions(held: int | None, given: int, *, adding: bool) -> None:
    """Raise unless *given* dimensions fit a store holding *held* (None: an empty store).

    >>> check_dimensions(None, 3, adding=True), check_dimensions(3, 3, adding=False)
    (None, None)
    """
    if held is None or held == given:
        return
    if adding:
        raise ValidationError(
            f"the embedder gives {given} dimensions but the store holds {held}: "
            "use the same embedder for a store"
        )
    raise ValidationError(
        f"the query has {given} dimensions but the store holds {held}: "
        "search with the store's embedder"
    )


def top_k(scores: np.ndarray[Any, Any], k: int) -> np.ndarray[Any, Any]:
    """Return the indexes of the *k* highest *scores*, best first (ties: lower index first).

    >>> top_k(np.array([0.1, 0.9, 0.5, 0.9]), 3).tolist()
    [1, 3, 2]
    """
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < len(scores):
        cut = -np.partition(-scores, k - 1)[k - 1]  # the k-th best score
        above = np.flatnonzero(scores > cut)
        tied = np.flatnonzero(scores == cut)[: k - len(above)]  # ties at the cut: lower first
        part = np.concatenate([above, tied])
    else:
        part = np.arange(len(scores))
    ordered: np.ndarray[Any, Any] = part[np.lexsort((part, -scores[part]))]
    return ordered


def matches(flt: Filter, metadata: Mapping[str, Any]) -> bool:
    """Return whether *metadata* passes *flt* (None passes everything).

    >>> matches({"lang": "en"}, {"lang": "en", "topic": "geo"}), matches(lambda m: False, {})
    (True, False)
    """
    if flt is None:
        return True
    if callable(flt):
        return bool(flt(metadata))
    return all(metadata.get(k) == v for k, v in flt.items())


def hits_from(docs: Sequence[Any], scores: Iterable[float]) -> PVector[Any]:
    """Return hit maps (``document``, ``score``, ``rank``) in the given order.

    >>> [(h["document"], h["score"], h["rank"]) for h in hits_from(["a", "b"], [0.5, 0.25])]
    [('a', 0.5, 0), ('b', 0.25, 1)]
    """
    return pvector(
        freeze_map({"document": d, "score": float(s), "rank": i})
        for i, (d, s) in enumerate(zip(docs, scores, strict=True))
    )


def search_matrix(
    documents: Sequence[Any],
    vectors: np.ndarray[Any, Any],
    vector: np.ndarray[Any, Any],
    k: int,
    flt: Filter,
) -> PVector[Any]:
    """Return the *k* best hits of *vector* against the rows of *vectors* (one per document).

    >>> docs = [{"id": "a", "metadata": {}}, {"id": "b", "metadata": {"x": 1}}]
    >>> m = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    >>> [h["document"]["id"] for h in search_matrix(docs, m, np.array([1.0, 0.0]), 2, None)]
    ['a', 'b']
    >>> [h["document"]["id"] for h in search_matrix(docs, m, np.array([1.0, 0.0]), 2, {"x": 1})]
    ['b']
    """
    if not len(documents):
        return pvector()
    check_dimensions(vectors.shape[1], vector.shape[0], adding=False)
    scores = vectors @ vector
    if flt is not None:
        allowed = np.array([matches(flt, d["metadata"]) for d in documents])
        scores = np.where(allowed, scores, -np.inf)
        k = min(k, int(allowed.sum()))
    order = top_k(scores, k)
    return hits_from([documents[i] for i in order], scores[order])
