"""Conversations saved to and loaded from JSON: the messages, and what the caller adds.

The file is one JSON object, ``{"format": "conduit.conversation/1", "messages": [...]}``, plus
any extra keys given (a model name, a title). Tool calls, content blocks and images travel as
they are; loading validates every message as ``c.request`` does, so a hand-edited file with a
mistake gets an error naming the message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyrsistent import PMap, PVector

from conduit._data import freeze_map, thaw
from conduit._files import write_atomic
from conduit.errors import ValidationError
from conduit.request import request, response_message

__all__ = [
    "FORMAT",
    "conversation_from_json",
    "conversation_to_json",
    "load_conversation",
    "save_conversation",
]

FORMAT = "conduit.conversation/1"


def _messages(x: Any) -> Any:
    if isinstance(x, Mapping):
        if "messages" not in x:
            raise ValidationError(
                "a conversation is a list of messages, or a request/context holding them"
            )
        msgs = x["messages"]
        if "response" in x:  # a context: the answer is part of the conversation
            msgs = [*msgs, response_message(x["response"])]
        return msgs
    return x


def conversation_to_json(messages: Any, /, **extra: Any) -> str:
    """Return *messages* (or a request or context: its answer included) as JSON text.

    >>> import conduit as c
    >>> text = conversation_to_json([c.user("Hi"), c.assistant("Hello")], title="greeting")
    >>> [m["content"] for m in conversation_from_json(text)["messages"]]
    ['Hi', 'Hello']
    """
    if "messages" in extra or "format" in extra:
        raise ValidationError("'messages' and 'format' are the file's own keys; name extras else")
    msgs = request("conversation", _messages(messages))["messages"]  # validates, freezes
    body = {"format": FORMAT, **thaw(freeze_map(extra)), "messages": thaw(msgs)}
    try:
        return json.dumps(body, ensure_ascii=False, indent=1)
    except TypeError as exc:
        raise ValidationError(
            f"this conversation holds something JSON cannot store ({exc}); keep message "
            "content and extras to text, numbers, lists and maps"
        ) from exc


def conversation_from_json(text: str) -> PMap[str, Any]:
    """Return ``{"messages": ..., **extras}`` read from :func:`conversation_to_json`'s text.

    >>> saved = conversation_from_json('{"messages": [{"role": "user", "content": "Hi"}]}')
    >>> saved["messages"][0]["role"]
    'user'
    """
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"this is not a saved conversation (not JSON: {exc})") from exc
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise ValidationError(
            "this is not a saved conversation: expected a JSON object with a 'messages' list"
        )
    found = body.pop("format", FORMAT)
    if found != FORMAT:
        raise ValidationError(f"unknown conversation format {found!r}; this Conduit reads {FORMAT}")
    msgs: PVector[Any] = request("conversation", body.pop("messages"))["messages"]
    return freeze_map({**body, "messages": msgs})


def save_conversation(messages: Any, path: str | os.PathLike[str], /, **extra: Any) -> Path:
    """Write *messages* (or a request or context) to *path* as JSON, atomically; return the path.

    A crash while writing leaves the previous file whole: the text goes to a temporary file
    beside it, fsynced, which then replaces it.
    """
    target = Path(path)
    write_atomic(target, conversation_to_json(messages, **extra))
    return target


_REMEDY = "fix it, restore it from a backup, or delete it to start a new conversation"


def load_conversation(path: str | os.PathLike[str]) -> PMap[str, Any]:
    """Return ``{"messages": ..., **extras}`` from a file :func:`save_conversation` wrote.

    Continue it with ``c.request(model, load_conversation(p)["messages"])``. A file that is
    not a saved conversation is a ``ValidationError`` naming it and what to do.
    """
    target = Path(path)
    if not target.exists():
        raise ValidationError(f"no saved conversation at {target}: save one with save_conversation")
    try:
        return conversation_from_json(target.read_text(encoding="utf-8"))
    except (ValidationError, UnicodeDecodeError) as exc:
        raise ValidationError(
            f"{target}: {exc}; {_REMEDY}", data={"path": str(target), "remedy": _REMEDY}
        ) from None
