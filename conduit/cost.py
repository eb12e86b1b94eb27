"""``with_cost``: what a call cost, from its usage and a pricing table kept as data.

Prices are USD per million tokens: ``input``, ``output``, and where the provider prices them,
``cache_read`` and ``cache_write``. They come from the model catalog (:mod:`conduit.catalog`,
each entry with its source page and date): check them before relying on them, and add models
with ``c.register_model`` or pass your own table (``prices=``) for models or contracts it does
not know. A cache hit costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from conduit import catalog
from conduit._options import Builder, check_prices, configure
from conduit._types import Flow, Request
from conduit.middleware import Middleware, middleware
from conduit.registry import bare_model
from conduit.tokens import estimate_message_tokens, estimate_tokens

__all__ = [
    "estimate",
    "DEFAULT_OUTPUT_TOKENS",
    "PRICES",
    "call_cost",
    "cost_flow",
    "estimate_call_cost",
    "estimate_usage",
    "price_for",
    "with_cost",
]

log = logging.getLogger("conduit")


class _CatalogPrices(Mapping[str, Mapping[str, float]]):
    """The catalog's prices by model id: a read-only view, read when first used."""

    def _table(self) -> dict[str, Mapping[str, float]]:
        return {m.id: m.prices for m in catalog.models() if m.prices is not None}

    def __getitem__(self, name: str) -> Mapping[str, float]:
        return self._table()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def __repr__(self) -> str:
        return f"<PRICES of {len(self)} models from conduit.catalog>"


#: List prices by model id (USD per million tokens), a view of :mod:`conduit.catalog`: add or
#: change a model with ``c.register_model``, or pass your own table as ``prices=``.
PRICES: Mapping[str, Mapping[str, float]] = _CatalogPrices()


def price_for(model: str, prices: Mapping[str, Mapping[str, float]] = PRICES) -> Any:
    """Return the price entry for *model*: exact name, else the longest known prefix.

    Dated snapshots (``gpt-4o-2024-08-06``, ``claude-sonnet-4-5-20250929``) find their family;
    a ``provider:`` prefix is ignored. None when the model is unknown.

    >>> price_for("gpt-4o-mini-2024-07-18")["input"]
    0.15
    >>> price_for("anthropic:claude-haiku-4-5")["output"]
    5.0
    >>> price_for("my-finetune") is None
    True
    """
    if prices is PRICES:
        info = catalog.lookup(model)
        return None if info is None else info.prices
    name = bare_model(model)
    if name in prices:
        return prices[name]
    matches = [k for k in prices if name.startswith(k + "-") or name.startswith(k + "@")]
    return prices[max(matches, key=len)] if matches else None


def call_cost(usage: Mapping[str, Any], price: Mapping[str, float]) -> float:
    """Return the USD cost of one call's *usage* at *price* (per million tokens).

    Cached prompt tokens are charged at ``cache_read`` / ``cache_write`` where priced.

    >>> call_cost({"input_tokens": 1_000_000, "output_tokens": 1_000_000,
    ...            "cache_read_tokens": 400_000}, {"input": 2.5, "cache_read": 1.25, "output": 10})
    12.0
    """
    read = usage.get("cache_read_tokens") or 0
    write = usage.get("cache_creation_tokens") or 0
    fresh = max((usage.get("input_tokens") or 0) - read - write, 0)
    total = (
        fresh * price["input"]
        + read * price.get("cache_read", price["input"])
        + write * price.get("cache_write", price["input"])
        + (usage.get("output_tokens") or 0) * price["output"]
    )
    return round(total / 1_000_000, 10)


#: The output a call is expected to use when its request sets no ``max_tokens``.
DEFAULT_OUTPUT_TOKENS = 256


def estimate_usage(req: Mapping[str, Any]) -> dict[str, int]:
    """Return the usage *req* is expected to have: its prompt estimated from its text, plus its
    ``max_tokens`` (:data:`DEFAULT_OUTPUT_TOKENS` when unset; none for an embedding request),
    at most the model's maximum output where the catalog knows it.

    Unset, the expectation is not the model's maximum output: that is up to 128,000 tokens, and
    reserving it would refuse most calls under a modest budget; what a call really used replaces
    the estimate when it settles.

    >>> import conduit as c
    >>> estimate_usage(c.request("m", "hello there", max_tokens=100))["total_tokens"]
    107
    >>> estimate_usage(c.embedding_request("m", ["hello there"]))["output_tokens"]
    0
    """
    if req.get("input") is not None:  # an embedding request: its texts, and no output
        prompt, output = sum(estimate_tokens(t) for t in req["input"]), 0
    else:
        prompt = estimate_message_tokens(req.get("messages") or ())
        output = catalog.asked_output(req.get("options")) or DEFAULT_OUTPUT_TOKENS
        info = catalog.lookup(str(req.get("model") or ""))
        if info is not None and info.max_output is not None:
            output = min(output, info.max_output)
    return {"input_tokens": prompt, "output_tokens": output, "total_tokens": prompt + output}


