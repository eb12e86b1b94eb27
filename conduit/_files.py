"""Files a user relies on: written whole atomically, appended durably, read with clear errors.

A whole-file write goes to a temporary file beside the target, is flushed and fsynced, then
replaces the target in one ``os.replace`` (and the folder is fsynced), so a crash or a kill at
any moment leaves either the old file or the new one, never a mix. A JSON Lines append is one
``write`` of a whole line, fsynced; a line torn by a kill (the last one, without its newline)
is dropped when the file is read and cut off before the next append.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from conduit.errors import ConduitError

__all__ = [
    "append_line",
    "atomic_write",
    "corrupt",
    "fsync_folder",
    "lock_exclusive",
    "open_append",
    "read_jsonl",
    "repair_tail",
    "sqlite_corrupt",
    "write_atomic",
]


def corrupt(
    path: str | os.PathLike[str], what: str, remedy: str, detail: object = None
) -> ConduitError:
    """Return the error for an unreadable file: which file, what is wrong, and what to do.

    >>> str(corrupt("run.jsonl", "is not a batch checkpoint", "delete it"))
    'run.jsonl is not a batch checkpoint: delete it'
    """
    why = f" ({detail})" if detail else ""
    return ConduitError(f"{path} {what}{why}: {remedy}", data={"path": str(path), "remedy": remedy})


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Make a rename or a new file in *folder* durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a temporary file beside *path* for writing; on a clean exit it replaces *path*.

    On an error the temporary file is removed and *path* is left as it was. A symlink at
    *path* is kept: the file it points to is replaced. A new file gets the usual permissions
    (0666 less the umask); a replaced one keeps its own.
    """
    target = Path(os.path.realpath(path))
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        mode = os.stat(target).st_mode & 0o7777
    except OSError:
        mode = None
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            if mode is not None:
                os.chmod(tmp, mode)
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_folder(target.parent)


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Replace *path* with *data* (text is written as UTF-8) atomically; return the path.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.txt"
    >>> write_atomic(p, "one").read_text(), write_atomic(p, b"two").read_text()
    ('one', 'two')
    """
    with atomic_write(path) as out:
        out.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


def _tail_start(f: IO[bytes], size: int) -> int:
    """The offset just after the last newline of the file (0 if it has none)."""
    end = size
    while end > 0:
        start = max(0, end - 65536)
        f.seek(start)
        found = f.read(end - start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        end = start
    return 0


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


def repair_tail(f: IO[bytes]) -> None:
    """Make the JSON Lines file open in *f* (``"r+b"`` or ``"a+b"``) end with a whole line.

    A last line without its newline is either whole JSON (a hand edit: the newline is added)
    or a line torn by a kill (it is cut off: it was never acknowledged as written).
    """
    size = f.seek(0, os.SEEK_END)
    if not size:
        return
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return
    start = _tail_start(f, size)
    f.seek(start)
    if _is_json(f.read()):
        f.seek(0, os.SEEK_END)
        f.write(b"\n")
    else:
        f.truncate(start)
    f.flush()
    os.fsync(f.fileno())


def append_line(f: IO[bytes], line: str) -> None:
    """Append *line* and its newline to *f* in one write, and fsync it."""
    f.seek(0, os.SEEK_END)
    f.write(line.encode() + b"\n")
    f.flush()
    os.fsync(f.fileno())


def open_append(path: str | os.PathLike[str], *, wait: bool = True) -> IO[bytes]:
    """Open the JSON Lines file *path* for appending (created if missing), locked, its tail
    repaired; closing it releases the lock.

    The lock is taken before the tail is looked at, so no writer ever cuts another's line
    short. With ``wait=False`` a lock held elsewhere raises :class:`BlockingIOError`.
    """
    target = Path(path)
    new = not target.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    f = target.open("a+b")
    try:
        if not lock_exclusive(f, wait=wait):
            raise BlockingIOError(f"{target} is locked by another writer")
        if new:
            fsync_folder(target.parent)
        repair_tail(f)
    except BaseException:
        f.close()
        raise
    return f


def read_jsonl(path: str | os.PathLike[str], what: str, remedy: str) -> list[tuple[int, Any]]:
    """Return ``(line number, value)`` for each line of the JSON Lines file *path*.

    A torn last line (no newline, not JSON) is dropped; any other line that is not JSON is
    a :class:`ConduitError` naming the file, the line and *remedy*.
    """
    raw = Path(path).read_bytes()
    lines = raw.split(b"\n")
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except ValueError as exc:
            if number == len(lines):  # no newline after it: torn by a kill mid-append
                break
            raise corrupt(f"{path}:{number}", f"is not {what}", remedy, exc) from None
    return out


def sqlite_corrupt(exc: BaseException) -> bool:
    """Whether *exc* says a SQLite file is damaged or is not a database at all."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (
        isinstance(exc, sqlite3.DatabaseError)
        and isinstance(code, int)
        and (code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB))
    )


def lock_exclusive(f: IO[Any], *, wait: bool = False) -> bool:
    """Take an exclusive lock on the open file *f*; return whether it was taken (always, when
    *wait*: then it waits for the holder to let go).

    The lock belongs to this open file (two opens in one process exclude each other too) and
    is released when it is closed, or when its process dies: a killed run leaves no stale lock.
    """
    if sys.platform == "win32":  # pragma: no cover - tested on POSIX only
        import msvcrt

        try:
            f.seek(1 << 30)  # a byte past the data: readers of the file are not blocked
            msvcrt.locking(f.fileno(), msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True
