"""``with_budget``: one budget of cost, tokens and calls for everything inside it.

Every real exchange counts — each retry attempt, each tool turn, each agent step — because the
budget's middleware always sits innermost, next to the call. Before a call is sent it
*reserves* what it is expected to spend (its prompt estimated, plus its ``max_tokens``, priced
with the model's prices); a call whose reservation would pass a limit raises
:class:`BudgetExceededError` and nothing is sent. When it returns, the real usage is settled
(the difference refunded); a call that fails releases its reservation. So however many calls
run at once, the budget is overspent by at most one call's worth (the estimate holds when
requests set ``max_tokens``). Cache hits cost nothing and are not counted.

A :class:`Budget` lives in one process and refuses to be pickled; ``RedisBudget``
(``conduit.redis_backend``) is one budget shared by every process that names it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol

import attrs

from conduit._drive import Effect
from conduit._options import Builder, check_prices, configure, number
from conduit._types import Flow, Request
from conduit.cost import PRICES, call_cost, estimate_usage, price_for
from conduit.errors import BudgetExceededError, ConduitError, ValidationError
from conduit.middleware import Middleware, middleware

__all__ = [
    "Budget",
    "BudgetLike",
    "Hold",
    "budget_flow",
    "exceeded",
    "refusal",
    "spent_text",
    "with_budget",
]

KINDS = ("cost", "tokens", "calls")


@attrs.frozen
class Hold:
    """What one call in flight has reserved: its estimated cost and tokens, and an id."""

    cost: float
    tokens: int
    id: str = ""


def exceeded(
    limits: Mapping[str, float | None],
    spent: Mapping[str, float],
    reserved: Mapping[str, float],
    estimate: Mapping[str, float],
    in_flight: int,
) -> list[str]:
    """Return the limits a new call's *estimate* would pass (empty: admit it); pure.

    A limit is passed when what was spent reached it, or when what was spent, what calls in
    flight reserved and the estimate add up past it. With nothing in flight a call is admitted
    while the spending is under the limit, whatever its estimate: one call may overspend,
    never more, and a small budget still admits a call with a large ``max_tokens``.

    >>> limits = {"cost": None, "tokens": 1000, "calls": 3}
    >>> exceeded(limits, {"tokens": 0, "calls": 0}, {"tokens": 0}, {"tokens": 600}, in_flight=0)
    []
    >>> exceeded(limits, {"tokens": 0, "calls": 1}, {"tokens": 600}, {"tokens": 600}, in_flight=1)
    ['tokens']
    >>> exceeded(limits, {"tokens": 900, "calls": 3}, {"tokens": 0}, {"tokens": 600}, in_flight=0)
    ['calls']
    """
    over = []
    for kind in ("cost", "tokens"):
        limit = limits.get(kind)
        if limit is None:
            continue
        held = spent[kind] + reserved[kind] + estimate[kind]
        if spent[kind] >= limit or (in_flight > 0 and held > limit):
            over.append(kind)
    calls = limits.get("calls")
    if calls is not None and spent["calls"] + 1 > calls:
        over.append("calls")
    return over


def spent_text(spent: Mapping[str, Any]) -> str:
    """Return what was spent, as text.

    >>> spent_text({"cost": 0.0015, "tokens": 4000, "calls": 2})
    '$0.001500, 4000 tokens, 2 calls'
    """
    return (
        f"${float(spent['cost']):.6f}, {int(spent['tokens'])} tokens, {int(spent['calls'])} calls"
    )


def refusal(over: list[str], spent: Mapping[str, Any], data: Mapping[str, Any]) -> Exception:
    """Return the :class:`BudgetExceededError` for a call refused on the limits in *over*."""
    report = spent_text(spent)
    flying = int(data.get("in_flight") or 0)
    pending = f" ({flying} calls in flight hold reservations)" if flying else ""
    return BudgetExceededError(
        f"budget exhausted ({', '.join(over)}): spent {report}{pending}; raise the limits given "
        "to c.with_budget or make the work smaller",
        data={"spent": dict(spent), "exceeded": over, **data},
    )


class BudgetLike(Protocol):
    """What a budget does: reserve before a call, settle or release after it."""

    def reserve(self, model: str, usage: Mapping[str, int]) -> Hold: ...

    def settle(self, hold: Hold, model: str, usage: Mapping[str, Any]) -> dict[str, Any]: ...

    def release(self, hold: Hold) -> None: ...


def checked_limits(
    owner: str, max_cost: Any, max_tokens: Any, max_calls: Any
) -> dict[str, float | int | None]:
    """Return the limits as numbers, or raise a ``ValidationError`` naming the bad one."""
    limits = {
        "cost": number(owner, "max_cost", max_cost, optional=True),
        "tokens": number(owner, "max_tokens", max_tokens, whole=True, optional=True),
        "calls": number(owner, "max_calls", max_calls, whole=True, optional=True),
    }
    if all(v is None for v in limits.values()):
        raise ValidationError(f"a budget needs max_cost, max_tokens and/or max_calls ({owner})")
    return limits


class Budget:
    """Limits and what has been spent and reserved against them, in this process
    (thread-safe, shared by reference; for several processes use ``RedisBudget``)."""

    def __init__(
        self,
        *,
        max_cost: float | None = None,
        max_tokens: int | None = None,
        max_calls: int | None = None,
        prices: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self.limits = checked_limits("Budget", max_cost, max_tokens, max_calls)
        self.prices = check_prices("Budget", prices) or PRICES
        self.spent: dict[str, float] = {"cost": 0.0, "tokens": 0, "calls": 0}
        self.reserved: dict[str, float] = {"cost": 0.0, "tokens": 0}
        self.in_flight = 0
        self.unpriced = 0  # calls whose model has no price: counted in tokens only
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        raise ConduitError(
            "a c.Budget counts in this process and cannot be pickled: a copy in each worker "
            "would be a budget per process. Share one across processes with "
            "c.RedisBudget(url, name=..., max_cost=...)"
        )

    def _estimate(self, model: str, usage: Mapping[str, int]) -> Hold:
        price = price_for(model, self.prices)
        cost = 0.0 if price is None else call_cost(usage, price)
        return Hold(cost=cost, tokens=int(usage.get("total_tokens") or 0))

    def reserve(self, model: str, usage: Mapping[str, int]) -> Hold:
        """Reserve a call's expected *usage* of *model* and count the call, or raise
        ``BudgetExceededError`` if that would pass a limit."""
        hold = self._estimate(model, usage)
        estimate = {"cost": hold.cost, "tokens": hold.tokens}
        with self._lock:
            over = exceeded(self.limits, self.spent, self.reserved, estimate, self.in_flight)
            if over:
                facts = {"limits": dict(self.limits), "reserved": dict(self.reserved)}
                raise refusal(over, self.spent, {**facts, "in_flight": self.in_flight})
            self.spent["calls"] += 1
            self.reserved["cost"] += hold.cost
            self.reserved["tokens"] += hold.tokens
            self.in_flight += 1
        return hold

    def _unhold(self, hold: Hold) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:  # no float residue survives an idle budget
            self.reserved = {"cost": 0.0, "tokens": 0}
        else:
            self.reserved["cost"] -= hold.cost
            self.reserved["tokens"] -= hold.tokens

    def settle(self, hold: Hold, model: str, usage: Mapping[str, Any]) -> dict[str, Any]:
        """Replace a call's reservation with what it used; return what has been spent."""
        price = price_for(model, self.prices)
        with self._lock:
            self._unhold(hold)
            self.spent["tokens"] += int(usage.get("total_tokens") or 0)
            if price is None:
                self.unpriced += 1
            else:
                self.spent["cost"] += call_cost(usage, price)
            return dict(self.spent)

    def release(self, hold: Hold) -> None:
        """Drop the reservation of a call that failed (it still counts as a call)."""
        with self._lock:
            self._unhold(hold)

    def report(self) -> str:
        """Return what was spent, as text."""
        return spent_text(self.spent)

    def __repr__(self) -> str:
        return f"Budget(spent={self.report()}, limits={self.limits})"


