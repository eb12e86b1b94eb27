"""What the exchange needs from a provider: a call flow, stream shells and a stream decoder.

Every provider, the mock included, is one :class:`Wire`. The exchange (``conduit.exchange``)
chooses the wire from the request and runs it; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from functools import partial
from typing import Any, Protocol

import attrs

from conduit._drive import Done, time_left
from conduit._types import Flow, Request
from conduit.sse import SSEDecoder
from conduit.streams import collect

__all__ = ["Decoder", "Framer", "Wire", "each", "passthrough"]

Steps = Callable[[Any, Any], tuple[Any, list[Any]]]  # (state, items) -> (state, events)
Guard = Callable[[Exception], Exception]  # a decoding failure -> the error to raise


class Framer(Protocol):
    """Cuts a byte stream into the items a codec decodes: server-sent events by default
    (:class:`~conduit.sse.SSEDecoder`), or another framing (AWS event streams)."""

    def feed(self, chunk: bytes) -> Sequence[Any]: ...

    def flush(self) -> Sequence[Any]: ...


class Decoder:
    """Turns a provider's raw stream items into Conduit events, then the final context.

    Raw items are bytes (``sse=True``: server-sent events, or what *framing* cuts them into)
    or already-decoded items; *steps*
    is the codec's pure ``(state, items) -> (state, events)`` (see :func:`each` for a codec
    that decodes one item at a time), *end* its closing events. Like httpx's line decoder, it
    keeps a buffer between chunks (an :class:`~conduit.sse.SSEDecoder`). The deadline is
    checked on every raw chunk, a keep-alive that completes no event included. *guard* turns
    whatever the codec raised into the error to raise (the HTTP wires: a malformed answer
    becomes a ``ProviderError``, and the request's secrets are masked).
    """

    def __init__(
        self,
        req: Request,
        state: Any,
        steps: Steps,
        end: Callable[[Any], list[Any]],
        sse: bool,
        guard: Guard | None = None,
        framing: Callable[[], Framer] | None = None,
    ) -> None:
        self.req, self.state, self.steps, self.end, self.guard = req, state, steps, end, guard
        self.timed = "conduit/deadline" in req
        self.sse: Framer | None = (framing or SSEDecoder)() if sse else None
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
        items: Any = (raw,) if self.sse is None else self.sse.feed(raw)
        out = self._decode(items)
        self.seen += out
        return out

    def _decode(self, items: Any) -> list[Any]:
        try:
            self.state, out = self.steps(self.state, items)
        except Exception:  # decode again one by one (states are values): keep what came first
            out = []
            for item in items:
                try:
                    self.state, events = self.steps(self.state, (item,))
                except Exception as exc:
                    self.failed = exc if self.guard is None else self.guard(exc)
                    break
                out += events
        return out

    def finish(self) -> list[Any]:
        """Return the closing events and the :class:`Done` carrying the collected context."""
        if self.failed is not None:
            raise self.failed
        out = self._decode(self.sse.flush()) if self.sse is not None else []
        if self.failed is not None:
            raise self.failed
        try:
            out.extend(self.end(self.state))
        except Exception as exc:
            raise (exc if self.guard is None else self.guard(exc)) from None
        self.seen.extend(out)
        return [*out, Done(build=partial(_final, self.req, self.seen))]


def each(step: Callable[[Any, Any], tuple[Any, list[Any]]]) -> Steps:
    """Return *steps* for a codec whose ``step(state, item)`` decodes one item at a time."""
    return partial(_each, step)


def _each(
    step: Callable[[Any, Any], tuple[Any, list[Any]]], state: Any, items: Any
) -> tuple[Any, list[Any]]:
    out: list[Any] = []
    for item in items:
        state, events = step(state, item)
        out += events
    return state, out


def _final(req: Request, seen: list[Any]) -> Request:
    events = tuple(seen)
    response = collect(events)
    if not response["model"]:  # a stream that names no model (Bedrock's) answered req's
        response = response.set("model", req["model"])
    ctx: Request = req.update({"response": response, "conduit/events": events})
    return ctx


def _as_they_are(state: Any, items: Any) -> tuple[Any, list[Any]]:
    return state, list(items)


def _no_end(state: Any) -> list[Any]:
    return []


def passthrough(req: Request) -> Decoder:
    """Return a decoder for a source that yields Conduit events already (the mock)."""
    return Decoder(req, None, _as_they_are, _no_end, sse=False)


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
    #: ``preview(req, stream)``: where a call would go and the body it would send, without
    #: sending it or reading a credential (None: nothing goes over HTTP, as for the mock)
    preview: Callable[[Request, bool], dict[str, Any]] | None = None
