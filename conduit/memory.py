"""Conversation memory as pure functions over message vectors, and their middleware.

A window keeps every system message and the most recent turns, and never separates a tool
result from the assistant turn that called it: an assistant message with tool calls and the
tool results answering it are kept or dropped together. Nor does it ever drop the question:
the *latest turn* (the last user message and everything after it, the agent's tool calls and
their results included) is kept whole, or ``ContextLengthError`` says it does not fit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from pyrsistent import PVector, pvector

from conduit._data import freeze, freeze_map
from conduit._drive import Effect
from conduit._options import Builder, configure, number
from conduit._types import AsyncHandler, Flow, Handler, Request
from conduit.catalog import asked_output, context_window
from conduit.errors import ContextLengthError, ValidationError
from conduit.middleware import HISTORY, Middleware, middleware
from conduit.request import content, message, text
from conduit.tokens import estimate_message_tokens

__all__ = [
    "ANSWER_RESERVE",
    "DEFAULT_WINDOW",
    "SUMMARY_NAME",
    "latest_turn",
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

#: Bare ``with_window``: the last 20 non-system messages. That is ten exchanges of chat, the
#: length at which ``with_summary`` starts condensing, and a whole default agent run (ten
#: model calls, one tool call each: the question and nine call/result pairs) fits in it.
DEFAULT_WINDOW = 20
#: Room bare ``with_token_limit`` leaves for the answer when the request sets no
#: ``max_tokens``: what Conduit asks Anthropic for by default, a common output cap.
ANSWER_RESERVE = 4096


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


def _live(messages: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    """The units a window may keep: all but tool results that lost their caller."""
    return [g for g in units(messages) if not all(messages[i]["role"] == "tool" for i in g)]


def _turn(messages: Sequence[Mapping[str, Any]], groups: list[list[int]]) -> list[list[int]]:
    """The units of *groups* from the latest user message on (none without a user message)."""
    starts = [k for k, g in enumerate(groups) if messages[g[0]]["role"] == "user"]
    return groups[starts[-1] :] if starts else []


def latest_turn(messages: Sequence[Mapping[str, Any]]) -> PVector[Any]:
    """Return the latest turn: the last user message and all after it (no orphaned results).

    This is what every window keeps, whatever its size. Empty without a user message.

    >>> import conduit as c
    >>> call = {"id": "t", "name": "f", "arguments": {}}
    >>> msgs = [c.user("old"), c.assistant("a"), c.user("q"), c.assistant("", [call]),
    ...         c.tool_result("t", "4")]
    >>> [m["role"] for m in latest_turn(msgs)]
    ['user', 'assistant', 'tool']
    """
    frozen = freeze(list(messages))
    return pvector(frozen[i] for g in _turn(messages, _live(messages)) for i in g)


def _fitting(sizes: Sequence[int], room: int) -> int:
    """How many of the last *sizes* fit in *room* together."""
    total = 0
    for k, size in enumerate(reversed(sizes)):
        total += size
        if total > room:
            return k
    return len(sizes)


def _keep(messages: Sequence[Mapping[str, Any]], groups: list[list[int]]) -> PVector[Any]:
    kept = {i for g in groups for i in g}
    frozen = freeze(list(messages))
    return pvector(m for i, m in enumerate(frozen) if m["role"] == "system" or i in kept)


def _no_room(needs: str, allows: str, fix: str, **facts: int) -> ContextLengthError:
    msg = f"the latest turn needs {needs}; {allows}: {fix}"
    return ContextLengthError(msg, data=facts)


def window(messages: Sequence[Mapping[str, Any]], n: int) -> PVector[Any]:
    """Return every system message and at most *n* of the most recent others, in order.

    The latest turn (:func:`latest_turn`) is always among them; when it alone holds more than
    *n* messages this raises ``ContextLengthError`` instead of returning a window without the
    question. Windowing twice changes nothing more.

    >>> import conduit as c
    >>> msgs = [c.system("s"), c.user("1"), c.assistant("2"), c.user("3"), c.assistant("4")]
    >>> [m["content"] for m in window(msgs, 2)]
    ['s', '3', '4']
    >>> window(msgs, 1)
    Traceback (most recent call last):
    conduit.errors.ContextLengthError: the latest turn needs 2 messages (the last user message \
and all after it); the window allows 1: keep at least 2 (c.with_window(2)), or start a new \
conversation
    """
    room = number("window", "n", n, whole=True, zero=True)
    groups = _live(messages)
    need = sum(len(g) for g in _turn(messages, groups))
    if need > room:
        raise _no_room(
            f"{need:,} messages (the last user message and all after it)",
            f"the window allows {room:,}",
            f"keep at least {need:,} (c.with_window({need})), or start a new conversation",
            needed_messages=need,
            allowed_messages=room,
        )
    return _keep(messages, groups[len(groups) - _fitting([len(g) for g in groups], room) :])


def _recent(messages: Sequence[Mapping[str, Any]], n: int) -> set[int]:
    """The indexes of the most recent whole units, at most *n* messages; no orphaned result."""
    groups = _live(messages)
    return {i for g in groups[len(groups) - _fitting([len(g) for g in groups], n) :] for i in g}


def token_window(
    messages: Sequence[Mapping[str, Any]], max_tokens: int, count: Counter | None = None
) -> PVector[Any]:
    """Return every system message and the most recent others that fit in *max_tokens*.

    *count* measures a list of messages (default: a fast estimate, four characters a token).
    The latest turn (:func:`latest_turn`) is always kept; when it does not fit with the system
    messages this raises ``ContextLengthError``, naming both sizes.

    >>> import conduit as c
    >>> msgs = [c.system("s"), c.user("x" * 400), c.user("recent")]
    >>> [m["content"] for m in token_window(msgs, 20)]
    ['s', 'recent']
    >>> token_window(msgs, 8)
    Traceback (most recent call last):
    conduit.errors.ContextLengthError: the latest turn needs 11 tokens with the system prompt \
