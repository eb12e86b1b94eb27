"""The mock provider's wire: scripted, echoing or function-backed answers, for offline runs.

The mock goes through the same exchange as the HTTP providers (``conduit.exchange``); only its
effects differ: instead of a POST it waits the script's ``delay`` (an Effect, so ``with_timeout``
bounds it) and answers from the script (``conduit.script``). Its embeddings are deterministic
unit vectors derived from each text's hash, so offline pipelines get stable results.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Generator, Iterator
from functools import partial
from typing import Any

from pyrsistent import PMap

from conduit._drive import Effect, arun_effects, asleep, run_effects, time_left
from conduit._types import Flow, Request
from conduit.embeddings import embedding_response
from conduit.errors import TimeoutError
from conduit.providers._wire import Wire, passthrough
from conduit.response import make_usage
from conduit.script import MockScript, answer, failure, recorded
from conduit.streams import response_events
from conduit.tokens import estimate_tokens

__all__ = ["WIRE", "call_flow", "embed_flow", "mock_vectors"]

DIMENSIONS = 16


def _wait(script: MockScript, req: Request) -> tuple[float, BaseException | None]:
    """Return (seconds to wait, the error once waited): a delay past the deadline times out."""
    left = time_left(req)
    if left is not None and script.delay > left:
        return left, TimeoutError(
            "mock: the call's deadline passed while waiting for the answer",
            data={"deadline_exceeded": True},
        )
    return script.delay, None


def _waited(script: MockScript, req: Request, resp: Any) -> Generator[Any, Any, Any]:
    """Wait as scripted (an Effect, bounded by the deadline), then return *resp* or raise it."""
    pause, late = _wait(script, req)
    if pause:
        yield Effect(partial(time.sleep, pause), partial(asleep, pause))
    if late is not None:
        raise late
    if isinstance(resp, BaseException):
        raise resp
    return resp


def _answered(req: Request) -> Flow:
    """The scripted answer to a chat request, after the scripted wait."""
    script, resp = answer(req)
    done: PMap[str, Any] = yield from _waited(script, req, resp)
    return done


def call_flow(req: Request) -> Flow:
    """Answer *req* from its script (or echo it); waits are Effects."""
    resp: PMap[str, Any] = yield from _answered(req)
    return req.set("response", resp)


def _open(req: Request) -> Iterator[Any]:
    script = req.get("mock")
    resp = run_effects("mock", _answered(req))
    delay = getattr(script, "chunk_delay", 0.0)
    for i, event in enumerate(response_events(resp)):
        if delay and i:
            time.sleep(delay)
        yield event


async def _aopen(req: Request) -> AsyncIterator[Any]:
    script = req.get("mock")
    resp = await arun_effects("mock", _answered(req))
    delay = getattr(script, "chunk_delay", 0.0)
    for i, event in enumerate(response_events(resp)):
        if delay and i:
            await asleep(delay)
        yield event


def mock_vectors(texts: Any) -> list[list[float]]:
    """Return a deterministic unit vector for each text (from its hash): offline embeddings.

    >>> a, b, a2 = mock_vectors(["cat", "dog", "cat"])
    >>> a == a2, a == b, round(sum(x * x for x in a), 6)
    (True, False, 1.0)
    """
    out = []
    for t in texts:
        digest = hashlib.blake2b(t.encode(), digest_size=DIMENSIONS * 2).digest()
        raw = [
            int.from_bytes(digest[i : i + 2], "little") - 32768 for i in range(0, len(digest), 2)
        ]
        norm = sum(x * x for x in raw) ** 0.5 or 1.0
        out.append([x / norm for x in raw])
    return out


def embed_flow(req: Request) -> Flow:
    """Embed the request's ``input`` with :func:`mock_vectors`; the script's ``delay`` and
    ``fail_first`` apply, and the call is recorded on it, as for chat calls."""
    script, n = recorded(req)
    texts = req["input"]
    used = sum(estimate_tokens(t) for t in texts)
    made = embedding_response(req["model"], mock_vectors(texts), make_usage(used, 0))
    resp = yield from _waited(script, req, failure(script, n) or made)
    return req.set("response", resp)


WIRE = Wire(
    name="mock", call=call_flow, open=_open, aopen=_aopen, decoder=passthrough, embed=embed_flow
)
