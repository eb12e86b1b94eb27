"""The in-memory vector store: an immutable value, saved to and loaded from one ``.npz`` file.

Adding or deleting returns a new :class:`MemoryStore` and leaves the old one as it was, so a
store can be shared between threads, kept as a snapshot, or compared with ``==``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from pyrsistent import PMap, PVector

from conduit._data import freeze_map, thaw
from conduit.rag.index import Filter, check_dimensions, check_metric, search_matrix

__all__ = ["MemoryStore", "load_store", "memory_store", "save_store"]


def _read_only(matrix: Any) -> np.ndarray[Any, Any]:
    m = np.array(matrix, dtype=np.float32, copy=True)
    if m.ndim != 2:
        m = m.reshape(0, 0) if m.size == 0 else m.reshape(1, -1)
    m.setflags(write=False)
    return m


@attrs.frozen(kw_only=True)
class MemoryStore:
    """Documents and their vectors, in memory; an immutable value (a :class:`VectorStore`)."""

    documents: tuple[PMap[str, Any], ...] = ()
    vectors: np.ndarray[Any, Any] = attrs.field(
        eq=False, converter=_read_only, factory=lambda: np.zeros((0, 0), np.float32)
    )
    metric: str = "cosine"

    def upsert(self, docs: Sequence[PMap[str, Any]], vectors: np.ndarray[Any, Any]) -> MemoryStore:
        """Return a store with *docs* added at the end (a document with a known id replaced)."""
        if not len(docs):
            return self
        check_dimensions(
            self.vectors.shape[1] if len(self) else None, vectors.shape[1], adding=True
        )
        new_ids = {d["id"] for d in docs}
        keep = [i for i, d in enumerate(self.documents) if d["id"] not in new_ids]
        return attrs.evolve(
            self,
            documents=tuple(self.documents[i] for i in keep) + tuple(docs),
            vectors=np.vstack([self.vectors[keep], vectors]) if keep else vectors,
        )

    def delete(self, ids: Sequence[str]) -> MemoryStore:
        """Return a store without the documents *ids*."""
        gone = set(ids)
        keep = [i for i, d in enumerate(self.documents) if d["id"] not in gone]
        if len(keep) == len(self):
            return self
        return attrs.evolve(
            self, documents=tuple(self.documents[i] for i in keep), vectors=self.vectors[keep]
        )

    def search(self, vector: np.ndarray[Any, Any], k: int, flt: Filter) -> PVector[Any]:
        """Return the *k* best hits for *vector*."""
        return search_matrix(self.documents, self.vectors, vector, k, flt)

    def __len__(self) -> int:
        return len(self.documents)


def memory_store(metric: str = "cosine") -> MemoryStore:
    """Return an empty in-memory store scoring by *metric* (``cosine`` or ``dot``).

    >>> len(memory_store()), memory_store("dot").metric
    (0, 'dot')
    """
    return MemoryStore(metric=check_metric(metric))


def save_store(store: MemoryStore, path: str | Path) -> Path:
    """Write *store* to one file (``.npz``: the vectors, and the documents as JSON).

    >>> import tempfile
    >>> from conduit.rag.vector_store import add_documents
    >>> from conduit.rag.embed import hash_embedder
    >>> store = add_documents(memory_store(), ["cats purr"], hash_embedder(16))
    >>> load_store(save_store(store, Path(tempfile.mkdtemp()) / "s.npz")) == store
    True
    """
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
