"""Where graph runs keep their checkpoints: in memory, or in one SQLite file.

A checkpoint is a map: ``thread`` (the run's name), ``step`` (nodes run so far), ``node`` (the
last node run, or None), ``next`` (the node to run next, or ``"__end__"``), ``state`` and
``status`` (``"running"``, ``"interrupted"`` or ``"done"``). Both stores keep every checkpoint
of a thread, so a run can be resumed from its latest one or inspected step by step.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from pyrsistent import PMap

from conduit._data import freeze_map, thaw
from conduit._files import corrupt, sqlite_corrupt
from conduit.errors import ValidationError

__all__ = ["Checkpoints", "MemoryCheckpoints", "SQLiteCheckpoints"]

Checkpoint = PMap[str, Any]
_REMEDY = "restore it from a backup, or delete it (runs then start from the beginning)"


class Checkpoints(Protocol):
    """What ``run_graph`` needs of a checkpoint store."""

    def put(self, checkpoint: Mapping[str, Any]) -> None: ...

    def latest(self, thread: str) -> Checkpoint | None: ...

    def history(self, thread: str) -> tuple[Checkpoint, ...]: ...


class MemoryCheckpoints:
    """Checkpoints in this process's memory (thread-safe); the state may hold any value.

    >>> cp = MemoryCheckpoints()
    >>> cp.put({"thread": "t", "step": 1, "state": {"n": 1}, "status": "running"})
    >>> cp.latest("t")["state"]["n"], cp.latest("other")
    (1, None)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, list[Checkpoint]] = {}

    def put(self, checkpoint: Mapping[str, Any]) -> None:
        """Record *checkpoint* as its thread's latest."""
        frozen = freeze_map(checkpoint)
        with self._lock:
            self._runs.setdefault(str(frozen["thread"]), []).append(frozen)

    def latest(self, thread: str) -> Checkpoint | None:
        """Return the thread's newest checkpoint, or None if it has none."""
        with self._lock:
            found = self._runs.get(thread)
            return found[-1] if found else None

    def history(self, thread: str) -> tuple[Checkpoint, ...]:
        """Return every checkpoint of the thread, oldest first."""
        with self._lock:
            return tuple(self._runs.get(thread, ()))

    def __repr__(self) -> str:
        return f"MemoryCheckpoints(threads={len(self._runs)})"


class SQLiteCheckpoints:
    """Checkpoints in one SQLite file, as JSON: they outlive the process (resume after a crash).

    The state must be JSON data (text, numbers, booleans, None, lists, maps); anything else is
    a ``ValidationError`` naming the key at the first checkpoint, not a corrupt file later. A
    damaged file is a ``ConduitError`` naming it and the remedy.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS checkpoints (thread TEXT NOT NULL, "
                "seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS by_thread ON checkpoints (thread, seq)")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:  # commits, or rolls back on an error
                yield db
        except sqlite3.DatabaseError as exc:
            if not sqlite_corrupt(exc):
                raise
            raise corrupt(self.path, "is not a readable checkpoint file", _REMEDY, exc) from None
        finally:
            db.close()

    def put(self, checkpoint: Mapping[str, Any]) -> None:
        """Record *checkpoint* as its thread's latest (committed before returning)."""
        body = _dumps(checkpoint)
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT INTO checkpoints (thread, body) VALUES (?, ?)",
                (str(checkpoint["thread"]), body),
            )

    def latest(self, thread: str) -> Checkpoint | None:
        """Return the thread's newest checkpoint, or None if it has none."""
        with self._lock, self._connect() as db:
            row = db.execute(
                "SELECT body FROM checkpoints WHERE thread = ? ORDER BY seq DESC LIMIT 1",
                (thread,),
            ).fetchone()
        return None if row is None else self._loads(row[0])

    def history(self, thread: str) -> tuple[Checkpoint, ...]:
        """Return every checkpoint of the thread, oldest first."""
        with self._lock, self._connect() as db:
            rows = db.execute(
                "SELECT body FROM checkpoints WHERE thread = ? ORDER BY seq", (thread,)
            ).fetchall()
        return tuple(self._loads(r[0]) for r in rows)

    def _loads(self, body: Any) -> Checkpoint:
        try:
            found = json.loads(body)
            if not isinstance(found, dict):
                raise TypeError(f"a {type(found).__name__}, not a map")
        except (ValueError, TypeError) as exc:
            raise corrupt(self.path, "holds a checkpoint that is not JSON", _REMEDY, exc) from None
        return freeze_map(found)

    def __repr__(self) -> str:
        return f"SQLiteCheckpoints({str(self.path)!r})"


def _dumps(checkpoint: Mapping[str, Any]) -> str:
    plain = thaw(checkpoint)
    try:
        return json.dumps(plain, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        pass
    for key, value in dict(plain.get("state") or {}).items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"graph state key {key!r} holds {type(value).__name__}, which a SQLite "
                f"checkpoint cannot store as JSON ({exc}); keep state to JSON data or use "
                "MemoryCheckpoints",
                data={"key": key},
            ) from exc
    raise ValidationError("this checkpoint is not JSON data; use MemoryCheckpoints")
