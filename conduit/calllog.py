"""The command line's log: every call it makes, in one SQLite file, to list and search later.

One row per call: when, which command, the model, the conversation it belongs to, the system
prompt, the prompt, the answer, token usage, cost, latency and the error if it failed. Keys
never reach it: the values of every provider key variable, and of the request's ``api_key`` and
credential headers, are masked in every text field before it is written. The file lives in the
user's data directory (``$XDG_DATA_HOME/conduit/logs.db``, ``~/Library/Application
Support/conduit`` on macOS, ``%LOCALAPPDATA%\\conduit`` on Windows), or at ``CONDUIT_LOGS``;
``CONDUIT_LOGS=off`` (or ``--no-log``) turns it off.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "SCHEMA",
    "Log",
    "conversation_messages",
    "default_path",
    "open_log",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id              TEXT PRIMARY KEY,   -- a random id, also how `conduit logs show` names it
    conversation    TEXT NOT NULL,      -- the chat it belongs to (`-c` continues the latest)
    started         REAL NOT NULL,      -- Unix time the call began
    command         TEXT NOT NULL,      -- chat or ask
    model           TEXT NOT NULL,      -- provider:model as given
    system          TEXT,               -- the system prompt, if any
    prompt          TEXT NOT NULL,      -- what was asked this turn
    messages        TEXT NOT NULL,      -- the whole conversation after this turn, as JSON
    answer          TEXT,               -- the answer's text (NULL if the call failed)
    input_tokens    INTEGER,
    output_tokens   INTEGER,
    cost            REAL,               -- USD, where the model's price is known
    latency_ms      INTEGER,            -- from sending to the last token
    attempts        INTEGER,            -- 1, or more when retries were needed
    error           TEXT                -- the error's one-line message, if the call failed
);
CREATE INDEX IF NOT EXISTS calls_started ON calls (started);
CREATE INDEX IF NOT EXISTS calls_conversation ON calls (conversation, started);
"""


def default_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """Return where the log lives, or None when logging is turned off.

    >>> default_path({"CONDUIT_LOGS": "/tmp/x.db"}), default_path({"CONDUIT_LOGS": "off"})
    (PosixPath('/tmp/x.db'), None)
    >>> str(default_path({"HOME": "/home/u", "XDG_DATA_HOME": "/d"}))
    '/d/conduit/logs.db'
    """
    env = os.environ if environ is None else environ
    chosen = env.get("CONDUIT_LOGS")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "0", "off", "no", "false") else Path(chosen)
    if sys.platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path(env.get("HOME") or Path.home()) / "Library" / "Application Support"
    else:
        home = Path(env.get("HOME") or Path.home())
        base = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "conduit" / "logs.db"


def _held(ctx: Mapping[str, Any] | None) -> list[str]:
    """The credentials a call's context holds (a base URL's key, say)."""
    from conduit._data import request_secrets

    return request_secrets(ctx) if ctx is not None else []


def _secrets(environ: Mapping[str, str], extra: Iterable[str]) -> list[str]:
    from conduit.registry import secret_values

    return _longest_first([*secret_values(environ), *extra])


def _longest_first(secrets: Iterable[str]) -> list[str]:
    """*secrets* to mask, longest first (a shorter one inside a longer one would leave the
    longer one's rest in clear), short ones left alone."""
    return sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)


