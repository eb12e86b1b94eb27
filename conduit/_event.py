"""Stream events: read-only dicts. Building a pmap per event costs more than a whole chunk of a
raw HTTP stream; a read-only dict costs a tenth of that and still cannot be changed."""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["Event", "event"]


class Event(dict[str, Any]):
    """One stream event (DESIGN §2): a ``dict`` that refuses every change.

    >>> e = event("content_delta", text="Hi")
    >>> e["text"], e == {"type": "content_delta", "text": "Hi"}
    ('Hi', True)
    >>> e["text"] = "x"
    Traceback (most recent call last):
    TypeError: stream events are read-only; copy with dict(event) to change one
    """

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("stream events are read-only; copy with dict(event) to change one")

    __setitem__ = __delitem__ = _read_only
    clear = pop = popitem = setdefault = update = __ior__ = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        return (Event, (dict(self),))


def event(kind: str, **fields: Any) -> Event:
    """Return a stream event of type *kind*."""
    return Event(type=kind, **fields)
