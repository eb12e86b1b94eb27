"""The vector-store protocol, and the functions over it: ``add_documents``, ``delete_documents``,
``search``.

A store is anything with a ``metric``, ``upsert``, ``delete``, ``search`` and ``len``: the
in-memory value (:mod:`conduit.rag.memory_store`), SQLite (:mod:`conduit.rag.sqlite_store`),
Qdrant (:mod:`conduit.rag.qdrant_store`), or your own. The functions here embed, normalise and
check; a store only keeps vectors and scores a ready query vector. ``upsert`` and ``delete``
return the store: a new value for an immutable store, the same object for one that changes in
place, so ``store = add_documents(store, ...)`` is right for both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, Self, TypeVar

import numpy as np
from pyrsistent import PMap, PVector, pvector

from conduit.errors import ValidationError
from conduit.rag.documents import as_documents
from conduit.rag.embed import Embedder, normalize
from conduit.rag.index import Filter

__all__ = [
    "VectorStore",
    "add_documents",
    "delete_documents",
    "query_vector",
    "search",
]


class VectorStore(Protocol):
    """What a vector store does.

    - ``metric``: ``"cosine"`` (vectors arrive L2-normalised) or ``"dot"`` (as embedded).
    - ``upsert(docs, vectors)``: insert, or replace by id, the document maps with their float32
      rows; a replaced document counts as newest. Raise ``ValidationError`` on a dimension change.
    - ``delete(ids)``: remove those ids (unknown ids are ignored).
    - ``search(vector, k, flt)``: the ``k`` best hits (``document``, ``score``, ``rank``), best
      first, after the filter (:func:`conduit.rag.index.matches`). The memory and SQLite stores
      give tied scores to the older document first; Qdrant orders ties its own way.
    - ``len(store)``: how many documents it holds, as every reader sees them now.
    """

    @property
    def metric(self) -> str: ...

    def upsert(self, docs: Sequence[PMap[str, Any]], vectors: np.ndarray[Any, Any]) -> Self: ...

    def delete(self, ids: Sequence[str]) -> Self: ...

    def search(self, vector: np.ndarray[Any, Any], k: int, flt: Filter) -> PVector[Any]: ...

    def __len__(self) -> int: ...


S = TypeVar("S", bound=VectorStore)


def _embed_docs(docs: Sequence[Any], embed: Embedder, metric: str) -> np.ndarray[Any, Any]:
    vectors = np.asarray(embed([d["text"] for d in docs]), dtype=np.float32)
    return normalize(vectors) if metric == "cosine" else vectors


def add_documents(
    store: S,
    docs: Any,
    embed: Embedder,
    *,
    batch_size: int = 512,
    progress: Callable[[int, int], Any] | None = None,
) -> S:
    """Return *store* with *docs* added (same id: replaced); a memory store is a new value.

    *progress* is called with (done, total) after each batch of *batch_size* documents.

    >>> from conduit.rag.embed import hash_embedder
    >>> from conduit.rag.memory_store import memory_store
    >>> store = add_documents(memory_store(), ["cats purr", "dogs bark"], hash_embedder(64))
    >>> len(store), [h["document"]["text"] for h in search(store, "purring cats", 1,
    ...                                                     embed=hash_embedder(64))]
    (2, ['cats purr'])
    """
    frozen = as_documents(docs)
    for start in range(0, len(frozen), batch_size):
        batch = pvector(frozen[start : start + batch_size])
        store = store.upsert(batch, _embed_docs(batch, embed, store.metric))
        if progress is not None:
            progress(min(start + batch_size, len(frozen)), len(frozen))
    return store


def delete_documents(store: S, ids: Iterable[str]) -> S:
    """Return *store* without the documents *ids* (a memory store is a new value).

    >>> from conduit.rag.embed import hash_embedder
    >>> from conduit.rag.memory_store import memory_store
    >>> store = add_documents(memory_store(), ["a", "b"], hash_embedder(8))
    >>> [d["text"] for d in delete_documents(store, [store.documents[0]["id"]]).documents]
    ['b']
    """
    return store.delete(sorted(set(ids)))


def query_vector(query: Any, embed: Embedder | None, metric: str) -> np.ndarray[Any, Any]:
    """Return the query as one float32 vector: text embedded with *embed*, or a vector as given;
    L2-normalised for the cosine metric.

    >>> query_vector([3.0, 4.0], None, "cosine").tolist(), query_vector([3, 4], None, "dot")
    ([0.6000000238418579, 0.800000011920929], array([3., 4.], dtype=float32))
    """
    if isinstance(query, str):
        if embed is None:
            raise ValidationError("searching with text needs embed=: the store's embedder")
        vec = np.asarray(embed([query]), dtype=np.float32)[0]
    else:
        vec = np.asarray(query, dtype=np.float32).reshape(-1)
    out: np.ndarray[Any, Any] = normalize(vec)[0] if metric == "cosine" else vec
    return out


def search(
    store: VectorStore,
    query: Any,
    k: int = 4,
    *,
    embed: Embedder | None = None,
    filter: Filter = None,
) -> PVector[Any]:
    """Return the *k* best hits for *query* (text with ``embed=``, or a vector), best first.

    *filter* (metadata values, or a function of the metadata) applies before the top-k cut.

    >>> from conduit.rag.memory_store import memory_store
    >>> store = add_documents(memory_store("dot"), ["a", "b"], lambda t: [[2.0, 0], [0, 1.0]])
    >>> [(h["document"]["text"], h["score"]) for h in search(store, [1.0, 1.0], 2)]
    [('a', 2.0), ('b', 1.0)]
    >>> [h["document"]["text"] for h in search(store, [1.0, 1.0], filter=lambda m: False)]
    []
    """
    if k < 1:
        raise ValidationError(f"k must be at least 1, got {k}")
    return store.search(query_vector(query, embed, store.metric), k, filter)
