"""``with_budget``: one budget of cost, tokens and calls for everything inside it.

Every real exchange counts — each retry attempt, each tool turn, each agent step — because the
budget's middleware always sits innermost, next to the call. When a limit is reached the next
call raises :class:`BudgetExceededError` before anything is sent, carrying what was spent.
Cache hits cost nothing and are not counted.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import partial
from typing import Any

from conduit._drive import Effect
from conduit._options import Builder, check_prices, configure, number
from conduit._types import Flow, Request
from conduit.cost import PRICES, call_cost, price_for
from conduit.errors import BudgetExceededError, ValidationError
from conduit.middleware import Middleware, middleware

__all__ = ["Budget", "budget_flow", "with_budget"]


class Budget:
    """Limits and what has been spent against them (thread-safe, shared by reference)."""

    def __init__(
        self,
        *,
        max_cost: float | None = None,
        max_tokens: int | None = None,
        max_calls: int | None = None,
        prices: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        if max_cost is None and max_tokens is None and max_calls is None:
            raise ValidationError("a budget needs max_cost, max_tokens and/or max_calls")
        self.limits = {"cost": max_cost, "tokens": max_tokens, "calls": max_calls}
        self.prices = prices or PRICES
        self.spent: dict[str, float] = {"cost": 0.0, "tokens": 0, "calls": 0}
        self.unpriced = 0  # calls whose model has no price: counted in tokens only
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def admit(self) -> None:
        """Count one more call, or raise if any limit is already reached."""
        with self._lock:
            over = [
                k
                for k, limit in self.limits.items()
                if limit is not None and self.spent[k] >= limit
            ]
            if over:
                raise BudgetExceededError(
                    f"budget exhausted ({', '.join(over)}): spent {self.report()}; raise the "
                    "limits given to c.with_budget or make the work smaller",
                    data={"spent": dict(self.spent), "limits": dict(self.limits), "exceeded": over},
                )
            self.spent["calls"] += 1

    def charge(self, model: str, usage: Mapping[str, Any]) -> None:
        """Add one finished call's tokens and cost."""
        price = price_for(model, self.prices)
        with self._lock:
            self.spent["tokens"] += int(usage.get("total_tokens") or 0)
            if price is None:
                self.unpriced += 1
            else:
                self.spent["cost"] += call_cost(usage, price)

    def report(self) -> str:
        """Return what was spent, as text."""
        cost = f"${self.spent['cost']:.6f}"
        return f"{cost}, {self.spent['tokens']} tokens, {self.spent['calls']} calls"

    def __repr__(self) -> str:
        return f"Budget(spent={self.report()}, limits={self.limits})"


def budget_flow(req: Request, *, budget: Budget) -> Flow:
    """Admit the call against *budget* (or raise), then charge what it used."""
    yield Effect(budget.admit)
    ctx: Request = yield req
    resp = ctx["response"]
    yield Effect(partial(budget.charge, resp.get("model") or ctx["model"], resp["usage"]))
    return ctx.set("budget", dict(budget.spent))


def _build(
    *,
    budget: Budget | None = None,
    max_cost: float | None = None,
    max_tokens: int | None = None,
    max_calls: int | None = None,
    prices: Mapping[str, Mapping[str, float]] | None = None,
) -> Middleware:
    name = "with_budget"
    limits = {
        "max_cost": number(name, "max_cost", max_cost, optional=True),
        "max_tokens": number(name, "max_tokens", max_tokens, whole=True, optional=True),
        "max_calls": number(name, "max_calls", max_calls, whole=True, optional=True),
        "prices": check_prices(name, prices),
    }
    if budget is None:
        if all(limits[k] is None for k in ("max_cost", "max_tokens", "max_calls")):
            raise ValidationError(
                "with_budget needs a limit (max_cost, max_tokens and/or max_calls): "
                "c.with_budget(max_cost=0.50), or a shared c.with_budget(c.Budget(...))"
            )
        budget = Budget(**limits)
    elif not isinstance(budget, Budget):
        raise ValidationError(f"{_EXAMPLE}, or a c.Budget shared by several, not {budget!r:.40}")
    elif any(v is not None for v in limits.values()):
        raise ValidationError("pass either a Budget or limits to with_budget, not both")
    return middleware(budget_flow, name="budget", innermost=True, budget=budget)


_EXAMPLE = "with_budget takes limits, c.with_budget(max_cost=0.50, max_tokens=..., max_calls=...)"
_SPEC = Builder(
    name="with_budget",
    build=_build,
    first="budget",
    example="c.with_budget(max_cost=0.50)",
)


def with_budget(budget: Any = None, /, **limits: Any) -> Any:
    """Return a transform spending from one budget: ``c.with_budget(max_cost=0.50)``,
    ``c.with_budget(max_tokens=100_000, max_calls=20)``, or a shared ``Budget``.

    The context's ``budget`` shows what has been spent so far. Configured, the budget is made
    once and shared by every request the transform is given. There is no bare form: no limit
    suits every program, and a process-wide one would stop unrelated work, so bare use is a
    ``ValidationError`` saying what to pass. Calls to models without a price count against no
    cost limit.

    >>> from toolz import pipe
    >>> import conduit as c
    >>> capped = c.with_budget(max_calls=2)
    >>> req = pipe(c.request("m", "hi"), capped)
    >>> [c.mock_call(req)["budget"]["calls"] for _ in range(2)]
    [1, 2]
    >>> c.mock_call(req)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    conduit.errors.BudgetExceededError: budget exhausted (calls): spent $0.000000, ... 2 calls; ...
    """
    return configure(_SPEC, budget, limits)