def _inline(fn: Callable[[], Any]) -> Effect:
    async def arun() -> Any:  # in memory, never blocks: no worker thread for it
        return fn()

    return Effect(fn, arun)


def budget_flow(req: Request, *, budget: BudgetLike) -> Flow:
    """Reserve the call's expected spending against *budget* (or raise), then settle what it
    used; a call that fails releases its reservation."""
    local = isinstance(budget, Budget)
    act = _inline if local else Effect
    hold: Hold = yield act(partial(budget.reserve, req["model"], estimate_usage(req)))
    done = False
    try:
        ctx: Request = yield req
        resp = ctx["response"]
        model = resp.get("model") or ctx["model"]
        spent = yield act(partial(budget.settle, hold, model, resp["usage"]))
        done = True
        return ctx.set("budget", spent)
    except Exception:
        done = True
        yield act(partial(budget.release, hold))
        raise
    finally:  # a flow closed mid-call (a cancelled task) cannot yield: release here
        if not done:
            budget.release(hold)


def _is_budget(budget: Any) -> bool:
    return all(callable(getattr(budget, m, None)) for m in ("reserve", "settle", "release"))


def _build(
    *,
    budget: BudgetLike | None = None,
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
    elif not _is_budget(budget):
        raise ValidationError(
            f"{_EXAMPLE}, or a c.Budget or c.RedisBudget shared by several, not {budget!r:.40}"
        )
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
    ``c.with_budget(max_tokens=100_000, max_calls=20)``, or a shared ``Budget`` (this process)
    or ``RedisBudget`` (every process naming it).

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
