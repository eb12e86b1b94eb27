"""Conversation memory as pure functions over message vectors, and their middleware.

A window keeps every system message and the most recent turns, and never separates a tool
result from the assistant turn that called it: an assistant message with tool calls and the
tool results answering it are kept or dropped together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pyrsistent import PVector, pvector

from conduit._data import freeze
from conduit._types import Flow, Request
from conduit.errors import ValidationError
from conduit.middleware import Middleware, configurable, middleware
from conduit.tokens import estimate_message_tokens

__all__ = ["token_window", "units", "window", "with_token_limit", "with_window"]

Counter = Callable[[Sequence[Mapping[str, Any]]], int]


def units(messages: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    """Return the indexes of the non-system messages, grouped into indivisible units.

    >>> import conduit as c
    >>> units([c.system("s"), c.user("q"), c.assistant("", [{"id": "t", "name": "f",
    ...        "arguments": {}}]), c.tool_result("t", "4"), c.assistant("done")])
    [[1], [2, 3], [4]]
    """
    groups: list[list[int]] = []
    open_calls: set[str] = set()
    for i, msg in enumerate(messages):
        role = msg["role"]
        if role == "system":
            continue
        if role == "tool" and groups and msg.get("tool_call_id") in open_calls:
            groups[-1].append(i)
            continue
        groups.append([i])
        open_calls = (
            {c["id"] for c in msg.get("tool_calls") or ()} if role == "assistant" else set()
        )
    return groups


def _keep(messages: Sequence[Mapping[str, Any]], kept: set[int]) -> PVector[Any]:
    frozen = freeze(list(messages))
    return pvector(m for i, m in enumerate(frozen) if m["role"] == "system" or i in kept)


def _orphans(messages: Sequence[Mapping[str, Any]], group: list[int]) -> bool:
    """A unit that is only tool results lost its caller: never keep it."""
    return all(messages[i]["role"] == "tool" for i in group)


def window(messages: Sequence[Mapping[str, Any]], n: int) -> PVector[Any]:
    """Return every system message and at most *n* of the most recent others, in order.

    >>> import conduit as c
    >>> msgs = [c.system("s"), c.user("1"), c.assistant("2"), c.user("3"), c.assistant("4")]
    >>> [m["content"] for m in window(msgs, 2)]
    ['s', '3', '4']
    """
    if n < 0:
        raise ValidationError(f"a window keeps a non-negative number of messages, got {n}")
    kept: set[int] = set()
    for group in reversed(units(messages)):
        if len(kept) + len(group) > n:
            break
        if not _orphans(messages, group):
            kept.update(group)
    return _keep(messages, kept)


def token_window(
    messages: Sequence[Mapping[str, Any]], max_tokens: int, count: Counter | None = None
) -> PVector[Any]:
    """Return every system message and the most recent others that fit in *max_tokens*.

    *count* measures a list of messages (default: a fast estimate, four characters a token).

    >>> import conduit as c
    >>> msgs = [c.system("s"), c.user("x" * 400), c.user("recent")]
    >>> [m["content"] for m in token_window(msgs, 20)]
    ['s', 'recent']
    """
    measure = count or estimate_message_tokens
    system = [m for m in messages if m["role"] == "system"]
    budget = max_tokens - measure(system)
    kept: set[int] = set()
    for group in reversed(units(messages)):
        cost = measure([messages[i] for i in group])
        if cost > budget:
            break
        if not _orphans(messages, group):
            kept.update(group)
            budget -= cost
    return _keep(messages, kept)


def _window_flow(req: Request, *, n: int) -> Flow:
    trimmed = window(req["messages"], n)
    ctx: Request = yield (req if trimmed == req["messages"] else req.set("messages", trimmed))
    return ctx


def _token_flow(req: Request, *, max_tokens: int, count: Counter | None = None) -> Flow:
    trimmed = token_window(req["messages"], max_tokens, count)
    ctx: Request = yield (req if trimmed == req["messages"] else req.set("messages", trimmed))
    return ctx


def with_window(n: Any = None, /) -> Any:
    """Return a transform sending only the system messages and the last *n* others.

    >>> from toolz import pipe
    >>> import conduit as c
    >>> script = c.mock_script("ok")
    >>> req = c.request("m", [c.system("s"), "1", "2", "3"], mock=script)
    >>> _ = pipe(req, c.with_window(1), c.mock_call)
    >>> [m["content"] for m in script.calls[0]["messages"]]
    ['s', '3']
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValidationError("with_window needs a number of messages: c.with_window(20)")
    return _window(n=n)


def with_token_limit(max_tokens: Any = None, /, count: Counter | None = None) -> Any:
    """Return a transform trimming old turns so the prompt fits *max_tokens* (system kept)."""
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens <= 0:
        raise ValidationError("with_token_limit needs a token count: c.with_token_limit(8000)")
    return _tokens(max_tokens=max_tokens, count=count)


def _make_window(n: int) -> Middleware:
    return middleware(_window_flow, name="window", n=n)


def _make_tokens(max_tokens: int, count: Counter | None = None) -> Middleware:
    return middleware(_token_flow, name="token_limit", max_tokens=max_tokens, count=count)


_window = configurable(_make_window, "with_window")
_tokens = configurable(_make_tokens, "with_token_limit")