def estimate_call_cost(
    req: Mapping[str, Any], prices: Mapping[str, Mapping[str, float]] = PRICES
) -> float | None:
    """Return the USD *req* is expected to cost (:func:`estimate_usage` at its model's price),
    or None when its model has no price.

    >>> import conduit as c
    >>> estimate_call_cost(c.request("gpt-4o-mini", "hello there", max_tokens=100))
    6.105e-05
    >>> estimate_call_cost(c.request("my-finetune", "hi")) is None
    True
    """
    price = price_for(str(req.get("model") or ""), prices)
    return None if price is None else call_cost(estimate_usage(req), price)


def cost_flow(req: Request, *, prices: Mapping[str, Mapping[str, float]] | None = None) -> Flow:
    """Put the call's USD cost at ``ctx["cost"]`` (0.0 for a cache hit; None if unpriced)."""
    ctx: Request = yield req
    if ctx.get("cache_hit"):
        return ctx.set("cost", 0.0)
    resp = ctx["response"]
    model = resp.get("model") or ctx["model"]
    price = price_for(model, prices or PRICES) or price_for(ctx["model"], prices or PRICES)
    if price is None:
        log.warning("no price known for model %r: pass prices={...} to c.with_cost", model)
        return ctx.set("cost", None)
    return ctx.set("cost", call_cost(resp["usage"], price))


def _build(*, prices: Mapping[str, Mapping[str, float]] | None = None) -> Middleware:
    return middleware(cost_flow, name="cost", prices=check_prices("with_cost", prices))


_SPEC = Builder(
    name="with_cost",
    build=_build,
    bare=_build(),
    example='c.with_cost(prices={"my-model": {"input": 1.0, "output": 2.0}})',
)


def with_cost(req: Any = None, /, **options: Any) -> Any:
    """Record cost middleware: ``ctx["cost"]`` in USD; bare, or with your own table,
    ``c.with_cost(prices={"my-model": {"input": 1.0, "output": 2.0}})`` (USD per million tokens).

    Bare, it prices from the model catalog (:data:`PRICES` is its view; add or change a model
    with ``c.register_model``); a model it does not know costs None and logs a warning. A table
    you pass replaces the catalog's prices, it is not merged.

    >>> from toolz import pipe
    >>> import conduit as c
    >>> usage = {"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500}
    >>> req = c.request("gpt-4o-mini", "hi", mock={"content": "ok", "usage": usage})
    >>> pipe(req, c.with_cost, c.mock_call)["cost"]
    0.00045
    """
    return configure(_SPEC, req, options)


def estimate(req: Mapping[str, Any]) -> dict[str, Any]:
    """Return what *req* is expected to use and cost, before the call: ``{"model",
    "input_tokens", "output_tokens" (what a budget reserves: its ``max_tokens``, else
    :data:`DEFAULT_OUTPUT_TOKENS`), "max_output_tokens" (its ``max_tokens``, else the model's
    maximum output), "price" (USD per million tokens, None when the catalog has none), "cost":
    {"min", "reserved", "max"}}`` in USD (None when unpriced): the prompt alone, the prompt and
    the reserved output (what ``with_budget`` holds while the call runs), the prompt and the
    largest answer. The prompt is the one the middleware would send (windowing and retrieved
    context applied); a request a cache would answer costs nothing.

    >>> import conduit as c
    >>> e = estimate(c.request("gpt-4o-mini", "hello there", max_tokens=100))
    >>> e["input_tokens"], e["output_tokens"], e["cost"]["reserved"] == estimate_call_cost(
    ...     c.request("gpt-4o-mini", "hello there", max_tokens=100))
    (7, 100, True)
    >>> estimate(c.request("my-finetune", "hi"))["cost"]
    {'min': None, 'reserved': None, 'max': None}
    """
    from conduit.exchange import outbound  # the middleware layer reads the exchange's answer

    sent = outbound(req)
    model = str(req.get("model") or "")
    if sent is None:  # answered from a cache
        return {
            "model": model,
            "input_tokens": 0,
            "output_tokens": 0,
            "max_output_tokens": 0,
            "price": price_for(model),
            "cost": {"min": 0.0, "reserved": 0.0, "max": 0.0},
            "cache_hit": True,
        }
    usage = estimate_usage(sent)
    info = catalog.lookup(model)
    sent_output = catalog.sent_output(str(sent.get("model") or model), sent.get("options"))
    largest = sent_output or (info.max_output if info else None)
    if info is not None and info.max_output is not None:
        largest = min(largest or info.max_output, info.max_output)  # the model stops there
    if largest is None:
        largest = usage["output_tokens"]
    price = price_for(model)

    def priced(output: int) -> float | None:
        if price is None:
            return None
        return call_cost({"input_tokens": usage["input_tokens"], "output_tokens": output}, price)

    return {
        "model": model,
        "input_tokens": usage["input_tokens"],
        "output_tokens": usage["output_tokens"],
        "max_output_tokens": largest,
        "price": price,
        "cost": {
            "min": priced(0),
            "reserved": priced(usage["output_tokens"]),
            "max": priced(largest),
        },
    }
