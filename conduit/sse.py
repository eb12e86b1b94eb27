"""Server-sent events: a pure incremental parser from bytes, and the two loops that drive it.

Works on bytes so that a UTF-8 character split across chunks is decoded whole; accepts LF, CRLF
and CR line endings (even a CRLF split across chunks); skips comments (keep-alives) and blocks
without data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

__all__ = ["SSE", "feed", "flush", "iter_sse", "parse_block"]


class SSE(NamedTuple):
    """One server-sent event: its ``event`` name (``"message"`` by default) and ``data``."""

    event: str
    data: str


_make = tuple.__new__  # builds an SSE without NamedTuple's Python-level __new__


def parse_block(block: bytes) -> SSE | None:
    """Return the event in one blank-line-terminated *block*, or None (comments, no data).

    >>> parse_block(b"event: ping\\ndata: {}")
    SSE(event='ping', data='{}')
    >>> parse_block(b": keep-alive") is None
    True
    >>> parse_block(b"data: a\\ndata:b")
    SSE(event='message', data='a\\nb')
    """
    if block[:6] == b"data: " and b"\n" not in block:  # the common case, fast
        return SSE("message", block[6:].decode("utf-8", "replace"))
    event = "message"
    data: list[str] = []
    for line in block.decode("utf-8", "replace").split("\n"):
        if not line or line[0] == ":":
            continue
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value or "message"
    return SSE(event, "\n".join(data)) if data else None


def feed(buffer: bytes, chunk: bytes) -> tuple[bytes, tuple[SSE, ...]]:
    """Return (the new buffer, the events completed by *chunk*) — the whole parser, pure.

    >>> buf, events = feed(b"", b"data: hel")
    >>> events
    ()
    >>> buf, events = feed(buf, b"lo\\r\\n\\r\\ndata: [DONE]\\n\\n")
    >>> [e.data for e in events]
    ['hello', '[DONE]']
    """
    data = buffer + chunk
    hold = b""
    if data.endswith(b"\r"):  # may be the first half of a CRLF: decide with the next chunk
        data, hold = data[:-1], b"\r"
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    *blocks, rest = data.split(b"\n\n")
    events = []
    for block in blocks:
        if block[:6] == b"data: " and b"\n" not in block:  # the common case, inlined
            events.append(_make(SSE, ("message", block[6:].decode("utf-8", "replace"))))
        else:
            found = parse_block(block)
            if found is not None:
                events.append(found)
    return rest + hold, tuple(events)


def flush(buffer: bytes) -> tuple[SSE, ...]:
    """Return the event left in *buffer* when the stream ends without a final blank line.

    >>> flush(b"data: last")
    (SSE(event='message', data='last'),)
    """
    _, events = feed(buffer, b"\n\n")
    return events


def iter_sse(chunks: Iterable[bytes]) -> Iterator[SSE]:
    """Yield the events of a byte stream."""
    buffer = b""
    for chunk in chunks:
        buffer, events = feed(buffer, chunk)
        yield from events
    yield from flush(buffer)
