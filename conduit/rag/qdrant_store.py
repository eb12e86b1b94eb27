"""The Qdrant vector store: ``qdrant-client`` in local mode (a folder or ``":memory:"``) or a
server URL, the same code either way (the ``qdrant`` extra).

Dict filters with string, integer or boolean values run inside Qdrant; any other filter runs
here, over pages of candidates that grow until ``k`` match or the collection is exhausted, so a
filter still applies before the top-k cut.

.. warning:: Never open a local folder you did not create yourself. qdrant-client's local mode
   stores points as Python pickles and unpickles them on opening, so a folder from someone
   else (a download, a shared drive, a repository) can run any code as you. A server URL or
   ``":memory:"`` is safe; so are Conduit's own files (``save_store``, ``SQLiteStore``),
   which hold data only.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pyrsistent import PMap, PVector, pvector

from conduit._data import freeze_map, thaw
from conduit.errors import ConduitError
from conduit.rag.index import Filter, check_dimensions, check_metric, hits_from, matches

__all__ = ["QdrantStore", "point_id"]

_FIELDS = ("id", "text", "metadata")


def _client(location: Any) -> Any:
    try:
        from qdrant_client import QdrantClient
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConduitError(
            "QdrantStore needs the qdrant extra: pip install 'conduit-llm[qdrant]'"
        ) from None
    if not isinstance(location, str):
        return location  # a client made by the caller
    if location.startswith(("http://", "https://")):
        return QdrantClient(url=location)
    if location != ":memory:":
        return QdrantClient(path=location)
    return QdrantClient(location=location)


def point_id(doc_id: str) -> str:
    """Return the Qdrant point id of the document *doc_id* (a UUID derived from it).

    >>> point_id("a.md#0") == point_id("a.md#0") != point_id("a.md#1")
    True
    """
    return str(uuid.uuid5(uuid.NAMESPACE_URL, doc_id))


def _pushed_down(flt: Filter) -> tuple[Any, bool]:
    """The part of a dict filter Qdrant can run itself (exact string, integer, boolean values),
    and whether that is the whole filter."""
    from qdrant_client import models

    if not isinstance(flt, Mapping):
        return None, flt is None
    must: list[Any] = [
        models.FieldCondition(key=f"metadata.{key}", match=models.MatchValue(value=value))
        for key, value in flt.items()
        if isinstance(value, str | int)
    ]
    return (models.Filter(must=must) if must else None), len(must) == len(flt)


class QdrantStore:
    """A Qdrant collection (a :class:`VectorStore`): ``QdrantStore(":memory:")``, a local folder,
    a server URL, or a ``QdrantClient``; changes in place.

    A local folder is unpickled when opened: open only folders you created (see the module
    docstring); never one from an untrusted source.
    """

    def __init__(
        self, location: Any = ":memory:", collection: str = "conduit", metric: str = "cosine"
    ) -> None:
        self.client = _client(location)
        self.collection, self.metric = collection, check_metric(metric)

    def _dimensions(self) -> int | None:
        if not self.client.collection_exists(self.collection):
            return None
        return int(self.client.get_collection(self.collection).config.params.vectors.size)

    def upsert(self, docs: Sequence[PMap[str, Any]], vectors: np.ndarray[Any, Any]) -> QdrantStore:
        """Insert or replace *docs* with their *vectors*; return this store."""
        from qdrant_client import models

        if not len(docs):
            return self
        held, dim = self._dimensions(), int(vectors.shape[1])
        check_dimensions(held, dim, adding=True)
        if held is None:
            distance = models.Distance.COSINE if self.metric == "cosine" else models.Distance.DOT
            self.client.create_collection(
                self.collection, vectors_config=models.VectorParams(size=dim, distance=distance)
            )
        points = [
            models.PointStruct(
                id=point_id(d["id"]),
                vector=[float(x) for x in v],
                payload={"id": d["id"], "text": d["text"], "metadata": thaw(d["metadata"])},
            )
            for d, v in zip(docs, vectors, strict=True)
        ]
        self.client.upsert(self.collection, points=points)
        return self

    def delete(self, ids: Sequence[str]) -> QdrantStore:
        """Remove the documents *ids*; return this store."""
        from qdrant_client import models

        if self.client.collection_exists(self.collection):
            self.client.delete(
                self.collection,
                points_selector=models.PointIdsList(points=[point_id(i) for i in ids]),
            )
        return self

    def search(self, vector: np.ndarray[Any, Any], k: int, flt: Filter) -> PVector[Any]:
        """Return the *k* best hits for *vector*, the filter applied before the top-k cut."""
        held = self._dimensions()
        if held is None:
            return pvector()
        check_dimensions(held, int(vector.shape[0]), adding=False)
        (inside, whole), query = _pushed_down(flt), [float(x) for x in vector]
        limit = k if whole else 4 * k
        while True:  # grow the page until k candidates pass the filter, or none are left
            found = self.client.query_points(
                self.collection, query=query, limit=limit, query_filter=inside
            ).points
            docs = [freeze_map({key: (p.payload or {})[key] for key in _FIELDS}) for p in found]
            kept = [
                (d, p.score)
                for d, p in zip(docs, found, strict=True)
                if matches(flt, d["metadata"])
            ]
            if len(kept) >= k or len(found) < limit:
                return hits_from([d for d, _ in kept[:k]], [s for _, s in kept[:k]])
            limit *= 4

    def __len__(self) -> int:
        if not self.client.collection_exists(self.collection):
            return 0
        return int(self.client.count(self.collection).count)

    def __repr__(self) -> str:
        return f"QdrantStore(collection={self.collection!r})"
