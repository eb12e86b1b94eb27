"""The mock's script: what the mock provider answers, as a value that travels on the request.

A script is one reply (every call gets it), a sequence (one per call, in order), or a function
of the request. A reply is text, a response map (missing keys are filled), or an exception
instance to raise. With no script the mock echoes the last user message. The script records
every request it receives (``script.calls``): the wire request, as the middleware shaped it.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from pyrsistent import PMap

from conduit._content import text
from conduit._types import Request
from conduit.errors import ConduitError, ServerError, ValidationError
from conduit.response import make_response, make_tool_call, make_usage
from conduit.tokens import estimate_message_tokens, estimate_tokens

__all__ = ["MockScript", "answer", "as_script", "failure", "mock_reply", "mock_script", "recorded"]


class _State:
    """The script's record of calls (mutable, shared by every request holding the script)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[Request] = []

    def __getstate__(self) -> list[Request]:
        return self.calls

    def __setstate__(self, calls: list[Request]) -> None:
        self.lock = threading.Lock()
        self.calls = calls

    def record(self, req: Request) -> int:
        with self.lock:
            self.calls.append(req)
            return len(self.calls) - 1


@attrs.frozen
class MockScript:
    """What the mock answers; build with :func:`mock_script` or pass ``mock=`` to ``request``.

    >>> s = mock_script(["a", "b"])
    >>> s.calls
    ()
    """

    replies: tuple[Any, ...] = ()
    fn: Callable[[Request], Any] | None = None
    repeat: bool = True
    fail_first: int = 0
    error: BaseException | None = attrs.field(default=None, eq=False)
    delay: float = 0.0
    chunk_delay: float = 0.0
    _state: _State = attrs.field(factory=_State, eq=False, repr=False, alias="_state")

    @property
    def calls(self) -> tuple[Request, ...]:
        """The requests this script has received, in order."""
        return tuple(self._state.calls)


def mock_script(
    replies: Any = None,
    *,
    fail_first: int = 0,
    error: BaseException | None = None,
    delay: float = 0.0,
    chunk_delay: float = 0.0,
) -> MockScript:
    """Return a mock script: *replies* is one reply, a list of them, a function, or None (echo).

    The first *fail_first* calls raise *error* (a ``ServerError`` 503 by default); each call
    waits *delay* seconds first, and streams wait *chunk_delay* between events.

    >>> import conduit as c
    >>> s = mock_script(["one", "two"])
    >>> [c.content(c.mock_call(c.request("m", "hi", mock=s))) for _ in range(2)]
    ['one', 'two']
    >>> len(s.calls)
    2
    """
    if replies is None:
        seq: tuple[Any, ...] = ()
        fn = None
        repeat = True
    elif callable(replies) and not isinstance(replies, BaseException):
        seq, fn, repeat = (), replies, True
    elif isinstance(replies, str | Mapping | BaseException):
        seq, fn, repeat = (replies,), None, True
    elif isinstance(replies, Sequence):
        seq, fn, repeat = tuple(replies), None, False
        if not seq:
            raise ValidationError("a mock script needs at least one reply (or None to echo)")
    else:
        raise ValidationError(
            f"a mock reply is text, a response map, an exception or a function; got "
            f"{type(replies).__name__}"
        )
    return MockScript(
        replies=seq,
        fn=fn,
        repeat=repeat,
        fail_first=fail_first,
        error=error,
        delay=delay,
        chunk_delay=chunk_delay,
    )


def as_script(value: Any) -> MockScript:
    """Return *value* as a :class:`MockScript` (what ``request(..., mock=value)`` stores)."""
    return value if isinstance(value, MockScript) else mock_script(value)


def _echo(req: Request) -> str:
    for msg in reversed(req.get("messages") or ()):
        if msg["role"] == "user":
            return text(msg["content"])
    return ""


def failure(script: MockScript, n: int) -> BaseException | None:
    """Return the error scripted for call *n* (0-based) by ``fail_first``, or None."""
    if n >= script.fail_first:
        return None
    return (
        copy.copy(script.error)
        if script.error
        else ServerError(
            f"mock: simulated failure {n + 1} of {script.fail_first}",
            provider="mock",
            status_code=503,
        )
    )


