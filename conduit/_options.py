"""The options of the ``with_*`` builders, checked once, where they are written.

Every built-in builder goes through :func:`configure`: an unknown keyword, or a number the
option cannot mean (NaN, a negative count, ``True`` for seconds), is a ``ValidationError`` when
``c.with_x(...)`` is evaluated, naming the valid keywords. The :class:`Middleware` is built
then, once; the transform returned only records that object on each request it is given.
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from conduit.errors import ValidationError
from conduit.middleware import Middleware, add_middleware, recorder

__all__ = [
    "Builder",
    "check_keywords",
    "check_prices",
    "configure",
    "did_you_mean",
    "is_request",
    "keywords_of",
    "number",
    "recorder",
]

PRICE_KEYS = ("input", "output", "cache_read", "cache_write")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the choice closest to *word*, or ``""`` if none is.

    >>> did_you_mean("max_atempts", ["max_attempts", "max_delay"])
    " (did you mean 'max_attempts'?)"
    >>> did_you_mean("colour", ["max_attempts"])
    ''
    """
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keywords(
    builder: str, given: Iterable[str], valid: Sequence[str], hints: Mapping[str, str] | None = None
) -> None:
    """Raise ``ValidationError`` for the first keyword of *given* not in *valid*, with a suggestion.

    *hints* maps other libraries' spellings to what to write instead.

    >>> check_keywords("with_retry", ["max_attempts"], ["max_attempts", "max_delay"])
    >>> check_keywords("with_retry", ["max_atempts"], ["max_attempts", "max_delay"])
    Traceback (most recent call last):
    conduit.errors.ValidationError: with_retry has no option 'max_atempts' (did you mean \
'max_attempts'?); its options are max_attempts, max_delay
    """
    for word in given:
        if word not in valid:
            hint = (hints or {}).get(word)
            suggestion = f" ({hint})" if hint else did_you_mean(word, valid)
            options = ", ".join(valid) or "none"
            msg = f"{builder} has no option {word!r}{suggestion}; its options are {options}"
            raise ValidationError(msg, data={"option": word, "valid": tuple(valid)})


def number(
    builder: str,
    name: str,
    value: Any,
    *,
    whole: bool = False,
    zero: bool = False,
    infinite: bool = False,
    optional: bool = False,
) -> Any:
    """Return *value* as an int (*whole*) or a float if the option can mean it; else raise.

    A number is positive and finite unless *zero* (0 allowed) or *infinite* (``inf`` allowed),
    never NaN and never a bool; *optional* lets ``None`` through.

    >>> number("with_timeout", "seconds", 30), number("with_retry", "max_attempts", 5.0, whole=True)
    (30.0, 5)
    >>> number("with_timeout", "seconds", float("nan"))
    Traceback (most recent call last):
    conduit.errors.ValidationError: with_timeout(seconds=...) must be a finite number > 0, not nan
    >>> number("with_budget", "max_calls", True, whole=True)
    Traceback (most recent call last):
    conduit.errors.ValidationError: with_budget(max_calls=...) must be a whole number > 0, not True
    """
    if value is None and optional:
        return None
    if not _fits(value, whole=whole, zero=zero, infinite=infinite):
        kind = "whole number" if whole else "number" if infinite else "finite number"
        bound = ">= 0" if zero else "> 0"
        none = " or None" if optional else ""
        msg = f"{builder}({name}=...) must be a {kind} {bound}{none}, not {value!r:.40}"
        raise ValidationError(msg, data={"option": name})
    return int(value) if whole else float(value)


def _fits(value: Any, *, whole: bool, zero: bool, infinite: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    x = float(value)
    if math.isnan(x) or (math.isinf(x) and (whole or not infinite)):
        return False
    if whole and not math.isinf(x) and not x.is_integer():
        return False
    return x > 0 or (zero and x == 0)


def check_prices(builder: str, prices: Any) -> Any:
    """Return *prices* if it is a pricing table (USD per million tokens); else raise.

    >>> check_prices("with_cost", {"my-model": {"input": 1, "output": 2}})["my-model"]["input"]
    1
    >>> check_prices("with_cost", {"my-model": {"inputs": 1, "output": 2}})
    Traceback (most recent call last):
    conduit.errors.ValidationError: with_cost prices['my-model'] has no option 'inputs' (did you \
mean 'input'?); its options are input, output, cache_read, cache_write
    """
    if prices is None:
        return None
    if not isinstance(prices, Mapping) or not prices:
        msg = (
            f'{builder}(prices=...) must map model names to prices: {{"m": {{"input": 1.0, ...}}}}'
        )
        raise ValidationError(msg)
    for model, price in prices.items():
        where = f"{builder} prices[{model!r}]"
        if not isinstance(price, Mapping):
            raise ValidationError(f"{where} must be a map like {{'input': 1.0, 'output': 2.0}}")
        check_keywords(where, price, PRICE_KEYS)
        if not {"input", "output"} <= set(price):
            raise ValidationError(f"{where} needs 'input' and 'output' (USD per million tokens)")
        for key, value in price.items():
            number(builder, f"prices[{model!r}][{key!r}]", value, zero=True)
    return prices


def is_request(value: Any) -> bool:
    """Return whether *value* is a request (a map with a model or messages), not a setting.

    >>> is_request({"model": "m", "messages": []}), is_request({"type": "object"})
    (True, False)
    """
    return isinstance(value, Mapping) and ("model" in value or "messages" in value)


def keywords_of(build: Callable[..., Any]) -> tuple[str, ...]:
    """Return the keyword options *build* takes, in order.

    >>> def build(*, seconds=60.0, label="x"): ...
    >>> keywords_of(build)
    ('seconds', 'label')
    """
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in inspect.signature(build).parameters.values() if p.kind in kinds)


@attrs.frozen(kw_only=True)
class Builder:
    """What :func:`configure` needs to know about one ``with_*`` builder."""

    name: str
    build: Callable[..., Middleware]  # keyword options -> Middleware; raises on a bad value
    bare: Middleware | None = None  # recorded by bare use; None: bare use is an error
    first: str | None = None  # the option a positional argument stands for
    example: str = ""  # a configured use, for messages
    hints: Mapping[str, str] = attrs.field(factory=dict)  # other libraries' spellings


def configure(spec: Builder, arg: Any, options: Mapping[str, Any]) -> Any:
    """Return what ``with_x(arg, **options)`` means: *arg* with the middleware if it is a
    request (bare use in a pipe), else a transform recording middleware built here, once.

    >>> import conduit as c
    >>> with_retry = c.with_retry(max_attempts=5)
    >>> reqs = [with_retry(c.request("m", text)) for text in ("a", "b")]
    >>> reqs[0]["middleware"][0] is reqs[1]["middleware"][0]
    True
    >>> c.with_retry(max_retries=5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    conduit.errors.ValidationError: with_retry has no option 'max_retries' (the openai SDK's ...
    """
    if is_request(arg):
        return add_middleware(arg, _built(spec, dict(options)))
    given = dict(options)
    if arg is not None:
        if spec.first is None:
            raise ValidationError(f"{spec.name} takes keyword options: {spec.example}")
        if spec.first in given:
            raise ValidationError(f"{spec.name} got {spec.first} twice: {spec.example}")
        given[spec.first] = arg
    return recorder(spec.name, _built(spec, given))


def _built(spec: Builder, given: dict[str, Any]) -> Middleware:
    if not given and spec.bare is not None:
        return spec.bare
    check_keywords(spec.name, given, keywords_of(spec.build), spec.hints)
    return spec.build(**given)