(1 message from the last user message on); the limit allows 8: raise it \
(c.with_token_limit(11) or more), or shorten the system prompt, the question or the tool results
    """
    limit = number("token_window", "max_tokens", max_tokens, whole=True, zero=True)
    return _fit_tokens(
        messages, limit, _counter("token_window", count), f"the limit allows {limit:,}"
    )


def _counter(builder: str, count: Any) -> Any:
    if count is not None and not callable(count):
        msg = (
            f"{builder}(count=...) must be a function from a list of messages to a token "
            f"count (like conduit.tokens.estimate_message_tokens), not {count!r:.40}"
        )
        raise ValidationError(msg)
    return count


def _fit_tokens(
    messages: Sequence[Mapping[str, Any]], limit: int, count: Counter | None, allows: str
) -> PVector[Any]:
    measure = count or estimate_message_tokens
    groups = _live(messages)
    system = measure([m for m in messages if m["role"] == "system"])
    costs = [measure([messages[i] for i in g]) for g in groups]
    turn = _turn(messages, groups)
    need = system + sum(costs[len(groups) - len(turn) :])
    if need > limit:
        size = sum(len(g) for g in turn)
        raise _no_room(
            f"{need:,} tokens with the system prompt ({size} message{'s' * (size != 1)} "
            "from the last user message on)",
            allows,
            f"raise it (c.with_token_limit({need}) or more), or shorten the system prompt, "
            "the question or the tool results",
            needed_tokens=need,
            allowed_tokens=limit,
        )
    return _keep(messages, groups[len(groups) - _fitting(costs, limit - system) :])


def _sent(req: Request, trimmed: PVector[Any]) -> Request:
    return req if trimmed == req["messages"] else req.set("messages", trimmed)


def _window_flow(req: Request, *, n: int) -> Flow:
    ctx: Request = yield _sent(req, window(req["messages"], n))
    return ctx


def _model_room(req: Request) -> tuple[int, str]:
    """The prompt tokens *req*'s model takes: its context window less room for the answer."""
    model = req["model"]
    size = context_window(model)
    if size is None:
        msg = (
            f"with_token_limit does not know the context window of {model!r}: pass the "
            "prompt's token limit, e.g. c.with_token_limit(8000)"
        )
        raise ValidationError(msg, data={"model": model})
    answer = asked_output(req.get("options")) or ANSWER_RESERVE
    room = size - answer
    if room <= 0:
        msg = f"max_tokens={answer:,} leaves no room for the prompt in {model}'s {size:,} tokens"
        raise ValidationError(msg, data={"model": model})
    return room, f"{model} allows {room:,} ({size:,} less {answer:,} for the answer)"


def _token_flow(req: Request, *, max_tokens: int | None, count: Counter | None) -> Flow:
    limit, allows = (
        _model_room(req) if max_tokens is None else (max_tokens, f"the limit allows {max_tokens:,}")
    )
    ctx: Request = yield _sent(req, _fit_tokens(req["messages"], limit, count, allows))
    return ctx


def _build_window(*, n: Any = DEFAULT_WINDOW) -> Middleware:
    return middleware(_window_flow, name="window", n=number("with_window", "n", n, whole=True))


