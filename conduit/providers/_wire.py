"""What the exchange needs from a provider: a call flow, stream shells and a stream decoder.

Every provider, the mock included, is one :class:`Wire`. The exchange (``conduit.exchange``)
chooses the wire from the request and runs it; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from typing import Any

import attrs

from conduit._drive import Done, time_left
from conduit._types import Flow, Request
from conduit.sse import feed, flush
from conduit.streams import collect

__all__ = ["Decoder", "Wire", "passthrough"]

Step = Callable[[Any, Any], tuple[Any, list[Any]]]


class Decoder:
    """Turns a provider's raw stream items into Conduit events, then the final context.

    Raw items are bytes of server-sent events (``sse=True``) or already-decoded items; *step*
    is the codec's pure ``(state, item) -> (state, events)``, *end* its closing events. Like
    httpx's line decoder, it keeps a buffer between chunks; the deadline is checked per chunk.
    """

    def __init__(
        self, req: Request, state: Any, step: Step, end: Callable[[Any], list[Any]], sse: bool
    ) -> None:
        self.req, self.state, self.step, self.end, self.sse = req, state, step, end, sse
        self.timed = "conduit/deadline" in req
        self.buffer = b""
        self.seen: list[Any] = []
        self.failed: BaseException | None = None

    def feed(self, raw: Any) -> list[Any]:
        """Return the events completed by one raw item.

        If decoding fails part-way, the events before the failure are returned and the error
        is raised by the next call (``feed`` or ``finish``), so nothing decoded is withheld.
        """
        if self.failed is not None:
            raise self.failed
        if self.timed:
            time_left(self.req)
        if not self.sse:
            self.state, out = self.step(self.state, raw)
            self.seen.extend(out)
            return out
        self.buffer, items = feed(self.buffer, raw)
        if len(items) == 1:  # the common case: one event per chunk
            try:
                self.state, out = self.step(self.state, items[0])
            except Exception as exc:
                self.failed, out = exc, []
        else:
            out = self._steps(items)
        self.seen.extend(out)
        return out

    def _steps(self, items: Any) -> list[Any]:
        out: list[Any] = []
        step, state = self.step, self.state
        try:
            for item in items:
                state, events = step(state, item)
                out += events
        except Exception as exc:
            self.failed = exc
        self.state = state
        return out

    def finish(self) -> list[Any]:
        """Return the closing events and the :class:`Done` carrying the collected context."""
        if self.failed is not None:
            raise self.failed
        out = self._steps(flush(self.buffer)) if self.sse else []
        if self.failed is not None:
            raise self.failed
        out.extend(self.end(self.state))
        self.seen.extend(out)
        return [*out, Done(build=partial(_final, self.req, self.seen))]


def _final(req: Request, seen: list[Any]) -> Request:
    events = tuple(seen)
    ctx: Request = req.update({"response": collect(events), "conduit/events": events})
    return ctx


def _identity_step(state: Any, item: Any) -> tuple[Any, list[Any]]:
    return state, [item]


def _no_end(state: Any) -> list[Any]:
    return []


def passthrough(req: Request) -> Decoder:
    """Return a decoder for a source that yields Conduit events already (the mock)."""
    return Decoder(req, None, _identity_step, _no_end, sse=False)


@attrs.frozen(kw_only=True)
class Wire:
    """How the exchange talks to one provider.

    ``call(req)`` and ``embed(req)`` are flows that yield only Effects (the I/O, as a sync and
    an async shell) and return the context; ``open``/``aopen`` are the stream shells, yielding
    raw items for ``decoder(req)``.
    """

    name: str
    call: Callable[[Request], Flow]
    open: Callable[[Request], Iterator[Any]]
    aopen: Callable[[Request], AsyncIterator[Any]]
    decoder: Callable[[Request], Decoder]
    embed: Callable[[Request], Flow] | None = None
