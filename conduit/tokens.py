"""Token counting: a fast, dependency-free estimate, pluggable wherever tokens are counted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from conduit._content import text

__all__ = ["estimate_message_tokens", "estimate_tokens"]


def estimate_tokens(s: str) -> int:
    """Return a quick token estimate for *s*: about four characters a token, at least one.

    >>> estimate_tokens("Hello, world!")
    4
    >>> estimate_tokens("")
    0
    """
    return (len(s) + 3) // 4


def estimate_message_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Return the estimated prompt tokens of *messages* (text plus a few tokens per message).

    >>> estimate_message_tokens([{"role": "user", "content": "Hello, world!"}])
    8
    """
    return sum(4 + estimate_tokens(text(m.get("content", ""))) for m in messages)
