"""Vector stores behind one set of functions: ``add_documents``, ``search``, ``delete_documents``.

- :class:`MemoryStore` is an immutable value: adding or deleting returns a new store. It is
  saved to and loaded from one file (``save_store``/``load_store``).
- :class:`SQLiteStore` keeps documents and vectors in one SQLite file; it changes in place.
- :class:`QdrantStore` uses ``qdrant-client`` (local mode in a folder or ``":memory:"``, or a
  server URL): the same code either way.

Filters (a dict of metadata values that must match, or a function of the metadata) apply
before the top-k cut, so ``k`` results come back whenever ``k`` documents match.
"""

from __future__ import annotations

import io
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from pyrsistent import PMap, PVector, pvector

from conduit._data import freeze_map, thaw
from conduit.errors import ValidationError
from conduit.rag.documents import as_documents
from conduit.rag.embed import Embedder, normalize

__all__ = [
    "MemoryStore",
    "QdrantStore",
    "SQLiteStore",
    "add_documents",
    "delete_documents",
    "hits_from",
    "load_store",
    "memory_store",
    "save_store",
    "search",
    "top_k",
]

Filter = Mapping[str, Any] | Callable[[Mapping[str, Any]], bool] | None
METRICS = ("cosine", "dot")


def _read_only(matrix: Any) -> np.ndarray[Any, Any]:
    m = np.array(matrix, dtype=np.float32, copy=True)
    if m.ndim != 2:
        m = m.reshape(0, 0) if m.size == 0 else m.reshape(1, -1)
    m.setflags(write=False)
    return m


@attrs.frozen(kw_only=True)
class MemoryStore:
    """Documents and their vectors, in memory; an immutable value."""

    documents: tuple[PMap[str, Any], ...] = ()
    vectors: np.ndarray[Any, Any] = attrs.field(
        eq=False, converter=_read_only, factory=lambda: np.zeros((0, 0), np.float32)
    )
    metric: str = "cosine"

    def __len__(self) -> int:
        return len(self.documents)


def memory_store(metric: str = "cosine") -> MemoryStore:
    """Return an empty in-memory store scoring by *metric* (``cosine`` or ``dot``).

    >>> len(memory_store())
    0
    """
    if metric not in METRICS:
        raise ValidationError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    return MemoryStore(metric=metric)


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


def _matches(flt: Filter, metadata: Mapping[str, Any]) -> bool:
    if flt is None:
        return True
    if callable(flt):
        return bool(flt(metadata))
    return all(metadata.get(k) == v for k, v in flt.items())


def hits_from(docs: Sequence[Any], scores: Iterable[float]) -> PVector[Any]:
    """Return hit maps (``document``, ``score``, ``rank``) in the given order."""
    return pvector(
        freeze_map({"document": d, "score": float(s), "rank": i})
        for i, (d, s) in enumerate(zip(docs, scores, strict=True))
    )


def _embed_docs(docs: PVector[Any], embed: Embedder) -> np.ndarray[Any, Any]:
    texts = [d["text"] for d in docs]
    return np.asarray(embed(texts), dtype=np.float32) if texts else np.zeros((0, 0), np.float32)


def _memory_add(
    store: MemoryStore, docs: PVector[Any], vectors: np.ndarray[Any, Any]
) -> MemoryStore:
    if store.metric == "cosine":
        vectors = normalize(vectors)
    if len(store) and vectors.shape[1] != store.vectors.shape[1]:
        raise ValidationError(
            f"the embedder gives {vectors.shape[1]} dimensions but the store holds "
            f"{store.vectors.shape[1]}: use the same embedder for a store"
        )
    new_ids = {d["id"] for d in docs}
    keep = [i for i, d in enumerate(store.documents) if d["id"] not in new_ids]
    kept_vectors = store.vectors[keep] if len(store) else np.zeros((0, vectors.shape[1]))
    return attrs.evolve(
        store,
        documents=tuple(store.documents[i] for i in keep) + tuple(docs),
        vectors=np.vstack([kept_vectors, vectors]) if len(keep) else vectors,
    )


def add_documents(
    store: Any,
    docs: Any,
    embed: Embedder,
    *,
    batch_size: int = 512,
    progress: Callable[[int, int], Any] | None = None,
) -> Any:
    """Return *store* with *docs* added (same id: replaced); a memory store is a new value.

    *progress* is called with (done, total) after each batch of *batch_size* documents.

    >>> from conduit.rag.embed import hash_embedder
    >>> store = add_documents(memory_store(), ["cats purr", "dogs bark"], hash_embedder(64))
    >>> len(store), [h["document"]["text"] for h in search(store, "purring cats", 1,
    ...                                                     embed=hash_embedder(64))]
    (2, ['cats purr'])
    """
    frozen = as_documents(docs)
    for start in range(0, len(frozen), batch_size):
        batch = pvector(frozen[start : start + batch_size])
        vectors = _embed_docs(batch, embed)
        if isinstance(store, MemoryStore):
            store = _memory_add(store, batch, vectors)
        else:
            store.upsert(batch, vectors)
        if progress is not None:
            progress(min(start + batch_size, len(frozen)), len(frozen))
    return store


