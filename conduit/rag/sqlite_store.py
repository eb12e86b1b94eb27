"""The SQLite vector store: documents and float32 vectors in one file, searched with numpy.

Every handle and every process that opens the file sees the others' writes. A search first asks
SQLite whether anyone else committed since the matrix was read (``PRAGMA data_version``, about a
microsecond) and reads the table again only then; this handle's own writes drop the matrix
directly, since ``data_version`` counts only other connections' commits.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from pyrsistent import PMap, PVector

from conduit._data import freeze_map, thaw
from conduit._files import corrupt, sqlite_corrupt
from conduit.errors import ConduitError
from conduit.rag.index import Filter, check_dimensions, check_metric, search_matrix

__all__ = ["SQLiteStore"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS conduit_docs (id TEXT PRIMARY KEY, "
    "text TEXT NOT NULL, metadata TEXT NOT NULL, vector BLOB NOT NULL)"
)
Matrix = tuple[tuple[PMap[str, Any], ...], np.ndarray[Any, Any]]
_REMEDY = "restore it from a backup, or delete it and add the documents again"


def _rows(docs: Sequence[PMap[str, Any]], vectors: np.ndarray[Any, Any]) -> list[tuple[Any, ...]]:
    return [
        (d["id"], d["text"], json.dumps(thaw(d["metadata"])), np.asarray(v, np.float32).tobytes())
        for d, v in zip(docs, vectors, strict=True)
    ]


def _matrix(rows: list[tuple[Any, ...]], known: Mapping[tuple[Any, ...], Any]) -> Matrix:
    """The documents and the read-only vector matrix of ``(id, text, metadata, vector)`` rows;
    a document whose row is in *known* (from the last read) is reused, not parsed again."""
    docs = tuple(
        known.get(r[:3]) or freeze_map({"id": r[0], "text": r[1], "metadata": json.loads(r[2])})
        for r in rows
    )
    if not rows:
        return docs, np.zeros((0, 0), np.float32)
    vectors = np.frombuffer(b"".join(r[3] for r in rows), dtype=np.float32)
    return docs, vectors.reshape(len(rows), -1)  # frombuffer over bytes: already read-only


class SQLiteStore:
    """Documents and float32 vectors in one SQLite file (a :class:`VectorStore`); changes in place.

    The file is data only (nothing in it is unpickled or run); a damaged file, or one that is
    not a SQLite database, is a :class:`~conduit.errors.ConduitError` naming it.

    >>> from conduit.rag.embed import hash_embedder
    >>> from conduit.rag.vector_store import add_documents, search
    >>> embed = hash_embedder(64)
    >>> store = add_documents(SQLiteStore(":memory:"), ["cats purr", "dogs bark"], embed)
    >>> len(store), search(store, "barking", 1, embed=embed)[0]["document"]["text"]
    (2, 'dogs bark')
    """

    def __init__(self, path: str | Path, metric: str = "cosine") -> None:
        self.path, self.metric = str(path), check_metric(metric)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30
        )
        try:
            with self._checked():
                self._db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
                self._db.execute(_SCHEMA)
        except BaseException:
            self._db.close()
            raise
        self._seen: tuple[int, Matrix] | None = None  # (data_version, matrix) last read
        self._parsed: dict[tuple[Any, ...], PMap[str, Any]] = {}  # raw row -> its document

    @contextmanager
    def _checked(self) -> Iterator[None]:
        """Turn a damaged file or row into a ConduitError naming the file and the remedy."""
        try:
            yield
        except ConduitError:
            raise
        except sqlite3.DatabaseError as exc:
            if not sqlite_corrupt(exc):
                raise
            raise corrupt(self.path, "is not a readable SQLite store", _REMEDY, exc) from None
        except (ValueError, TypeError, KeyError) as exc:  # a row that is not ours
            raise corrupt(self.path, "holds a row Conduit did not write", _REMEDY, exc) from None

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._checked():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._seen = None

    def upsert(self, docs: Sequence[PMap[str, Any]], vectors: np.ndarray[Any, Any]) -> SQLiteStore:
        """Insert or replace *docs* with their *vectors*; return this store."""
        if not len(docs):
            return self
        rows = _rows(docs, vectors)
        with self._writing() as db:
            held = db.execute("SELECT length(vector) FROM conduit_docs LIMIT 1").fetchone()
            check_dimensions(held and held[0] // 4, vectors.shape[1], adding=True)
            db.executemany("INSERT OR REPLACE INTO conduit_docs VALUES (?, ?, ?, ?)", rows)
        return self

    def delete(self, ids: Sequence[str]) -> SQLiteStore:
        """Remove the documents *ids*; return this store."""
        with self._writing() as db:
            db.executemany("DELETE FROM conduit_docs WHERE id = ?", [(i,) for i in ids])
        return self

    def matrix(self) -> Matrix:
        """Return the documents (oldest first) and their vectors as the file holds them now."""
        with self._lock, self._checked():
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if self._seen is None or self._seen[0] != version:
                # a commit between the pragma and this read only costs one extra reload later
                sql = "SELECT id, text, metadata, vector FROM conduit_docs ORDER BY rowid"
                rows = self._db.execute(sql).fetchall()
                self._seen = (version, _matrix(rows, self._parsed))
                self._parsed = {r[:3]: d for r, d in zip(rows, self._seen[1][0], strict=True)}
            return self._seen[1]

    def search(self, vector: np.ndarray[Any, Any], k: int, flt: Filter) -> PVector[Any]:
        """Return the *k* best hits for *vector*, over every handle's committed writes."""
        docs, vectors = self.matrix()
        return search_matrix(docs, vectors, vector, k, flt)

    def __len__(self) -> int:
        with self._lock, self._checked():
            return int(self._db.execute("SELECT COUNT(*) FROM conduit_docs").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"
