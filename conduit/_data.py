"""Freezing plain data at the door, and the masked value that holds secrets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from pyrsistent import PMap, PVector, pmap, pvector

__all__ = ["Secret", "freeze", "freeze_map", "peek", "reveal", "thaw"]


_SCALARS = frozenset({str, int, float, bool, type(None), bytes})


def freeze(value: Any) -> Any:
    """Return *value* with every mapping made a ``pmap`` and every list or tuple a ``pvector``.

    Already-frozen data comes back as the identical object, so freezing at the door is free.

    >>> freeze({"a": [1, (2, {"b": 3})]})["a"][1][1]["b"]
    3
    >>> v = freeze([1, 2]); freeze(v) is v
    True
    """
    if type(value) in _SCALARS:
        return value
    if isinstance(value, PMap):
        if all(_is_frozen(v) for v in value.values()):
            return value
        return pmap({k: freeze(v) for k, v in value.items()})
    if isinstance(value, PVector):
        if all(_is_frozen(v) for v in value):
            return value
        return pvector(freeze(v) for v in value)
    if isinstance(value, Mapping):
        return pmap({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return pvector(freeze(v) for v in value)
    return value


def freeze_map(value: Mapping[str, Any]) -> PMap[str, Any]:
    """Return the mapping *value* frozen (typed twin of :func:`freeze` for maps).

    >>> freeze_map({"a": [1]})["a"][0]
    1
    """
    frozen: PMap[str, Any] = freeze(value)
    return frozen


def _is_frozen(value: Any) -> bool:
    if type(value) in _SCALARS:
        return True
    if isinstance(value, PMap):
        return all(_is_frozen(v) for v in value.values())
    if isinstance(value, PVector):
        return all(_is_frozen(v) for v in value)
    return not isinstance(value, Mapping | list | tuple)


def peek(m: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """Return ``m[key]``, or *default* when absent: ``pmap.get`` for hot paths.

    A pmap's ``get`` raises and catches a ``KeyError`` inside pyrsistent on a miss, which costs
    twice a hit; a membership test first does not.

    >>> peek(freeze({"a": 1}), "a"), peek(freeze({"a": 1}), "b", 0)
    (1, 0)
    """
    return m[key] if key in m else default  # noqa: SIM401 (the point of this function)


def thaw(value: Any) -> Any:
    """Return plain ``dict``/``list`` data for *value* (the JSON boundary); secrets stay masked.

    >>> thaw(freeze({"a": [1, {"b": 2}]}))
    {'a': [1, {'b': 2}]}
    """
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, PVector | list | tuple):
        return [thaw(v) for v in value]
    return value


@attrs.frozen
class Secret:
    """A secret string (an API key) whose ``repr`` and ``str`` never show it.

    >>> key = Secret("sk-very-secret")
    >>> key
    Secret('***')
    >>> f"{key}"
    '***'
    >>> reveal(key)
    'sk-very-secret'
    """

    value: str = attrs.field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"


def reveal(secret: Secret | str | None) -> str | None:
    """Return the plain text of *secret* (only the HTTP shell should call this).

    >>> reveal(None) is None
    True
    """
    return secret.value if isinstance(secret, Secret) else secret
