"""The AWS event-stream framing (``application/vnd.amazon.eventstream``), decoded incrementally.

Bedrock's ConverseStream answers with binary frames, not server-sent events. Each message is

```text
 total length   u32 BE   the whole message, these 4 bytes and the trailing CRC included
 headers length u32 BE
 prelude CRC    u32 BE   CRC-32 of the 8 bytes above
 headers                 repeated: name length u8, name (UTF-8), value type u8, value
 payload                 total - headers - 16 bytes (Bedrock: one JSON object)
 message CRC    u32 BE   CRC-32 of everything before it
```

A header value is, by type: 0/1 true/false (no bytes), 2 int8, 3 int16, 4 int32, 5 int64,
6 bytes and 7 UTF-8 string (each a u16 length then the bytes), 8 timestamp (int64 ms), 9 UUID
(16 bytes); both CRCs are CRC-32 (zlib's). The format is documented with Amazon Lex's and
Transcribe's streaming APIs, which share it with Bedrock:
https://docs.aws.amazon.com/lexv2/latest/dg/event-stream-encoding.html and
https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html (``botocore/eventstream.py``
is botocore's decoder). Nothing here needs botocore.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Mapping
from typing import Any, NamedTuple

from conduit.errors import ConnectionError

__all__ = ["EventStreamDecoder", "Message", "encode_message", "split"]

_PRELUDE = 12  # total length, headers length, prelude CRC
_MAX_MESSAGE = 16 * 1024 * 1024 + 128 * 1024  # botocore's payload and headers limits
_FIXED = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}


class Message(NamedTuple):
    """One event-stream message: its headers (``:event-type``, ``:message-type``, ...) and
    payload bytes."""

    headers: Mapping[str, Any]
    payload: bytes


def _corrupt(source: str, why: str) -> ConnectionError:
    return ConnectionError(
        f"{source} sent a corrupted event stream ({why}); the connection was probably garbled "
        "or cut: retry the call",
        data={"provider": source, "corrupt": why},
    )


def _headers(raw: bytes, source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    at = 0
    try:
        while at < len(raw):
            size = raw[at]
            name = raw[at + 1 : at + 1 + size].decode()
            kind, at = raw[at + 1 + size], at + 2 + size
            if kind in (0, 1):
                value: Any = kind == 0
            elif kind in _FIXED:
                (value,) = struct.unpack_from(_FIXED[kind], raw, at)
                at += struct.calcsize(_FIXED[kind])
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", raw, at)
                value = raw[at + 2 : at + 2 + length]
                if len(value) != length:
                    raise ValueError("a header value runs past the headers")
                value = value.decode() if kind == 7 else value
                at += 2 + length
            elif kind == 9:
                value, at = uuid.UUID(bytes=raw[at : at + 16]), at + 16
            else:
                raise ValueError(f"unknown header value type {kind}")
            out[name] = value
    except (IndexError, struct.error, UnicodeDecodeError, ValueError) as exc:
        raise _corrupt(source, f"unreadable headers: {exc}") from None
    return out


def split(buffer: bytes | bytearray, source: str = "the server") -> tuple[list[Message], bytes]:
    """Return the complete messages at the start of *buffer* and the bytes left over.

    Both CRCs are checked; a message that fails is a ``ConnectionError`` (retryable).

    >>> frame = encode_message({":event-type": "messageStop"}, b'{"stopReason":"end_turn"}')
    >>> messages, rest = split(frame + frame[:5])
    >>> messages[0].headers[":event-type"], messages[0].payload, len(rest)
    ('messageStop', b'{"stopReason":"end_turn"}', 5)
    """
    out: list[Message] = []
    at = 0
    view = memoryview(buffer)
    while len(buffer) - at >= _PRELUDE:
        total, headers_len, prelude_crc = struct.unpack_from(">III", buffer, at)
        if zlib.crc32(view[at : at + 8]) != prelude_crc:
            raise _corrupt(source, f"prelude CRC mismatch at byte {at}")
        if total < _PRELUDE + 4 + headers_len or total > _MAX_MESSAGE:
            raise _corrupt(source, f"impossible message length {total} at byte {at}")
        if len(buffer) - at < total:
            break
        end = at + total
        (message_crc,) = struct.unpack_from(">I", buffer, end - 4)
        if zlib.crc32(view[at : end - 4]) != message_crc:
            raise _corrupt(source, f"message CRC mismatch at byte {at}")
        start = at + _PRELUDE
        headers = _headers(bytes(view[start : start + headers_len]), source)
        out.append(Message(headers, bytes(view[start + headers_len : end - 4])))
        at = end
    return out, bytes(view[at:])


class EventStreamDecoder:
    """Cuts a byte stream into :class:`Message` s, whatever its chunking (a ``Framer``).

    >>> frame = encode_message({":message-type": "event"}, b"{}")
    >>> decoder = EventStreamDecoder()
    >>> decoder.feed(frame[:7]), len(decoder.feed(frame[7:] + frame)), decoder.flush()
    ([], 2, [])
    """

    def __init__(self, source: str = "the server") -> None:
        self.source = source
        self.buffer = bytearray()
        self.need = _PRELUDE  # bytes before anything can complete: no re-scan of a long message

    def feed(self, chunk: bytes) -> list[Message]:
        """Return the messages *chunk* completes."""
        self.buffer += chunk
        if len(self.buffer) < self.need:
            return []
        messages, rest = split(self.buffer, self.source)
        self.buffer = bytearray(rest)
        left = len(self.buffer)
        self.need = struct.unpack_from(">I", self.buffer)[0] if left >= _PRELUDE else _PRELUDE
        return messages

    def flush(self) -> list[Message]:
        """Return nothing at the end of a stream; raise if a message was left half-sent."""
        if self.buffer:
            size = len(self.buffer)
            raise _corrupt(self.source, f"the stream ended inside a message ({size} bytes)")
        return []


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """Return one event-stream message with string *headers* (for tests and doctests).

    >>> len(encode_message({}, b""))
    16
    """
    raw = b"".join(
        bytes([len(k.encode())])
        + k.encode()
        + b"\x07"
        + struct.pack(">H", len(v.encode()))
        + v.encode()
        for k, v in headers.items()
    )
    prelude = struct.pack(">II", _PRELUDE + len(raw) + len(payload) + 4, len(raw))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw + payload
    return body + struct.pack(">I", zlib.crc32(body))