def _build_tokens(*, max_tokens: Any = None, count: Any = None) -> Middleware:
    limit = number("with_token_limit", "max_tokens", max_tokens, whole=True, optional=True)
    counter = _counter("with_token_limit", count)
    return middleware(_token_flow, name="token_limit", max_tokens=limit, count=counter)


_WINDOW = Builder(
    name="with_window",
    build=_build_window,
    bare=_build_window(),
    first="n",
    example="c.with_window(20)",
    hints={"max_messages": "pass the count: c.with_window(20)"},
)
_TOKENS = Builder(
    name="with_token_limit",
    build=_build_tokens,
    bare=_build_tokens(),
    first="max_tokens",
    example="c.with_token_limit(8000)",
)


def with_window(n: Any = None, /, **options: Any) -> Any:
    """Return a transform sending only the system messages and the last *n* others.

    Bare (``pipe(req, c.with_window, ...)``) it keeps :data:`DEFAULT_WINDOW` (20). The latest
    turn is always sent whole: when it alone holds more than *n* messages the call raises
    ``ContextLengthError`` before anything is sent. Only the wire request is trimmed; the
    context that comes back holds the whole conversation.

    >>> from toolz import pipe
    >>> import conduit as c
    >>> script = c.mock_script("ok")
    >>> req = c.request("m", [c.system("s"), "1", "2", "3"], mock=script)
    >>> _ = pipe(req, c.with_window(1), c.mock_call)
    >>> [m["content"] for m in script.calls[0]["messages"]]
    ['s', '3']
    >>> c.with_window(0)
    Traceback (most recent call last):
    conduit.errors.ValidationError: with_window(n=...) must be a whole number > 0, not 0
    """
    return configure(_WINDOW, n, options)


def with_token_limit(max_tokens: Any = None, /, **options: Any) -> Any:
    """Return a transform trimming old turns so the prompt fits *max_tokens* (system kept).

    Bare, the limit is the model's context window (``conduit.catalog.context_window``) less
    room for the answer: the request's ``max_tokens`` option, else :data:`ANSWER_RESERVE`
    (4096); a model with no known window is a ``ValidationError`` at call time. *count*
    measures a list of messages (default: an estimate, four characters a token). When the
    latest turn does not fit with the system messages, ``ContextLengthError`` is raised
    before anything is sent.

    >>> from toolz import pipe
    >>> import conduit as c
    >>> script = c.mock_script("ok")
    >>> req = c.request("gpt-4o-mini", ["x" * 400, "recent"], mock=script)
    >>> _ = pipe(req, c.with_token_limit(20), c.mock_call)
    >>> [m["content"] for m in script.calls[0]["messages"]]
    ['recent']
    >>> _ = pipe(req, c.with_token_limit, c.mock_call)  # gpt-4o-mini: 128,000 - 4,096
    >>> len(script.calls[1]["messages"])
    2
    """
    return configure(_TOKENS, max_tokens, options)


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
    # the documented exception to the context rule: the condensed conversation goes back up
    return ctx if req["messages"] is msgs else ctx.set(HISTORY, req["messages"])


def _build_summary(
    *,
    call: Handler | None = None,
    acall: AsyncHandler | None = None,
    keep: int = 6,
    max_messages: int | None = 20,
    max_tokens: int | None = None,
    model: str | None = None,
    instructions: str | None = None,
) -> Middleware:
    if not callable(call):
        raise ValidationError(
            "with_summary needs the handler that writes summaries: "
            "c.with_summary(c.openai_call, keep=6, max_messages=20)"
        )
    if acall is not None and not callable(acall):
        raise ValidationError("with_summary's acall is the async handler, e.g. c.openai_acall")
    keep = number("with_summary", "keep", keep, whole=True, zero=True)
    max_messages = number("with_summary", "max_messages", max_messages, whole=True, optional=True)
    max_tokens = number("with_summary", "max_tokens", max_tokens, whole=True, optional=True)
    if max_messages is None and max_tokens is None:
        raise ValidationError("with_summary needs max_messages or max_tokens to know when to act")
    return middleware(
        _summary_flow,
        name="summary",
        outermost=True,  # it condenses the caller's conversation, before anything is added
        call=call,
        acall=acall,
        keep=keep,
        max_messages=max_messages,
        max_tokens=max_tokens,
        model=model,
        instructions=instructions,
    )


_SUMMARY = Builder(
    name="with_summary",
    build=_build_summary,
    first="call",
    example="c.with_summary(c.openai_call, keep=6, max_messages=20)",
)


def with_summary(call: Any = None, /, **options: Any) -> Any:
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
    return configure(_SUMMARY, call, options)
