"""The in-memory vector store: an immutable value, saved to and loaded from one ``.npz`` file.

Adding or deleting returns a new :class:`MemoryStore` and leaves the old one as it was, so a
store can be shared between threads, kept as a snapshot, or compared with ``==``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from pyrsistent import PMap, PVector

from conduit._data import freeze_map, thaw
from conduit._files import atomic_write, corrupt
from conduit.errors import ConduitError
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
    """Write *store* to one file (``.npz``: the vectors, and the documents as JSON), atomically.

    The file is written beside *path* under a temporary name, fsynced, then renamed over it:
    a failed or killed save leaves the previous file as it was.

    >>> import tempfile
    >>> from conduit.rag.vector_store import add_documents
    >>> from conduit.rag.embed import hash_embedder
    >>> store = add_documents(memory_store(), ["cats purr"], hash_embedder(16))
    >>> load_store(save_store(store, Path(tempfile.mkdtemp()) / "s.npz")) == store
    True
    """
    target = Path(path)
    meta = json.dumps({"metric": store.metric, "documents": [thaw(d) for d in store.documents]})
    with atomic_write(target) as out:
        np.savez(out, vectors=store.vectors, meta=np.frombuffer(meta.encode(), dtype=np.uint8))
    return target


_REMEDY = "delete it and re-run `conduit index` (or save_store), or restore it from a backup"


def load_store(path: str | Path) -> MemoryStore:
    """Read a store written by :func:`save_store`.

    The file is data only: pickled objects in it are refused, never loaded. A file that is
    not a whole store is a :class:`~conduit.errors.ConduitError` naming it and the remedy.
    """
    source = Path(path)
    if source.is_dir():
        raise ConduitError(
            f"{source} is a folder, not a store: pass the file save_store or `conduit index` "
            "wrote (conduit index writes conduit-index.npz)"
        )
    if not source.is_file():
        raise ConduitError(f"no store at {source}: build one with save_store or `conduit index`")
    if not _is_archive(source):
        raise corrupt(
            source,
            "is not a Conduit store",
            "pass the file save_store or `conduit index` wrote (conduit index writes "
            "conduit-index.npz)",
            "a store is a .npz archive; this file is not one",
        )
    try:
        with source.open("rb") as f, np.load(f, allow_pickle=False) as data:
            vectors = data["vectors"]
            meta = json.loads(data["meta"].tobytes().decode())
        documents = tuple(
            freeze_map({"id": str(d["id"]), "text": str(d["text"]), "metadata": d["metadata"]})
            for d in meta["documents"]
        )
        store = MemoryStore(documents=documents, vectors=vectors, metric=meta["metric"])
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise corrupt(source, "is not a whole Conduit store", _REMEDY, _why(exc)) from None
    except zipfile.BadZipFile as exc:
        raise corrupt(source, "is not a whole Conduit store", _REMEDY, exc) from None
    if len(store.vectors) != len(documents) or store.metric not in ("cosine", "dot"):
        raise corrupt(source, "is not a whole Conduit store", _REMEDY, "its parts disagree")
    return store


def _is_archive(source: Path) -> bool:
    """Whether *source* starts as a zip archive does (a .npz store, whole or damaged)."""
    with source.open("rb") as f:
        return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def _why(exc: BaseException) -> str:
    if isinstance(exc, ValueError) and "pickle" in str(exc):
        return "it holds pickled objects, which Conduit never loads"
    return f"{type(exc).__name__}: {exc}"
