"""The text of a message's content: the one function every layer needs to read content."""

from __future__ import annotations

from typing import Any

__all__ = ["text"]


def text(value: Any) -> str:
    """Return the text of a content value: a string, or the text blocks joined.

    >>> text([{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}])
    'ab'
    """
    if isinstance(value, str):
        return value
    return "".join(b.get("text", "") for b in value or () if b.get("type") == "text")