def delete_documents(store: Any, ids: Iterable[str]) -> Any:
    """Return *store* without the documents *ids* (a memory store is a new value)."""
    gone = set(ids)
    if isinstance(store, MemoryStore):
        keep = [i for i, d in enumerate(store.documents) if d["id"] not in gone]
        return attrs.evolve(
            store,
            documents=tuple(store.documents[i] for i in keep),
            vectors=store.vectors[keep] if len(store) else store.vectors,
        )
    store.delete(sorted(gone))
    return store


def _query_vector(query: Any, embed: Embedder | None, metric: str) -> np.ndarray[Any, Any]:
    if isinstance(query, str):
        if embed is None:
            raise ValidationError("searching with text needs embed=: the store's embedder")
        vec = np.asarray(embed([query]), dtype=np.float32)[0]
    else:
        vec = np.asarray(query, dtype=np.float32).reshape(-1)
    out: np.ndarray[Any, Any] = normalize(vec)[0] if metric == "cosine" else vec
    return out


def search(
    store: Any, query: Any, k: int = 4, *, embed: Embedder | None = None, filter: Filter = None
) -> PVector[Any]:
    """Return the *k* best hits for *query* (text with ``embed=``, or a vector), best first."""
    if k < 1:
        raise ValidationError(f"k must be at least 1, got {k}")
    metric = getattr(store, "metric", "cosine")
    vector = _query_vector(query, embed, metric)
    if not isinstance(store, MemoryStore):
        return store.search(vector, k, filter)  # type: ignore[no-any-return]
    return _search_matrix(store.documents, store.vectors, vector, k, filter)


def _search_matrix(
    documents: Sequence[Any],
    vectors: np.ndarray[Any, Any],
    vector: np.ndarray[Any, Any],
    k: int,
    flt: Filter,
) -> PVector[Any]:
    if not len(documents):
        return pvector()
    if vectors.shape[1] != vector.shape[0]:
        raise ValidationError(
            f"the query has {vector.shape[0]} dimensions but the store holds "
            f"{vectors.shape[1]}: search with the store's embedder"
        )
    scores = vectors @ vector
    if flt is not None:
        allowed = np.array([_matches(flt, d["metadata"]) for d in documents])
        scores = np.where(allowed, scores, -np.inf)
        k = min(k, int(allowed.sum()))
    order = top_k(scores, k)
    return hits_from([documents[i] for i in order], scores[order])


def save_store(store: MemoryStore, path: str | Path) -> Path:
    """Write *store* to one file (``.npz``: the vectors, and the documents as JSON)."""
    target = Path(path)
    meta = json.dumps({"metric": store.metric, "documents": [thaw(d) for d in store.documents]})
    buffer = io.BytesIO()
    np.savez(buffer, vectors=store.vectors, meta=np.frombuffer(meta.encode(), dtype=np.uint8))
    target.write_bytes(buffer.getvalue())
    return target


def load_store(path: str | Path) -> MemoryStore:
    """Read a store written by :func:`save_store`."""
    with np.load(Path(path), allow_pickle=False) as data:
        meta = json.loads(data["meta"].tobytes().decode())
        return MemoryStore(
            documents=tuple(freeze_map(d) for d in meta["documents"]),
            vectors=data["vectors"],
            metric=meta["metric"],
        )