class Log:
    """An open log file. Each write is its own transaction: a killed process loses nothing
    that was written before it."""

    def __init__(self, path: Path, secrets: Sequence[str] = ()) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=10, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._secrets = list(secrets)

    def close(self) -> None:
        self._db.close()

    def _mask(self, text: str | None, more: Sequence[str] = ()) -> str | None:
        if text is None:
            return None
        secrets = _longest_first([*more, *self._secrets]) if more else self._secrets
        for secret in secrets:  # as given, and as the messages' JSON escapes it
            for form in (secret, json.dumps(secret)[1:-1]):
                text = text.replace(form, "***")
        return text

    def record(
        self,
        *,
        conversation: str,
        command: str,
        model: str,
        prompt: str,
        messages: Sequence[Mapping[str, Any]],
        ctx: Mapping[str, Any] | None = None,
        error: BaseException | None = None,
        started: float,
        latency: float,
        system: str | None = None,
    ) -> str:
        """Write one call; return its id."""
        from conduit.conversation import conversation_to_json
        from conduit.request import content

        resp = ctx.get("response") if ctx is not None else None
        held = _held(ctx)  # the call's own credentials (a base URL's key, say), besides the env's

        def mask(text: str | None) -> str | None:
            return self._mask(text, held)

        usage = (resp or {}).get("usage") or {}
        row = {
            "id": uuid.uuid4().hex[:12],
            "conversation": conversation,
            "started": started,
            "command": command,
            "model": model,
            "system": mask(system),
            "prompt": mask(prompt) or "",
            "messages": mask(conversation_to_json(list(messages))) or "[]",
            "answer": mask(content(resp)) if resp is not None else None,
            "input_tokens": usage.get("input_tokens"),
            "output_tokens": usage.get("output_tokens"),
            "cost": ctx.get("cost") if ctx is not None else None,
            "latency_ms": round(latency * 1000),
            "attempts": ctx.get("attempts") if ctx is not None else None,
            "error": mask(_one_line(error)) if error is not None else None,
        }
        keys = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        self._db.execute(f"INSERT INTO calls ({keys}) VALUES ({marks})", row)
        return str(row["id"])

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self._db.execute(sql, args)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest calls, newest first."""
        return self.rows("SELECT * FROM calls ORDER BY started DESC LIMIT ?", (limit,))

    def show(self, prefix: str) -> dict[str, Any] | None:
        """The call whose id starts with *prefix* (None if none, or several, match)."""
        found = self.rows("SELECT * FROM calls WHERE id LIKE ? LIMIT 2", (prefix + "%",))
        return found[0] if len(found) == 1 else None

    def search(self, text: str, limit: int = 20) -> list[dict[str, Any]]:
        """Calls whose prompt, answer or system prompt holds *text* (case-insensitive)."""
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self.rows(
            "SELECT * FROM calls WHERE prompt LIKE ? ESCAPE '\\' OR answer LIKE ? ESCAPE '\\' "
            "OR system LIKE ? ESCAPE '\\' ORDER BY started DESC LIMIT ?",
            (like, like, like, limit),
        )

    def latest_conversation(self) -> tuple[str, str, list[Any]] | None:
        """(conversation id, model, messages) of the latest chat that answered, or None."""
        found = self.rows(
            "SELECT conversation, model, messages FROM calls WHERE command = 'chat' "
            "AND error IS NULL ORDER BY started DESC LIMIT 1"
        )
        if not found:
            return None
        row = found[0]
        return row["conversation"], row["model"], conversation_messages(row["messages"])


def conversation_messages(text: str) -> list[Any]:
    """The messages of a logged conversation (its JSON), as Conduit messages."""
    from conduit.conversation import conversation_from_json

    return list(conversation_from_json(text)["messages"])


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"


def open_log(
    path: Path | None = None, environ: Mapping[str, str] | None = None, secrets: Iterable[str] = ()
) -> Log | None:
    """Open the log at *path* (default: :func:`default_path`); None when logging is off."""
    env = os.environ if environ is None else environ
    chosen = path if path is not None else default_path(env)
    if chosen is None:
        return None
    return Log(chosen, _secrets(env, secrets))


def new_conversation() -> str:
    """A fresh conversation id."""
    return uuid.uuid4().hex[:12]


def started_now() -> float:
    return time.time()


def as_json(row: Mapping[str, Any], indent: int | None = 2) -> str:
    """Return a logged call as JSON (*indent* None: one line, for JSON Lines); the columns
    stored as JSON text (the messages) are nested as JSON, not quoted as strings.

    >>> as_json({"id": "a1", "messages": '{"messages": []}'}, None)
    '{"id": "a1", "messages": {"messages": []}}'
    """
    fields = dict(row)
    for key in _JSON_COLUMNS:
        value = fields.get(key)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                fields[key] = json.loads(value)
    return json.dumps(fields, indent=indent, ensure_ascii=False)


#: The columns the log stores as JSON text.
_JSON_COLUMNS = ("messages",)
