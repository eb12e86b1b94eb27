"""``with_replay``: record real exchanges to a file, replay them offline — tests without a network.

The file is JSON Lines, one exchange a line: the cache key, the model, messages and options
(for people reading it), the response, and for streams the events as they arrived. Modes:
``"auto"`` (replay what is recorded, record what is not), ``"record"`` (always call, and
overwrite), ``"replay"`` (never call: a request not in the file is an error saying so).
"""

from __future__ import annotations

import json
import threading
from functools import partial
from os import PathLike
from pathlib import Path
from typing import Any

from conduit._data import freeze_map, thaw
from conduit._drive import Effect
from conduit._event import Event
from conduit._files import append_line, corrupt, open_append, read_jsonl
from conduit._options import Builder, configure, did_you_mean
from conduit._types import Flow, Request
from conduit.cache import cache_key
from conduit.errors import ConduitError, ValidationError
from conduit.middleware import Middleware, middleware

__all__ = ["DEFAULT_PATH", "ReplayFile", "replay_flow", "with_replay"]

MODES = ("auto", "record", "replay")
_REMEDY = "fix or delete that line, or delete the file to record afresh"


class ReplayFile:
    """The exchanges recorded in one JSON Lines file (read once, appended to)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] | None = None

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            entries = {}
            if self.path.exists():
                found = read_jsonl(self.path, "a JSON line", _REMEDY)
                for number, entry in found:
                    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                        raise corrupt(
                            f"{self.path}:{number}", "is not a recorded exchange", _REMEDY
                        )
                    entries[entry["key"]] = entry
            self._entries = entries
        return self._entries

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the recorded exchange for *key*, or None."""
        with self._lock:
            return self._load().get(key)

    def put(self, entry: dict[str, Any]) -> None:
        """Record *entry* (a later line for the same key wins when the file is read).

        The line is appended whole and fsynced; a line torn by a kill is dropped on reading
        and cut off before the next append.
        """
        with self._lock:
            self._load()[entry["key"]] = entry
            with open_append(self.path) as out:
                append_line(out, json.dumps(entry, sort_keys=True))

    def __len__(self) -> int:
        return len(self._load())

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}  # a copy in another process reads the file afresh

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"ReplayFile({str(self.path)!r})"


def _entry(key: str, req: Request, ctx: Request) -> dict[str, Any]:
    entry = {
        "key": key,
        "model": req["model"],
        "provider": req.get("provider"),
        "messages": thaw(req["messages"]),
        "options": thaw(req["options"]),
        "response": thaw(ctx["response"]),
    }
    if ctx.get("conduit/events"):
        entry["events"] = [thaw(e) for e in ctx["conduit/events"]]
    return entry


def replay_flow(req: Request, *, recording: ReplayFile | None = None, mode: str = "auto") -> Flow:
    """Answer from *recording* when it holds *req*; otherwise call and record (by *mode*).

    With no *recording*, the file :data:`DEFAULT_PATH` in the working directory.
    """
    if recording is None:
        recording = yield Effect(_default_recording)
    key = cache_key(req)
    if mode != "record":
        found = yield Effect(partial(recording.get, key))
        if found is not None:
            ctx: Request = req.update({"response": freeze_map(found["response"]), "replayed": True})
            if found.get("events"):
                ctx = ctx.set("conduit/events", tuple(Event(e) for e in found["events"]))
            return ctx
        if mode == "replay":
            raise ConduitError(
                f"no recorded exchange for this request in {recording.path} (model "
                f"{req['model']!r}): record it once with c.with_replay(path, mode='record') "
                "and a real provider",
                data={"key": key, "path": str(recording.path)},
            )
    answered: Request = yield req
    yield Effect(partial(recording.put, _entry(key, req, answered)))
    return answered.set("replayed", False)


#: Bare ``with_replay``: this file in the working directory, in ``"auto"`` mode.
DEFAULT_PATH = "conduit-replay.jsonl"
_defaults: dict[Path, ReplayFile] = {}


def _default_recording() -> ReplayFile:
    where = Path(DEFAULT_PATH).absolute()  # the working directory at call time
    return _defaults.setdefault(where, ReplayFile(where))


def _build(*, path: str | Path | ReplayFile | None = None, mode: str = "auto") -> Middleware:
    if mode not in MODES:
        hint = did_you_mean(mode, MODES) if isinstance(mode, str) else ""
        msg = f"with_replay mode must be one of {', '.join(MODES)}, not {mode!r:.40}{hint}"
        raise ValidationError(msg)
    if path is not None and not isinstance(path, str | PathLike | ReplayFile):
        raise ValidationError(f"{_NEEDS}, not {path!r:.40}")
    recording = None if path is None else path if isinstance(path, ReplayFile) else ReplayFile(path)
    return middleware(replay_flow, name="replay", recording=recording, mode=mode)


_NEEDS = "with_replay takes a file: c.with_replay('tests/cassettes/chat.jsonl')"
_SPEC = Builder(
    name="with_replay", build=_build, bare=_build(), first="path", example=_NEEDS.split(": ")[1]
)


def with_replay(path: Any = None, /, **options: Any) -> Any:
    """Return a transform recording exchanges to *path* and replaying them offline.

    ``mode`` is ``"auto"`` (the default), ``"record"`` or ``"replay"``. Bare, it records to
    ``conduit-replay.jsonl`` in the working directory (where the call runs) in ``"auto"``
    mode: one visible file to commit with your tests, or to delete to record afresh.

    >>> import tempfile, os
    >>> from toolz import pipe
    >>> import conduit as c
    >>> cassette = os.path.join(tempfile.mkdtemp(), "chat.jsonl")
    >>> live = c.request("m", "hi", mock="recorded answer")
    >>> pipe(live, c.with_replay(cassette), c.mock_call)["replayed"]
    False
    >>> offline = c.request("m", "hi", mock=c.ConnectionError("no network"))
    >>> c.content(pipe(offline, c.with_replay(cassette, mode="replay"), c.mock_call))
    'recorded answer'
    """
    return configure(_SPEC, path, options)
