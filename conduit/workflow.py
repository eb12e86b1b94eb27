"""Workflows over a state map: steps, pipelines, branches, parallel steps and model steps.

The state is a frozen map, like a request. A *step* is a function of the state returning a
mapping of the keys it changes (merged into the state) or ``None`` (no change); plain functions
and async functions are both steps. Combinators build bigger steps out of smaller ones, and
every step runs both ways: ``s(state)`` in the caller's thread, ``await s.arun(state)`` on an
event loop. Each is written once as a flow that yields the work it needs done as
:class:`~conduit._drive.Effect` values; the sync and async drivers do it.

    >>> import conduit as c
    >>> flow = c.pipeline(
    ...     c.step("double", lambda s: {"n": s["n"] * 2}),
    ...     c.branch(lambda s: "big" if s["n"] > 5 else "small", {
    ...         "big": c.step("say_big", lambda s: {"said": "big"}),
    ...         "small": c.step("say_small", lambda s: {"said": "small"})}),
    ... )
    >>> flow({"n": 4})["said"], flow({"n": 2})["said"]
    ('big', 'small')
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

import attrs
from pyrsistent import PMap

from conduit._data import freeze, freeze_map
from conduit._drive import Effect, arun_effects, run_effects
from conduit._types import AsyncHandler, Flow, Handler
from conduit.errors import ConduitError, ValidationError
from conduit.request import as_request, content

__all__ = [
    "State",
    "Step",
    "as_state",
    "as_step",
    "branch",
    "invoke",
    "ainvoke",
    "llm_step",
    "merge",
    "parallel",
    "pipeline",
    "step",
]

State = PMap[str, Any]
StepFn = Callable[[State], Any]


def as_state(state: Any) -> State:
    """Return *state* frozen; a workflow's state is a map.

    >>> as_state({"n": 1})["n"]
    1
    """
    if not isinstance(state, Mapping):
        raise ValidationError(
            f"a workflow's state is a map, got {type(state).__name__}: pass e.g. {{'question': q}}"
        )
    return freeze_map(state)


def merge(name: str, state: State, out: Any) -> State:
    """Return *state* with a step's result merged in; pure.

    >>> merge("s", as_state({"a": 1}), {"b": 2}) == {"a": 1, "b": 2}
    True
    """
    if out is None:
        return state
    if not isinstance(out, Mapping):
        raise ValidationError(
            f"step {name!r} returned {type(out).__name__}; a step returns a mapping of the keys "
            "it changes (or None for no change), e.g. return {'answer': text}",
            data={"step": name},
        )
    merged: State = state.update(freeze_map(out))
    return merged


def _not_sync(name: str) -> ValidationError:
    return ValidationError(
        f"step {name!r} is async: run the workflow with `await flow.arun(state)` "
        "(or c.arun_graph), not in the caller's thread",
        data={"step": name},
    )


def invoke(name: str, fn: StepFn, state: State) -> Any:
    """Call a step function in this thread; an async one is an error naming the step."""
    if inspect.iscoroutinefunction(fn):
        raise _not_sync(name)
    out = fn(state)
    if inspect.isawaitable(out):
        getattr(out, "close", lambda: None)()
        raise _not_sync(name)
    return out


async def ainvoke(name: str, fn: StepFn, state: State) -> Any:
    """Call a step function on the event loop: awaited if async, called directly if not."""
    out = fn(state)
    if inspect.isawaitable(out):
        out = await out
    return out


def _labelled(name: str, exc: Exception) -> Exception:
    """Add a note naming the step to an error from user code (ours already name it)."""
    if not (isinstance(exc, ConduitError) and "step" in exc.data):
        exc.add_note(f"in workflow step {name!r}")
    return exc


@attrs.frozen
class Step:
    """A named workflow step: call it with a state (``s(state)``) or ``await s.arun(state)``.

    ``flow(state)`` is its generator: it yields :class:`~conduit._drive.Effect` values and
    returns the new state, so steps nest with ``yield from``.
    """

    name: str
    flow: Callable[[State], Flow] = attrs.field(repr=False)
    kind: str = "step"
    parts: tuple[Any, ...] = attrs.field(default=(), repr=False)

    def __call__(self, state: Any) -> State:
        return run_effects(self.name, self.flow(as_state(state)))

    async def arun(self, state: Any) -> State:
        """Run this step on the event loop (async step functions are awaited)."""
        return await arun_effects(self.name, self.flow(as_state(state)))


def _fn_flow(name: str, fn: StepFn, state: State) -> Flow:
    try:
        out = yield Effect(partial(invoke, name, fn, state), partial(ainvoke, name, fn, state))
    except Exception as exc:
        raise _labelled(name, exc) from None
    return merge(name, state, out)


def step(name: str, fn: StepFn) -> Step:
    """Return a step named *name* running *fn* (sync or async) and merging what it returns.

    >>> step("greet", lambda s: {"greeting": f"Hello, {s['who']}!"})({"who": "Ada"})["greeting"]
    'Hello, Ada!'
    """
    if not isinstance(name, str) or not name:
        raise ValidationError("a step needs a name: c.step('classify', fn)")
    if isinstance(fn, Step):
        return attrs.evolve(fn, name=name)
    if not callable(fn):
        raise ValidationError(f"step {name!r} needs a function of the state, got {fn!r:.60}")
    return Step(name, partial(_fn_flow, name, fn), "step", (fn,))


def as_step(fn: Any) -> Step:
    """Return *fn* as a :class:`Step` (named after the function when it is a plain one)."""
    if isinstance(fn, Step):
        return fn
    return step(str(getattr(fn, "__name__", "step")), fn)


def _pipeline_flow(steps: tuple[Step, ...], state: State) -> Flow:
    for s in steps:
        state = yield from s.flow(state)
    return state


def pipeline(*steps: Any, name: str = "pipeline") -> Step:
    """Return a step running *steps* in order, each on the state the last one left.

    >>> inc = lambda s: {"n": s["n"] + 1}
    >>> pipeline(inc, inc, inc)({"n": 0})["n"]
    3
    """
    if not steps:
        raise ValidationError("a pipeline needs at least one step: c.pipeline(step_a, step_b)")
    parts = tuple(as_step(s) for s in steps)
    return Step(name, partial(_pipeline_flow, parts), "pipeline", parts)


def _branch_flow(
    name: str, choose: StepFn, branches: Mapping[str, Step], default: Step | None, state: State
) -> Flow:
    key = yield Effect(partial(invoke, name, choose, state), partial(ainvoke, name, choose, state))
    chosen = branches.get(key, default) if isinstance(key, str) else default
    if chosen is None:
        raise ValidationError(
            f"branch {name!r}: the chooser returned {key!r}, which names no branch "
            f"(have: {', '.join(sorted(branches))}) and there is no default; add it to the "
            "branches or pass default=...",
            data={"step": name, "choice": repr(key)},
        )
    out: State = yield from chosen.flow(state)
    return out


def branch(
    choose: StepFn, branches: Mapping[str, Any], *, default: Any = None, name: str = "branch"
) -> Step:
    """Return a step running the branch whose name ``choose(state)`` returns.

    Without a *default*, a name that matches no branch is an error naming it.

    >>> b = branch(lambda s: s["kind"], {"a": lambda s: {"out": "A"}}, default=lambda s: None)
    >>> b({"kind": "a"})["out"], "out" in b({"kind": "z"})
    ('A', False)
    """
    if not callable(choose):
        raise ValidationError("branch needs a chooser: a function of the state naming a branch")
    if not branches:
        raise ValidationError("branch needs at least one branch: {'name': step, ...}")
    table = {str(k): as_step(v) for k, v in branches.items()}
    fallback = None if default is None else as_step(default)
    parts = tuple(table.values()) + ((fallback,) if fallback else ())
    return Step(name, partial(_branch_flow, name, choose, table, fallback), "branch", parts)


def _threads(fns: Mapping[str, StepFn], state: State) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(fns), thread_name_prefix="conduit-parallel") as pool:
        futures = {k: pool.submit(invoke, k, fn, state) for k, fn in fns.items()}
        errors = []
        results: dict[str, Any] = {}
        for k, fut in futures.items():
            try:
                results[k] = fut.result()
            except Exception as exc:
                errors.append(_labelled(k, exc))
    if errors:
        raise errors[0]
    return results


async def _gather(fns: Mapping[str, StepFn], state: State) -> dict[str, Any]:
    import asyncio

    async def one(k: str, fn: StepFn) -> Any:
        try:
            if inspect.iscoroutinefunction(fn):
                return await fn(state)
            out = await asyncio.to_thread(fn, state)  # a blocking call must not stall the loop
            return await out if inspect.isawaitable(out) else out
        except Exception as exc:
            raise _labelled(k, exc) from None

    values = await asyncio.gather(*(one(k, fn) for k, fn in fns.items()))
    return dict(zip(fns, values, strict=True))


def _parallel_flow(fns: Mapping[str, StepFn], state: State) -> Flow:
    results = yield Effect(partial(_threads, fns, state), partial(_gather, fns, state))
    merged: State = state.update(freeze(results))
    return merged


def parallel(**fns: StepFn) -> Step:
    """Return a step running every function on the same state at once; each result is stored
    under its keyword (threads when run in the caller's thread, ``asyncio.gather`` in ``arun``).

    >>> both = parallel(upper=lambda s: s["q"].upper(), size=lambda s: len(s["q"]))
    >>> out = both({"q": "tea"})
    >>> out["upper"], out["size"]
    ('TEA', 3)
    """
    if not fns:
        raise ValidationError("parallel needs at least one function: c.parallel(a=fn, b=fn)")
    for k, fn in fns.items():
        if not callable(fn):
            raise ValidationError(f"parallel: {k!r} is not a function of the state")
    table = dict(fns)
    return Step("parallel", partial(_parallel_flow, table), "parallel", tuple(table))


def _llm_flow(
    name: str,
    build: StepFn,
    call: Handler,
    acall: AsyncHandler | None,
    into: str,
    state: State,
) -> Flow:
    try:
        req = as_request(invoke(name, build, state))
    except Exception as exc:
        raise _labelled(name, exc) from None
    arun: Callable[[], Awaitable[Any]] | None = partial(acall, req) if acall else None
    try:
        ctx = yield Effect(partial(call, req), arun)
    except Exception as exc:
        raise _labelled(name, exc) from None
    value = ctx["parsed"] if "parsed" in ctx else content(ctx)
    return state.set(into, freeze(value))


def llm_step(
    name: str,
    build: StepFn,
    call: Handler | None = None,
    *,
    acall: AsyncHandler | None = None,
    into: str | None = None,
) -> Step:
    """Return a step that builds a request from the state with *build*, sends it with *call*
    and stores the answer (``ctx["parsed"]`` when a schema was asked for, else the text) at
    ``state[into]`` (default: the step's name).

    *call* defaults to ``c.call`` (and *acall* to ``c.acall``); pass ``c.mock_call`` to run
    offline. In ``arun``, a *call* without an *acall* runs in a worker thread.

    >>> import conduit as c
    >>> ask = llm_step("answer", lambda s: c.request("m", s["q"], mock="42"), c.mock_call)
    >>> ask({"q": "meaning of life?"})["answer"]
    '42'
    """
    if not callable(build):
        raise ValidationError(f"llm_step {name!r} needs a function building a request")
    if call is None:
        from conduit.exchange import acall as dispatch_acall
        from conduit.exchange import call as dispatch_call

        call, acall = dispatch_call, acall or dispatch_acall
    flow = partial(_llm_flow, name, build, call, acall, into or name)
    return Step(name, flow, "llm", ())