def recorded(req: Request) -> tuple[MockScript, int]:
    """Return (the request's script, this call's number), recording the call on the script."""
    value = req.get("mock")
    if value is None:  # no script: keep no record (nothing to read it from)
        return _ECHO, 0
    script = value if isinstance(value, MockScript) else _script_of(value)
    return script, script._state.record(req)


_SCRIPTS: dict[int, tuple[Any, MockScript]] = {}


def _script_of(value: Any) -> MockScript:
    """The script for a raw value set on a request (``req.set("mock", ["a", "b"])``): one per
    value, so a list keeps its place from call to call, as ``request(..., mock=[...])`` does."""
    found = _SCRIPTS.get(id(value))
    if found is not None and found[0] is value:
        return found[1]
    script = as_script(value)
    if len(_SCRIPTS) >= 1024:
        _SCRIPTS.clear()
    _SCRIPTS[id(value)] = (value, script)
    return script


def _choose(script: MockScript, req: Request, n: int) -> Any:
    failed = failure(script, n)
    if failed is not None:
        return failed
    n -= script.fail_first
    if script.fn is not None:
        return script.fn(req)
    if not script.replies:
        return _echo(req)
    if n < len(script.replies):
        return _resolve(script.replies[n], req)
    if script.repeat:
        return _resolve(script.replies[-1], req)
    raise ConduitError(
        f"mock script exhausted: it has {len(script.replies)} replies and this is call "
        f"{n + 1} (every request carrying the script counts, branches of a conversation and "
        "re-runs included); add replies to the list, pass one reply to repeat it, or a "
        "function of the request",
        data={"calls": n + 1},
    )


def _resolve(reply: Any, req: Request) -> Any:
    """A function in a reply list answers that one call."""
    return reply(req) if callable(reply) and not isinstance(reply, BaseException) else reply


def _tool_calls(calls: Any, n: int) -> list[PMap[str, Any]]:
    return [
        make_tool_call(c.get("id") or f"call_{n}_{i}", c["name"], c.get("arguments") or {})
        for i, c in enumerate(calls or ())
    ]


def mock_reply(req: Request, reply: Any, n: int = 0) -> PMap[str, Any] | BaseException:
    """Return the response map for one scripted *reply* to *req* (or the exception to raise).

    >>> import conduit as c
    >>> calls = [{"name": "add", "arguments": {"a": 1}}]
    >>> r = mock_reply(c.request("m", "hi"), {"tool_calls": calls})
    >>> r["stop_reason"], r["tool_calls"][0]["id"]
    ('tool_use', 'call_0_0')
    """
    if isinstance(reply, BaseException):
        return copy.copy(reply)
    prompt = estimate_message_tokens(req.get("messages") or ())
    if isinstance(reply, str):
        reply = {"content": reply}
    if not isinstance(reply, Mapping):
        raise ValidationError(f"mock reply must be text, a map or an exception, got {reply!r:.60}")
    fields = dict(reply)
    body = fields.pop("content", "")
    out = estimate_tokens(text(body))
    return make_response(
        body,
        model=fields.pop("model", None) or req["model"],
        id=fields.pop("id", None) or f"mock-{n}",
        stop_reason=fields.pop("stop_reason", None),
        usage=fields.pop("usage", None) or make_usage(prompt, out),
        tool_calls=_tool_calls(fields.pop("tool_calls", None), n),
        **fields,
    )


def answer(req: Request) -> tuple[MockScript, PMap[str, Any] | BaseException]:
    """Return (the script, its reply to *req*): a response map or the exception to raise.

    The call is recorded on the script. ``req["mock"]`` may be a script or anything
    :func:`as_script` takes (``req.set("mock", "text")`` works like ``request(..., mock="text")``).
    """
    if req.get("mock") is None:
        return _ECHO, mock_reply(req, _echo(req))
    script, n = recorded(req)
    return script, mock_reply(req, _choose(script, req, n), n)


_ECHO = MockScript()
