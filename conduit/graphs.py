"""Graphs of steps: fixed and conditional edges, cycles, checkpoints, interrupts, resume.

A graph is a frozen value: named nodes (steps, as in :mod:`conduit.workflow`) and one edge
out of each node. An edge is the name of the next node (or :data:`END`), a function of the
state returning that name, or ``(function, {label: node})`` when the function returns a label;
declared targets let :func:`validate_graph` and :func:`to_mermaid` see every route.

:func:`run_graph` and :func:`arun_graph` share one loop, written as a flow: the nodes, the
checkpoint writes and the events are effects the two drivers perform. After every node the
run writes a checkpoint; a run stopped by an error, a crash or an interrupt resumes from the
latest one and reaches the same final state as a run that never stopped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

import attrs
from pyrsistent import PMap, pmap

from conduit._data import freeze_map
from conduit._drive import Effect, arun_effects, run_effects
from conduit._event import Event
from conduit._types import Flow
from conduit.checkpoints import Checkpoints
from conduit.errors import MaxIterationsError, ValidationError
from conduit.workflow import State, Step, as_state, merge, step

__all__ = [
    "END",
    "START",
    "Edge",
    "Graph",
    "arun_graph",
    "graph",
    "route",
    "run_graph",
    "to_mermaid",
    "validate_graph",
]

END = "__end__"
START = "__start__"


@attrs.frozen
class Edge:
    """The way out of a node: a fixed ``target``, or ``choose(state)`` (mapped by ``targets``)."""

    target: str | None = None
    choose: Callable[[State], Any] | None = attrs.field(default=None, repr=False)
    targets: PMap[str, str] | None = None

    def possible(self) -> tuple[str, ...] | None:
        """The nodes this edge can lead to; None when a chooser may return any name."""
        if self.target is not None:
            return (self.target,)
        return None if self.targets is None else tuple(dict.fromkeys(self.targets.values()))


@attrs.frozen
class Graph:
    """Nodes (name -> :class:`~conduit.workflow.Step`), one :class:`Edge` per node, a start."""

    nodes: PMap[str, Step]
    edges: PMap[str, Edge] = attrs.field(repr=False)
    start: str
    order: tuple[str, ...] = attrs.field(default=(), repr=False)  # the nodes as given

    def names(self) -> tuple[str, ...]:
        """The node names in the order they were given."""
        return self.order or tuple(sorted(self.nodes))

    def __repr__(self) -> str:
        return f"Graph(nodes={list(self.names())!r}, start={self.start!r})"


def _edge(source: str, spec: Any) -> Edge:
    if isinstance(spec, str):
        return Edge(target=spec)
    if isinstance(spec, Edge):
        return spec
    if callable(spec):
        return Edge(choose=spec)
    if isinstance(spec, tuple) and len(spec) == 2 and callable(spec[0]):
        choose, targets = spec
        if isinstance(targets, Mapping):
            table = {str(k): str(v) for k, v in targets.items()}
        elif isinstance(targets, Iterable) and not isinstance(targets, str):
            table = {str(t): str(t) for t in targets}
        else:
            table = None
        if table:
            return Edge(choose=choose, targets=pmap(table))
    raise ValidationError(
        f"the edge out of {source!r} is {spec!r:.60}; an edge is a node name, c.END, a function "
        "of the state returning a node name, or (function, {label: node})",
        data={"node": source},
    )


def _problems(g: Graph, *, strict: bool) -> list[str]:
    found: list[str] = []
    names = set(g.nodes)
    if g.start not in names:
        found.append(f"the start node {g.start!r} is not a node")
    for source, edge in g.edges.items():
        if source not in names:
            found.append(f"an edge leaves {source!r}, which is not a node")
        for target in edge.possible() or ():
            if target != END and target not in names:
                found.append(f"the edge out of {source!r} leads to {target!r}, which is not a node")
    for name in g.names():
        if name not in g.edges:
            found.append(f"node {name!r} has no edge out; add edges[{name!r}] = c.END or a node")
    if strict or found:
        return found
    reached, ends = _reach(g)
    found.extend(
        f"node {name!r} cannot be reached from the start node {g.start!r}"
        for name in g.names()
        if name not in reached
    )
    if not ends:
        found.append("no route leads to c.END: every run would stop at max_steps")
    return found


def _reach(g: Graph) -> tuple[set[str], bool]:
    seen: set[str] = set()
    todo = [g.start]
    ends = False
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        targets = g.edges[name].possible()
        if targets is None:  # a chooser may go anywhere: assume every node and the end
            return set(g.nodes), True
        for t in targets:
            if t == END:
                ends = True
            else:
                todo.append(t)
    return seen, ends


def graph(nodes: Mapping[str, Any], edges: Mapping[str, Any], *, start: str | None = None) -> Graph:
    """Return a graph of *nodes* (name -> step or function) joined by *edges* (name -> edge).

    *start* defaults to the first node. A broken graph (an edge to an unknown node, a node
    with no edge out) is an error listing every problem.

    >>> import conduit as c
    >>> g = c.graph({"draft": lambda s: {"n": s["n"] + 1}},
    ...             {"draft": (lambda s: "done" if s["n"] >= 3 else "again",
    ...                        {"again": "draft", "done": c.END})})
    >>> c.run_graph(g, {"n": 0})["state"]["n"]
    3
    """
    if not nodes:
        raise ValidationError("a graph needs at least one node: c.graph({'name': fn}, edges)")
    reserved = {START, END} & set(nodes)
    if reserved:
        raise ValidationError(f"{sorted(reserved)} are reserved names; rename those nodes")
    table = {str(k): step(str(k), v) for k, v in nodes.items()}
    g = Graph(
        nodes=pmap(table),
        edges=pmap({str(k): _edge(str(k), v) for k, v in edges.items()}),
        start=start if start is not None else next(iter(table)),
        order=tuple(table),
    )
    problems = _problems(g, strict=True)
    if problems:
        raise ValidationError(
            "this graph cannot run: " + "; ".join(problems), data={"problems": problems}
        )
    return g


def validate_graph(g: Graph) -> tuple[str, ...]:
    """Return every problem with *g* (unreachable nodes, no way to the end, ...); ``()`` if none.

    >>> import conduit as c
    >>> g = c.graph({"a": lambda s: None, "b": lambda s: None}, {"a": c.END, "b": "a"})
    >>> c.validate_graph(g)
    ("node 'b' cannot be reached from the start node 'a'",)
    """
    return tuple(_problems(g, strict=False))


def route(g: Graph, node: str, state: State) -> str:
    """Return the node after *node* for *state* (or :data:`END`); pure when the chooser is.

    A chooser's answer that names no node (or no declared label) is an error naming it.
    """
    edge = g.edges[node]
    if edge.target is not None:
        return edge.target
    assert edge.choose is not None
    label = edge.choose(state)
    if edge.targets is not None:
        if label not in edge.targets:
            raise ValidationError(
                f"the edge out of {node!r} chose {label!r}, which is not one of its labels "
                f"({', '.join(sorted(edge.targets))}); return one of them",
                data={"node": node, "choice": repr(label)},
            )
        return edge.targets[label]
    if label != END and label not in g.nodes:
        raise ValidationError(
            f"the edge out of {node!r} chose {label!r}, which is not a node "
            f"(nodes: {', '.join(g.names())}; or c.END to finish)",
            data={"node": node, "choice": repr(label)},
        )
    return str(label)


def _checkpoint(
    thread: str, n: int, node: str | None, nxt: str, state: State, status: str
) -> PMap[str, Any]:
    return pmap(
        {"thread": thread, "step": n, "node": node, "next": nxt, "state": state, "status": status}
    )


async def _anotify(fn: Callable[[Event], Any], event: Event) -> None:
    out = fn(event)
    if hasattr(out, "__await__"):
        await out


def _graph_flow(
    g: Graph,
    begin: PMap[str, Any],
    *,
    max_steps: int,
    on_event: Callable[[Event], Any] | None,
    checkpoints: Checkpoints | None,
    interrupt_before: frozenset[str],
    resumed: bool,
) -> Flow:
    def save(record: PMap[str, Any]) -> Effect:
        assert checkpoints is not None
        return Effect(partial(checkpoints.put, record))

    def emit(event: Event) -> Any:
        assert on_event is not None
        return Effect(partial(on_event, event), partial(_anotify, on_event, event))

    thread, n, state, node = begin["thread"], begin["step"], begin["state"], begin["next"]
    last = begin["node"]
    if checkpoints is not None and not resumed:
        yield save(begin)
    skip_interrupt = resumed
    while node != END:
        if node in interrupt_before and not skip_interrupt:
            record = _checkpoint(thread, n, last, node, state, "interrupted")
            if checkpoints is not None:
                yield save(record)
            if on_event:
                yield emit(Event(type="interrupt", node=node, step=n, state=state))
            return record
        skip_interrupt = False
        if n >= max_steps:
            raise MaxIterationsError(
                f"the graph ran {n} steps without reaching the end (next node {node!r}); raise "
                "max_steps, or check the routing for a cycle that never exits; the run resumes "
                "from its latest checkpoint",
                ctx=_checkpoint(thread, n, last, node, state, "running"),
                data={"steps": n, "next": node},
            )
        if on_event:
            yield emit(Event(type="node_start", node=node, step=n + 1))
        state = yield from g.nodes[node].flow(state)
        n, last = n + 1, node
        node = route(g, last, state)
        if checkpoints is not None:
            yield save(_checkpoint(thread, n, last, node, state, "running"))
        if on_event:
            yield emit(Event(type="node_end", node=last, step=n, next=node, state=state))
    done = _checkpoint(thread, n, last, END, state, "done")
    if checkpoints is not None:
        yield save(done)
    if on_event:
        yield emit(Event(type="graph_end", step=n, state=state))
    return done


def _begin(
    g: Graph,
    state: Any,
    resume: Any,
    input: Any,
    checkpoints: Checkpoints | None,
    thread: str | None,
) -> tuple[PMap[str, Any], bool]:
    if resume is None or resume is False:
        if state is None:
            raise ValidationError("run_graph needs a state to start from, e.g. {'question': q}")
        if input is not None:
            raise ValidationError("input= goes with resume=: it is merged into a resumed state")
        return _checkpoint(thread or "main", 0, None, g.start, as_state(state), "running"), False
    if state is not None:
        raise ValidationError("pass state= for a new run or resume= to continue one, not both")
    if resume is True:
        if checkpoints is None:
            raise ValidationError("resume=True reads the latest checkpoint: pass checkpoints=")
        found = checkpoints.latest(thread or "main")
        if found is None:
            raise ValidationError(f"no checkpoint for thread {thread or 'main'!r} to resume from")
        resume = found
    if not isinstance(resume, Mapping) or not {"state", "next", "step"} <= set(resume):
        raise ValidationError("resume= takes a checkpoint (a run's result, or checkpoints.latest)")
    record = freeze_map(resume)
    if record["next"] != END and record["next"] not in g.nodes:
        raise ValidationError(f"this checkpoint continues at {record['next']!r}, not in the graph")
    resumed_state = merge("input", as_state(record["state"]), input)
    return record.update(
        {"state": resumed_state, "thread": thread or record.get("thread", "main")}
    ), True


def _check_run(g: Any, max_steps: int, interrupt_before: Iterable[str]) -> frozenset[str]:
    if not isinstance(g, Graph):
        raise ValidationError(f"run_graph takes a c.graph(...), got {type(g).__name__}")
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValidationError(f"max_steps must be a positive number, got {max_steps!r}")
    names = frozenset([interrupt_before] if isinstance(interrupt_before, str) else interrupt_before)
    unknown = names - set(g.nodes)
    if unknown:
        raise ValidationError(f"interrupt_before names no node: {sorted(unknown)}")
    return names


def _flow(g: Graph, state: Any, opts: dict[str, Any]) -> Flow:
    names = _check_run(g, opts["max_steps"], opts["interrupt_before"])
    begin, resumed = _begin(
        g, state, opts["resume"], opts["input"], opts["checkpoints"], opts["thread"]
    )
    return _graph_flow(
        g,
        begin,
        max_steps=opts["max_steps"],
        on_event=opts["on_event"],
        checkpoints=opts["checkpoints"],
        interrupt_before=names,
        resumed=resumed,
    )


def run_graph(
    g: Graph,
    state: Any = None,
    *,
    resume: Any = None,
    input: Mapping[str, Any] | None = None,
    checkpoints: Checkpoints | None = None,
    thread: str | None = None,
    max_steps: int = 100,
    interrupt_before: Iterable[str] = (),
    on_event: Callable[[Event], Any] | None = None,
) -> PMap[str, Any]:
    """Run *g* from *state* (or *resume* a checkpoint) until it reaches :data:`END`.

    Returns the last checkpoint: ``state``, ``status`` (``"done"``, or ``"interrupted"`` before
    a node named in *interrupt_before*), ``step``, ``node``, ``next`` and ``thread``. With
    *checkpoints* (``MemoryCheckpoints()`` or ``SQLiteCheckpoints(path)``) one is written after
    every node. Resume with ``resume=`` a checkpoint (or ``True``: the thread's latest) and
    optional *input* merged into the state, e.g. a human's answer at an interrupt. *on_event*
    receives ``node_start``, ``node_end``, ``interrupt`` and ``graph_end`` events.

    >>> import conduit as c
    >>> g = c.graph({"ask": lambda s: None, "act": lambda s: {"done": s["approved"]}},
    ...             {"ask": "act", "act": c.END})
    >>> paused = c.run_graph(g, {"task": "deploy"}, interrupt_before=["act"])
    >>> paused["status"], paused["next"]
    ('interrupted', 'act')
    >>> c.run_graph(g, resume=paused, input={"approved": True})["state"]["done"]
    True
    """
    flow = _flow(g, state, locals())
    return run_effects("graph", flow)


async def arun_graph(
    g: Graph,
    state: Any = None,
    *,
    resume: Any = None,
    input: Mapping[str, Any] | None = None,
    checkpoints: Checkpoints | None = None,
    thread: str | None = None,
    max_steps: int = 100,
    interrupt_before: Iterable[str] = (),
    on_event: Callable[[Event], Any] | None = None,
) -> PMap[str, Any]:
    """The async twin of :func:`run_graph`: async nodes are awaited, ``parallel`` steps gather."""
    flow = _flow(g, state, locals())
    return await arun_effects("graph", flow)


_RESERVED = {"end", "graph", "subgraph", "flowchart", "style", "class", "click", "default"}


def _ids(names: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, name in enumerate(names):
        base = re.sub(r"\W", "_", name) or "node"
        ident = base if base.lower() not in _RESERVED else f"{base}_"
        if ident in out.values() or ident[0].isdigit():
            ident = f"n{i}_{ident}"
        out[name] = ident
    return out


def to_mermaid(g: Graph) -> str:
    """Return a Mermaid flowchart of *g* (paste it into Markdown inside a ``mermaid`` fence).

    >>> import conduit as c
    >>> g = c.graph({"a": lambda s: None, "b": lambda s: None},
    ...             {"a": (lambda s: "x", {"x": "b", "y": c.END}), "b": c.END})
    >>> print(c.to_mermaid(g))
    flowchart TD
        __start__([start]) --> a
        a["a"]
        b["b"]
        a -->|x| b
        a -->|y| __end__
        b --> __end__
        __end__([end])
    """
    ids = _ids(g.names())
    ids[END] = END
    lines = ["flowchart TD", f"    {START}([start]) --> {ids[g.start]}"]
    lines += [f'    {ids[name]}["{name.replace(chr(34), "#quot;")}"]' for name in g.names()]
    for source in g.names():
        edge = g.edges[source]
        if edge.target is not None:
            lines.append(f"    {ids[source]} --> {ids[edge.target]}")
        elif edge.targets is not None:
            lines += [
                f"    {ids[source]} -->|{label}| {ids[target]}"
                for label, target in sorted(edge.targets.items())
            ]
        else:
            chooser = getattr(edge.choose, "__name__", "choose")
            lines.append(f"    {ids[source]} -.->|{chooser}| {ids[source]}_next{{?}}")
    lines.append(f"    {END}([end])")
    return "\n".join(lines)
