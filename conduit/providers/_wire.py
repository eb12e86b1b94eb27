"""What the exchange needs from a provider: a call flow, stream shells and a stream decoder.

Every provider, the mock included, is one :class:`Wire`. The exchange (``conduit.exchange``)
chooses the wire from the request and runs it; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
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
        self.buffer = b""
        self.seen: list[Any] = []

    def feed(self, raw: Any) -> Iterator[Any]:
        """Yield the events completed by one raw item, each as soon as it is decoded."""
        time_left(self.req)
        items: Any = (raw,)
        if self.sse:
            self.buffer, items = feed(self.buffer, raw)
        for item in items:
            self.state, events = self.step(self.state, item)
            self.seen.extend(events)
            yield from events

    def finish(self) -> list[Any]:
        """Return the closing events and the :class:`Done` carrying the collected context."""
        out: list[Any] = []
        for item in flush(self.buffer) if self.sse else ():
            self.state, events = self.step(self.state, item)
            out.extend(events)
        out.extend(self.end(self.state))
        self.seen.extend(out)
        seen = tuple(self.seen)
        ctx = self.req.update({"response": collect(seen), "conduit/events": seen})
        return [*out, Done(ctx)]


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
