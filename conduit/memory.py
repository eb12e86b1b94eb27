"""Conversation memory as pure functions over message vectors, and their middleware.

A window keeps every system message and the most recent turns, and never separates a tool
result from the assistant turn that called it: an assistant message with tool calls and the
tool results answering it are kept or dropped together.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from pyrsistent import PVector, pvector

from conduit._data import freeze, freeze_map
from conduit._drive import Effect
from conduit._types import AsyncHandler, Flow, Handler, Request
from conduit.errors import ValidationError
from conduit.middleware import Middleware, configurable, middleware
from conduit.request import content, message, text
from conduit.tokens import estimate_message_tokens

__all__ = [
    "SUMMARY_NAME",
    "summarize",
    "summary_prompt",
    "token_window",
    "units",
    "window",
    "with_summary",
    "with_token_limit",
    "with_window",
]

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
    return _keep(messages, _recent(messages, n))


def _recent(messages: Sequence[Mapping[str, Any]], n: int) -> set[int]:
    """The indexes of the most recent whole units, at most *n* messages; no orphaned result."""
    kept: set[int] = set()
    for group in reversed(units(messages)):
        if len(kept) + len(group) > n:
            break
        if not _orphans(messages, group):
            kept.update(group)
    return kept


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


#: The ``name`` of the system message a summary is kept in; the next summary replaces it.
SUMMARY_NAME = "conduit_summary"
SUMMARY_INSTRUCTIONS = (
    "You condense conversations. Summarise the conversation below in a few sentences: keep "
    "every fact, name, number, decision and open question a later answer may need. Write the "
    "summary only."
)


def _is_summary(msg: Mapping[str, Any]) -> bool:
    return msg["role"] == "system" and msg.get("name") == SUMMARY_NAME


def _kept_units(messages: Sequence[Mapping[str, Any]], keep: int) -> set[int]:
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 0:
        raise ValidationError(f"keep is a non-negative number of recent messages, got {keep!r}")
    return _recent(messages, keep)


def _older(messages: Sequence[Mapping[str, Any]], keep: int) -> list[Mapping[str, Any]]:
    """The messages a summary replaces: an earlier summary and every turn not kept (a tool
    result whose calling turn is gone included: its text goes into the summary)."""
    kept = _kept_units(messages, keep)
    return [
        m
        for i, m in enumerate(messages)
        if _is_summary(m) or (m["role"] != "system" and i not in kept)
    ]


def _line(msg: Mapping[str, Any]) -> str:
    if _is_summary(msg):
        return f"(summary of what came before) {msg['content']}"
    said = text(msg.get("content", ""))
    calls = [
        f"[called {c['name']}({json.dumps(dict(c.get('arguments') or {}), sort_keys=True)})]"
        for c in msg.get("tool_calls") or ()
    ]
    return f"{msg['role']}: " + " ".join(x for x in [said, *calls] if x)


def summary_prompt(
    messages: Sequence[Mapping[str, Any]], *, keep: int = 6, instructions: str | None = None
) -> PVector[Any]:
    """Return the messages asking a model to condense what :func:`summarize` would replace.

    Empty when there is nothing to condense (every non-system turn is among the last *keep*).

    >>> import conduit as c
    >>> msgs = [c.system("Be kind."), c.user("I am Ada."), c.assistant("Hi Ada!"), c.user("Bye")]
    >>> print(summary_prompt(msgs, keep=1)[1]["content"])
    user: I am Ada.
    assistant: Hi Ada!
    >>> len(summary_prompt(msgs, keep=10))
    0
    """
    older = _older(messages, keep)
    if not older:
        return pvector()
    transcript = "\n".join(_line(m) for m in older)
    return pvector(
        [message("system", instructions or SUMMARY_INSTRUCTIONS), message("user", transcript)]
    )


def summarize(
    messages: Sequence[Mapping[str, Any]],
    summary: str | Callable[[PVector[Any]], str],
    *,
    keep: int = 6,
) -> PVector[Any]:
    """Return *messages* with the older turns replaced by one system message holding *summary*.

    Every system message is kept (an earlier summary is replaced, not stacked), and so are the
    last *keep* non-system messages, whole: an assistant turn with tool calls stays with its
    tool results. *summary* is the text, or a function of :func:`summary_prompt`'s messages
    returning it (e.g. one that calls a model); with text this is pure.

    >>> import conduit as c
    >>> msgs = [c.system("Be kind."), c.user("I am Ada."), c.assistant("Hi Ada!"), c.user("Bye")]
    >>> out = summarize(msgs, "The user is Ada.", keep=1)
    >>> [m["content"] for m in out]
    ['Be kind.', 'Summary of the earlier conversation: The user is Ada.', 'Bye']
    """
    older = _older(messages, keep)
    if not older:
        return freeze(list(messages))  # type: ignore[no-any-return]
    said = summary if isinstance(summary, str) else summary(summary_prompt(messages, keep=keep))
    if not isinstance(said, str):
        raise ValidationError(
            f"a summary is text, got {type(said).__name__}: return c.content(ctx) from the "
            "summariser"
        )
    note: Any = message("system", f"Summary of the earlier conversation: {said}", name=SUMMARY_NAME)
    kept = _kept_units(messages, keep)
    out: list[Any] = []
    for i, m in enumerate(freeze(list(messages))):
        if (m["role"] == "system" and not _is_summary(m)) or i in kept:
            out.append(m)
        elif note is not None:  # the summary takes the place of the first turn it replaces
            out.append(note)
            note = None
    return pvector(out)


def _too_long(
    messages: Sequence[Mapping[str, Any]], max_messages: int | None, max_tokens: int | None
) -> bool:
    others = [m for m in messages if m["role"] != "system"]
    if max_messages is not None and len(others) > max_messages:
        return True
    return max_tokens is not None and estimate_message_tokens(messages) > max_tokens


def _summary_request(req: Request, prompt: PVector[Any], model: str | None) -> Request:
    options = {k: v for k, v in req["options"].items() if k in ("temperature", "seed")}
    base = req.discard("tools").discard("middleware").discard("response")
    out: Request = base.update(
        freeze_map({"model": model or req["model"], "messages": prompt, "options": options})
    )
    return out


def _summary_flow(
    req: Request,
    *,
    call: Handler,
    acall: AsyncHandler | None,
    keep: int,
    max_messages: int | None,
    max_tokens: int | None,
    model: str | None,
    instructions: str | None,
) -> Flow:
    msgs = req["messages"]
    if _too_long(msgs, max_messages, max_tokens):
        prompt = summary_prompt(msgs, keep=keep, instructions=instructions)
        if prompt:
            sreq = _summary_request(req, prompt, model)
            done = yield Effect(partial(call, sreq), partial(acall, sreq) if acall else None)
            req = req.set("messages", summarize(msgs, content(done), keep=keep))
    ctx: Request = yield req
    return ctx


def with_summary(
    call: Any = None,
    /,
    *,
    acall: AsyncHandler | None = None,
    keep: int = 6,
    max_messages: int | None = 20,
    max_tokens: int | None = None,
    model: str | None = None,
    instructions: str | None = None,
) -> Any:
    """Return a transform condensing older turns with *call* once a conversation grows long.

    When the request holds more than *max_messages* non-system messages (or, if given, more
    than about *max_tokens* tokens), the turns before the last *keep* are sent to *call*
    (a handler such as ``c.openai_call``; *acall* is its async twin, used by async calls) on
    *model* (default: the request's own) and replaced by the summary it returns. The context
    that comes back holds the condensed conversation, so ``c.reply`` continues from it.

    >>> from toolz import pipe
    >>> import conduit as c
    >>> script = c.mock_script(["Ada likes tea.", "Tea it is."])
    >>> req = c.request("m", [c.user("I am Ada"), c.assistant("Hi"), c.user("I like tea"),
    ...                       c.assistant("Noted"), c.user("What do I drink?")], mock=script)
    >>> ctx = pipe(req, c.with_summary(c.mock_call, keep=1, max_messages=3), c.mock_call)
    >>> [m["content"] for m in ctx["messages"]]
    ['Summary of the earlier conversation: Ada likes tea.', 'What do I drink?']
    """
    if not callable(call):
        raise ValidationError(
            "with_summary needs the handler that writes summaries: "
            "c.with_summary(c.openai_call, keep=6, max_messages=20)"
        )
    _kept_units((), keep)
    if max_messages is None and max_tokens is None:
        raise ValidationError("with_summary needs max_messages or max_tokens to know when to act")
    return _summary(
        call=call,
        acall=acall,
        keep=keep,
        max_messages=max_messages,
        max_tokens=max_tokens,
        model=model,
        instructions=instructions,
    )


def _make_summary(**options: Any) -> Middleware:
    return middleware(_summary_flow, name="summary", **options)


_summary = configurable(_make_summary, "with_summary")