class SQLiteStore:
    """Documents and float32 vectors in one SQLite file; searched with numpy in memory."""

    def __init__(self, path: str | Path, metric: str = "cosine") -> None:
        if metric not in METRICS:
            raise ValidationError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
        self.path, self.metric = str(path), metric
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS conduit_docs (id TEXT PRIMARY KEY, "
            "text TEXT NOT NULL, metadata TEXT NOT NULL, vector BLOB NOT NULL)"
        )
        self._cache: tuple[list[PMap[str, Any]], np.ndarray[Any, Any]] | None = None

    def upsert(self, docs: Sequence[Any], vectors: np.ndarray[Any, Any]) -> None:
        """Insert or replace *docs* with their *vectors*."""
        if self.metric == "cosine":
            vectors = normalize(vectors)
        rows = [
            (
                d["id"],
                d["text"],
                json.dumps(thaw(d["metadata"])),
                np.asarray(v, dtype=np.float32).tobytes(),
            )
            for d, v in zip(docs, vectors, strict=True)
        ]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO conduit_docs VALUES (?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
            self._cache = None

    def delete(self, ids: Sequence[str]) -> None:
        """Remove the documents *ids*."""
        with self._lock:
            self._db.executemany("DELETE FROM conduit_docs WHERE id = ?", [(i,) for i in ids])
            self._cache = None

    def _load(self) -> tuple[list[PMap[str, Any]], np.ndarray[Any, Any]]:
        with self._lock:
            if self._cache is None:
                rows = self._db.execute(
                    "SELECT id, text, metadata, vector FROM conduit_docs ORDER BY rowid"
                ).fetchall()
                docs = [
                    freeze_map({"id": i, "text": t, "metadata": json.loads(m)})
                    for i, t, m, _ in rows
                ]
                vecs = (
                    np.vstack([np.frombuffer(v, dtype=np.float32) for *_, v in rows])
                    if rows
                    else np.zeros((0, 0), np.float32)
                )
                self._cache = (docs, vecs)
            return self._cache

    def search(self, vector: np.ndarray[Any, Any], k: int, flt: Filter) -> PVector[Any]:
        """Return the *k* best hits for *vector*."""
        docs, vecs = self._load()
        return _search_matrix(docs, vecs, vector, k, flt)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM conduit_docs").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"


class QdrantStore:
    """A Qdrant collection: ``QdrantStore(":memory:")``, a local folder, or a server URL."""

    def __init__(
        self, location: Any = ":memory:", collection: str = "conduit", metric: str = "cosine"
    ) -> None:
        try:
            from qdrant_client import QdrantClient
        except ImportError:  # pragma: no cover - depends on the environment
            from conduit.errors import ConduitError

            raise ConduitError(
                "QdrantStore needs the qdrant extra: pip install 'conduit-llm[qdrant]'"
            ) from None
        if metric not in METRICS:
            raise ValidationError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
        if isinstance(location, str) and location.startswith(("http://", "https://")):
            self.client = QdrantClient(url=location)
        elif isinstance(location, str) and location != ":memory:":
            self.client = QdrantClient(path=location)
        elif isinstance(location, str):
            self.client = QdrantClient(location=location)
        else:
            self.client = location
        self.collection, self.metric = collection, metric

    def _ensure(self, dim: int) -> None:
        from qdrant_client import models

        if not self.client.collection_exists(self.collection):
            distance = models.Distance.COSINE if self.metric == "cosine" else models.Distance.DOT
            self.client.create_collection(
                self.collection, vectors_config=models.VectorParams(size=dim, distance=distance)
            )

    @staticmethod
    def _point_id(doc_id: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, doc_id))

    def upsert(self, docs: Sequence[Any], vectors: np.ndarray[Any, Any]) -> None:
        """Insert or replace *docs* with their *vectors*."""
        from qdrant_client import models

        if not len(docs):
            return
        self._ensure(int(vectors.shape[1]))
        points = [
            models.PointStruct(
                id=self._point_id(d["id"]),
                vector=[float(x) for x in v],
                payload={"id": d["id"], "text": d["text"], "metadata": thaw(d["metadata"])},
            )
            for d, v in zip(docs, vectors, strict=True)
        ]
        self.client.upsert(self.collection, points=points)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove the documents *ids*."""
        from qdrant_client import models

        if self.client.collection_exists(self.collection):
            self.client.delete(
                self.collection,
                points_selector=models.PointIdsList(points=[self._point_id(i) for i in ids]),
            )

    def search(self, vector: np.ndarray[Any, Any], k: int, flt: Filter) -> PVector[Any]:
        """Return the *k* best hits for *vector* (dict filters run inside Qdrant)."""
        from qdrant_client import models

        if not self.client.collection_exists(self.collection):
            return pvector()
        query_filter = None
        if isinstance(flt, Mapping):
            query_filter = models.Filter(
                must=[
                    models.FieldCondition(
                        key=f"metadata.{key}", match=models.MatchValue(value=value)
                    )
                    for key, value in flt.items()
                ]
            )
        limit = k if not callable(flt) else max(k * 10, 100)
        found = self.client.query_points(
            self.collection,
            query=[float(x) for x in vector],
            limit=limit,
            query_filter=query_filter,
        ).points
        payloads: list[dict[str, Any]] = [p.payload or {} for p in found]
        docs = [
            freeze_map({"id": p["id"], "text": p["text"], "metadata": p["metadata"]})
            for p in payloads
        ]
        pairs = [
            (d, p.score)
            for d, p in zip(docs, found, strict=True)
            if not callable(flt) or flt(d["metadata"])
        ][:k]
        return hits_from([d for d, _ in pairs], [s for _, s in pairs])

    def __len__(self) -> int:
        if not self.client.collection_exists(self.collection):
            return 0
        return int(self.client.count(self.collection).count)

    def __repr__(self) -> str:
        return f"QdrantStore(collection={self.collection!r})"
