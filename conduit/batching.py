"""``batch``: one handler over many requests, with bounded concurrency, progress and a checkpoint.

Results come back in input order. A failed item is recorded (``ctx["error"]``), not raised, so
one bad input never aborts the run. With a checkpoint file (JSON Lines), every finished item is
appended as it completes; a rerun after a crash reads the file, skips what succeeded and runs
the rest (failed items included), so each input ends with exactly one result. One run at a time
holds a checkpoint: a second run on the same file stops at once with an error saying so.

A handler with a ``bulk`` attribute (``c.openai_batch``, :mod:`conduit.batch_api`) takes the
unfinished items all at once: ``await call.bulk(reqs, keys, todo, notes, finish, note)``, where
*notes* are the checkpoint's ``{"batch": ...}`` lines, ``finish(index, ctx_or_exception)``
records one item as usual and ``note(record)`` appends a ``{"batch": record}`` line.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, TextIO

from pyrsistent import PVector, pvector

from conduit._data import freeze_map, request_secrets, thaw
from conduit._files import append_line, corrupt, open_append, read_jsonl
from conduit._types import Request
from conduit.cache import cache_key
from conduit.errors import ConduitError, ValidationError
from conduit.registry import secret_values
from conduit.request import as_request

__all__ = ["Progress", "abatch", "batch", "error_record", "load_checkpoint", "load_notes"]

ProgressFn = Callable[[int, int], Any]


def error_record(exc: BaseException) -> dict[str, Any]:
    """Return what a failed item records: the error's type, message and data.

    >>> from conduit.errors import RateLimitError
    >>> error_record(RateLimitError("slow", status_code=429))["type"]
    'RateLimitError'
    """
    data = getattr(exc, "data", None)
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "data": json.loads(json.dumps(thaw(data), default=str)) if data else {},
    }


class Progress:
    """A progress bar (done/total, rate, time left): redrawn in place on a terminal; on a file
    or pipe, one line per tenth of the work, so logs stay readable."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total, self.stream, self.width = total, stream or sys.stderr, width
        self.start = time.monotonic()
        self.errors = 0
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty())
        self._tenth = -1

    def __call__(self, done: int, total: int) -> None:
        tenth = 10 * done // total if total else 10
        if not self.live and tenth == self._tenth and done < total:
            return
        self._tenth = tenth
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = done / elapsed
        left = (total - done) / rate if rate > 0 else 0.0
        filled = int(self.width * done / total) if total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        note = f" {self.errors} failed" if self.errors else ""
        line = f"[{bar}] {done}/{total} {rate:.1f}/s {left:.0f}s left{note}"
        if self.live:
            self.stream.write(f"\r{line}" + ("\n" if done >= total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


_REMEDY = "delete that line (its item runs again) or the file (every item runs again)"


def load_checkpoint(path: str | Path) -> dict[int, dict[str, Any]]:
    """Return the finished items recorded in a checkpoint file, by index; a later line for an
    index wins. A torn last line, from a crash mid-write, is ignored: that item runs again.
    Any other line that is not a checkpoint record is a ``ConduitError`` naming it."""
    found: dict[int, dict[str, Any]] = {}
    target = Path(path)
    if not target.exists():
        return found
    for number, entry in read_jsonl(target, "a batch checkpoint line", _REMEDY):
        if isinstance(entry, dict) and isinstance(entry.get("batch"), dict):
            continue  # a provider batch's record: see load_notes
        if not (isinstance(entry, dict) and isinstance(entry.get("index"), int)):
            raise corrupt(f"{target}:{number}", "is not a batch checkpoint record", _REMEDY)
        found[entry["index"]] = entry
    return found


def load_notes(path: str | Path) -> list[dict[str, Any]]:
    """Return the ``{"batch": record}`` lines of a checkpoint file, oldest first: what a bulk
    handler noted about the provider batches it submitted (see :mod:`conduit.batch_api`)."""
    target = Path(path)
    if not target.exists():
        return []
    lines = read_jsonl(target, "a batch checkpoint line", _REMEDY)
    return [
        e["batch"] for _, e in lines if isinstance(e, dict) and isinstance(e.get("batch"), dict)
    ]


def _secrets(req: Request) -> list[str]:
    """The secrets a checkpoint line must not hold: the request's key, credential headers and
    URL password, and the providers' keys in the environment (what a call without ``api_key``
    sends). Errors should never hold them; this is the last line of defence."""
    found = {*request_secrets(req), *secret_values()}
    return sorted((s for s in found if len(s) >= 8), key=len, reverse=True)


def _scrub(line: str, secrets: list[str]) -> str:
    for secret in secrets:
        for form in (secret, json.dumps(secret)[1:-1]):  # as written, and as JSON escapes it
            line = line.replace(form, "***")
    return line


def _result(req: Request, entry: dict[str, Any]) -> Request:
    if entry.get("error"):
        failed: Request = req.set("error", freeze_map(entry["error"]))
        return failed
    done: Request = req.set("response", freeze_map(entry["response"]))
    return done


class _Writer:
    """Appends finished items to the checkpoint, one fsynced line each, holding its lock."""

    def __init__(self, path: Path | None) -> None:
        self.lock = threading.Lock()
        self.out: IO[bytes] | None = None
        if path is None:
            return
        try:
            self.out = open_append(path, wait=False)
        except BlockingIOError:
            raise ConduitError(
                f"another run is using the checkpoint {path}: wait for it to finish (its results "
                "are kept), or give this run another checkpoint file",
                data={"path": str(path)},
            ) from None

    def write(self, index: int, key: str, ctx: Request, secrets: list[str]) -> None:
        if self.out is None:
            return
        entry: dict[str, Any] = {"index": index, "key": key}
        if "error" in ctx:
            entry["error"] = thaw(ctx["error"])
        else:
            entry["response"] = thaw(ctx["response"])
        self.append(entry, secrets)

    def append(self, entry: dict[str, Any], secrets: list[str]) -> None:
        if self.out is None:
            return
        line = _scrub(json.dumps(entry), secrets)
        with self.lock:
            append_line(self.out, line)

    def close(self) -> None:
        if self.out is not None:
            self.out.close()


def _progress(progress: Any, total: int) -> ProgressFn | None:
    if progress is None:
        progress = sys.stderr.isatty()
    if progress is True:
        return Progress(total)
    if progress is False:
        return None
    if callable(progress):
        return progress  # type: ignore[no-any-return]
    raise ValidationError("progress is True, False, None (a bar on a terminal) or f(done, total)")


async def abatch(
    call: Callable[[Request], Any],
    requests: Iterable[Any],
    *,
    concurrency: int = 8,
    progress: Any = None,
    checkpoint: str | Path | None = None,
) -> PVector[Request]:
    """The async form of :func:`batch`, for use inside a running event loop."""
    if concurrency < 1:
        raise ValidationError(f"concurrency must be at least 1, got {concurrency}")
    reqs = [as_request(r) for r in requests]
    keys = [cache_key(r) for r in reqs]
    report = _progress(progress, len(reqs))
    writer = _Writer(Path(checkpoint) if checkpoint else None)  # locked before it is read
    try:
        done = load_checkpoint(checkpoint) if checkpoint else {}
        results: list[Request | None] = [None] * len(reqs)
        for index, entry in done.items():
            if index < len(reqs) and entry.get("key") == keys[index] and not entry.get("error"):
                results[index] = _result(reqs[index], entry)  # failed items run again
        bulk = getattr(call, "bulk", None)
        if bulk is None:
            await _run(call, reqs, keys, results, writer, concurrency, report)
        else:
            todo = [i for i, r in enumerate(results) if r is None]
            finish = _finisher(reqs, keys, results, writer, report)
            notes = load_notes(checkpoint) if checkpoint else []
            secrets = _secrets(reqs[todo[0]]) if todo and writer.out is not None else []
            if report is not None and len(todo) < len(reqs):
                report(len(reqs) - len(todo), len(reqs))
            await bulk(
                reqs, keys, todo, notes, finish, lambda r: writer.append({"batch": r}, secrets)
            )
    finally:
        writer.close()
    return pvector(r for r in results if r is not None)


async def _run(
    call: Callable[[Request], Any],
    reqs: list[Request],
    keys: list[str],
    results: list[Request | None],
    writer: _Writer,
    concurrency: int,
    report: ProgressFn | None,
) -> None:
    """Run the items not in *results* yet, filling them in and checkpointing each."""
    import asyncio

    todo = [i for i, r in enumerate(results) if r is None]
    finish = _finisher(reqs, keys, results, writer, report)
    gate = asyncio.Semaphore(concurrency)
    threads = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency)
    is_async = inspect.iscoroutinefunction(call)
    loop = asyncio.get_running_loop()

    async def one(index: int) -> None:
        async with gate:
            out: Any
            try:
                if is_async:
                    out = await call(reqs[index])
                else:
                    out = await loop.run_in_executor(threads, call, reqs[index])
                    if inspect.isawaitable(out):
                        out = await out
            except Exception as exc:
                out = exc
            finish(index, out)

    try:
        if report is not None and len(todo) < len(reqs):
            report(len(reqs) - len(todo), len(reqs))
        await asyncio.gather(*(one(i) for i in todo))
    finally:
        threads.shutdown(wait=False)


def _finisher(
    reqs: list[Request],
    keys: list[str],
    results: list[Request | None],
    writer: _Writer,
    report: ProgressFn | None,
) -> Callable[[int, Any], None]:
    """Return ``finish(index, out)``: record item *index*'s result (a context, or the exception
    it failed with) in *results* and the checkpoint, and report progress."""
    finished = sum(r is not None for r in results)

    def finish(index: int, out: Any) -> None:
        nonlocal finished
        try:
            if isinstance(out, BaseException):
                raise out
            ctx = as_request(out)
        except Exception as exc:
            ctx = reqs[index].set("error", freeze_map(error_record(exc)))
            if isinstance(report, Progress):
                report.errors += 1
        results[index] = ctx
        secrets = _secrets(reqs[index]) if writer.out is not None else []
        writer.write(index, keys[index], ctx, secrets)
        finished += 1
        if report is not None:
            report(finished, len(reqs))

    return finish


def batch(
    call: Callable[[Request], Any],
    requests: Iterable[Any],
    *,
    concurrency: int = 8,
    progress: Any = None,
    checkpoint: str | Path | None = None,
) -> PVector[Request]:
    """Run *call* over *requests* with at most *concurrency* in flight; results in input order.

    *call* is a sync handler (run in a thread pool) or an async one (awaited). A failed item's
    context has ``error`` (type, message, data) instead of ``response``. *progress*: a bar on
    stderr (``True``; ``None`` means only on a terminal) or ``f(done, total)``. *checkpoint*: a
    JSON Lines file; a rerun skips the items it records as done and runs the rest, failed ones
    included. A run holds its checkpoint locked: a second run on it raises ``ConduitError``.

    >>> import conduit as c
    >>> reqs = [c.request("m", f"item {i}") for i in range(3)] + [
    ...     c.request("m", "bad", mock=c.ServerError("down"))]
    >>> out = c.batch(c.mock_call, reqs, concurrency=2, progress=False)
    >>> [c.content(ctx) if "response" in ctx else ctx["error"]["type"] for ctx in out]
    ['item 0', 'item 1', 'item 2', 'ServerError']
    """
    import asyncio

    return asyncio.run(
        abatch(call, requests, concurrency=concurrency, progress=progress, checkpoint=checkpoint)
    )
