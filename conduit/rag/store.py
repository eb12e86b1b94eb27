"""Vector stores behind one protocol, and the functions over it (re-exported from one place).

- :mod:`conduit.rag.vector_store`: the :class:`VectorStore` protocol; ``add_documents``,
  ``delete_documents`` and ``search`` dispatch through it.
- :mod:`conduit.rag.memory_store`: :class:`MemoryStore`, an immutable value (adding or deleting
  returns a new store), saved to and loaded from one file (``save_store``/``load_store``).
- :mod:`conduit.rag.sqlite_store`: :class:`SQLiteStore`, one SQLite file changed in place; every
  handle and process sees the others' writes.
- :mod:`conduit.rag.qdrant_store`: :class:`QdrantStore`, ``qdrant-client`` in local mode (a
  folder or ``":memory:"``) or a server URL: the same code either way.
- :mod:`conduit.rag.index`: the pure numpy scoring the memory and SQLite stores share.

Filters (a dict of metadata values that must match, or a function of the metadata) apply
before the top-k cut, so ``k`` results come back whenever ``k`` documents match.
"""

from __future__ import annotations

__all__ = [
    "METRICS",
    "Filter",
    "MemoryStore",
    "QdrantStore",
    "SQLiteStore",
    "VectorStore",
    "add_documents",
    "delete_documents",
    "hits_from",
    "load_store",
    "memory_store",
    "save_store",
    "search",
    "top_k",
]

from conduit.rag.index import METRICS, Filter, hits_from, top_k
from conduit.rag.memory_store import MemoryStore, load_store, memory_store, save_store
from conduit.rag.qdrant_store import QdrantStore
from conduit.rag.sqlite_store import SQLiteStore
from conduit.rag.vector_store import VectorStore, add_documents, delete_documents, search
