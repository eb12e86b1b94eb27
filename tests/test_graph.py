"""Graphs: routing, cycles, validation, Mermaid, events, checkpoints, interrupts and resume."""

import asyncio
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conduit as c


def counter_graph(limit=3):
    return c.graph(
        {
            "start": lambda s: {"n": 0, "log": ()},
            "work": lambda s: {"n": s["n"] + 1, "log": (*s["log"], f"work{s['n']}")},
            "finish": lambda s: {"done": True},
        },
        {
            "start": "work",
            "work": (
                lambda s: "more" if s["n"] < limit else "enough",
                {"more": "work", "enough": "finish"},
            ),
            "finish": c.END,
        },
    )


def test_a_cycle_runs_until_its_condition_routes_out():
    run = c.run_graph(counter_graph(3), {})
    assert run["status"] == "done" and run["next"] == c.END and run["node"] == "finish"
    assert run["state"]["n"] == 3 and list(run["state"]["log"]) == ["work0", "work1", "work2"]
    assert run["step"] == 5  # start, work x3, finish
    assert repr(counter_graph()) == "Graph(nodes=['start', 'work', 'finish'], start='start')"


def test_events_arrive_in_order_with_the_state():
    seen = []
    c.run_graph(counter_graph(1), {}, on_event=seen.append)
    assert [(e["type"], e.get("node")) for e in seen] == [
        ("node_start", "start"),
        ("node_end", "start"),
        ("node_start", "work"),
        ("node_end", "work"),
        ("node_start", "finish"),
        ("node_end", "finish"),
        ("graph_end", None),
    ]
    assert seen[3]["next"] == "finish" and seen[-1]["state"]["done"] is True


def test_max_steps_stops_an_endless_cycle_with_a_resumable_checkpoint():
    loop = c.graph({"spin": lambda s: {"n": s.get("n", 0) + 1}}, {"spin": "spin"})
    with pytest.raises(c.MaxIterationsError, match="ran 7 steps") as info:
        c.run_graph(loop, {}, max_steps=7)
    assert info.value.ctx["state"]["n"] == 7 and info.value.ctx["next"] == "spin"
    with pytest.raises(c.MaxIterationsError):
        c.run_graph(loop, resume=info.value.ctx, max_steps=9)


def test_plain_choosers_route_by_node_name_and_bad_choices_are_named():
    g = c.graph(
        {"a": lambda s: None, "b": lambda s: {"hit": "b"}},
        {"a": lambda s: s["go"], "b": c.END},
    )
    assert c.run_graph(g, {"go": "b"})["state"]["hit"] == "b"
    assert "hit" not in c.run_graph(g, {"go": c.END})["state"]
    with pytest.raises(c.ValidationError, match=r"chose 'z', which is not a node \(nodes: a, b"):
        c.run_graph(g, {"go": "z"})
    labelled = c.graph({"a": lambda s: None}, {"a": (lambda s: "maybe", {"yes": c.END})})
    with pytest.raises(c.ValidationError, match=r"chose 'maybe'.*\(yes\)"):
        c.run_graph(labelled, {})


def test_broken_graphs_are_refused_with_every_problem_listed():
    with pytest.raises(c.ValidationError) as info:
        c.graph({"a": lambda s: None, "b": lambda s: None}, {"a": "nowhere", "ghost": "a"})
    msg = str(info.value)
    assert "'a' leads to 'nowhere'" in msg and "leaves 'ghost'" in msg and "'b' has no edge" in msg
    with pytest.raises(c.ValidationError, match="start node 'x'"):
        c.graph({"a": lambda s: None}, {"a": c.END}, start="x")
    with pytest.raises(c.ValidationError, match="reserved"):
        c.graph({c.END: lambda s: None}, {})
    with pytest.raises(c.ValidationError, match="an edge is a node name"):
        c.graph({"a": lambda s: None}, {"a": 42})
    with pytest.raises(c.ValidationError, match="at least one node"):
        c.graph({}, {})


def test_validate_graph_finds_unreachable_nodes_and_missing_ends():
    assert c.validate_graph(counter_graph()) == ()
    g = c.graph(
        {"a": lambda s: None, "b": lambda s: None, "c": lambda s: None},
        {"a": "b", "b": "a", "c": c.END},
    )
    assert c.validate_graph(g) == (
        "node 'c' cannot be reached from the start node 'a'",
        "no route leads to c.END: every run would stop at max_steps",
    )
    anywhere = c.graph({"a": lambda s: None, "b": lambda s: None}, {"a": lambda s: "b", "b": c.END})
    assert c.validate_graph(anywhere) == ()  # a free chooser may reach any node


def test_to_mermaid_draws_every_edge():
    text = c.to_mermaid(counter_graph())
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    for edge in [
        "__start__([start]) --> start",
        "start --> work",
        "work -->|more| work",
        "work -->|enough| finish",
        "finish --> __end__",
    ]:
        assert f"    {edge}" in lines
    free = c.graph(
        {"end": lambda s: None, "x y": lambda s: None}, {"end": lambda s: "x y", "x y": c.END}
    )
    out = c.to_mermaid(free)
    assert (
        'end_["end"]' in out and 'x_y["x y"]' in out and "end_ -.->|<lambda>| end__next{?}" in out
    )


def test_interrupt_before_a_node_then_resume_with_human_input():
    g = c.graph(
        {
            "draft": lambda s: {"plan": f"deploy {s['service']}"},
            "approve": lambda s: {"log": "approved" if s["ok"] else "rejected"},
        },
        {"draft": "approve", "approve": c.END},
    )
    cps = c.MemoryCheckpoints()
    paused = c.run_graph(
        g, {"service": "api"}, interrupt_before="approve", checkpoints=cps, thread="t1"
    )
    assert paused["status"] == "interrupted" and paused["next"] == "approve"
    assert paused["state"]["plan"] == "deploy api" and "log" not in paused["state"]
    assert cps.latest("t1") == paused
    done = c.run_graph(
        g, resume=True, checkpoints=cps, thread="t1", input={"ok": True}, interrupt_before="approve"
    )  # resuming passes the interrupt it stopped at
    assert done["status"] == "done" and done["state"]["log"] == "approved"
    assert [h["status"] for h in cps.history("t1")] == [
        "running",
        "running",
        "interrupted",
        "running",
        "done",
    ]
    assert c.run_graph(g, resume=done) == done  # a finished run stays finished


def test_run_graph_input_errors():
    g = counter_graph()
    with pytest.raises(c.ValidationError, match="needs a state"):
        c.run_graph(g)
    with pytest.raises(c.ValidationError, match="not both"):
        c.run_graph(g, {}, resume=True)
    with pytest.raises(c.ValidationError, match="pass checkpoints="):
        c.run_graph(g, resume=True)
    with pytest.raises(c.ValidationError, match="no checkpoint for thread 'x'"):
        c.run_graph(g, resume=True, checkpoints=c.MemoryCheckpoints(), thread="x")
    with pytest.raises(c.ValidationError, match="takes a checkpoint"):
        c.run_graph(g, resume={"n": 1})
    with pytest.raises(c.ValidationError, match="goes with resume"):
        c.run_graph(g, {}, input={"a": 1})
    with pytest.raises(c.ValidationError, match="names no node"):
        c.run_graph(g, {}, interrupt_before=["nope"])
    with pytest.raises(c.ValidationError, match="max_steps must be"):
        c.run_graph(g, {}, max_steps=0)
    with pytest.raises(c.ValidationError, match=r"takes a c\.graph"):
        c.run_graph({"nodes": {}}, {})


def test_sqlite_checkpoints_survive_the_process_and_refuse_non_json_state(tmp_path):
    path = tmp_path / "runs.db"
    g = c.graph({"a": lambda s: {"when": object()}}, {"a": c.END})
    with pytest.raises(c.ValidationError, match="state key 'when' holds object"):
        c.run_graph(g, {}, checkpoints=c.SQLiteCheckpoints(path))
    assert "runs.db" in repr(c.SQLiteCheckpoints(path))


CRASHING = """
import os, sys
import conduit as c
sys.path.insert(0, {tests!r})
from test_graph import counter_graph
g = counter_graph(5)
def crash(event):
    if event["type"] == "node_end" and event["step"] == 4:
        os._exit(17)  # no cleanup, no flush: a killed process
c.run_graph(g, {{}}, checkpoints=c.SQLiteCheckpoints({path!r}), thread="job", on_event=crash)
"""


def test_a_killed_process_resumes_from_its_sqlite_checkpoint(tmp_path):
    import pathlib

    path = str(tmp_path / "runs.db")
    script = CRASHING.format(tests=str(pathlib.Path(__file__).parent), path=path)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, timeout=60
    )
    assert proc.returncode == 17, proc.stderr.decode()
    cps = c.SQLiteCheckpoints(path)
    latest = cps.latest("job")
    assert latest["step"] == 4 and latest["status"] == "running"
    resumed = c.run_graph(counter_graph(5), resume=latest, checkpoints=cps)
    assert resumed["state"] == c.run_graph(counter_graph(5), {})["state"]
    assert [h["step"] for h in cps.history("job")] == [0, 1, 2, 3, 4, 5, 6, 7, 7]


def random_graph(ops, exit_at):
    """A cycle of arithmetic nodes that leaves when a counter reaches *exit_at*."""
    nodes = {
        f"n{i}": (lambda s, a=a, b=b: {"x": (s.get("x", 1) * a + b) % 1009, "k": s.get("k", 0) + 1})
        for i, (a, b) in enumerate(ops)
    }
    names = list(nodes)
    edges = {name: names[i + 1] for i, name in enumerate(names[:-1])}
    edges[names[-1]] = (
        lambda s: "out" if s["k"] >= exit_at else "loop",
        {"out": c.END, "loop": names[0]},
    )
    return c.graph(nodes, edges)


class Crash(Exception):
    pass


@settings(max_examples=60)
@given(
    st.lists(st.tuples(st.integers(1, 50), st.integers(0, 50)), min_size=1, max_size=4),
    st.integers(1, 12),
    st.integers(0, 30),
    st.booleans(),
)
def test_resume_from_a_checkpoint_reaches_the_same_final_state(
    ops, exit_at, crash_at, use_interrupt
):
    g = random_graph(ops, exit_at)
    whole = c.run_graph(g, {"seed": 1})
    cps = c.MemoryCheckpoints()
    if use_interrupt:
        node = f"n{crash_at % len(ops)}"
        first = c.run_graph(g, {"seed": 1}, checkpoints=cps, thread="t", interrupt_before=[node])
        runs = [first]
        while runs[-1]["status"] == "interrupted":  # resume at every interrupt until done
            runs.append(
                c.run_graph(g, resume=True, checkpoints=cps, thread="t", interrupt_before=[node])
            )
        final = runs[-1]
    else:
        calls = {"n": 0}

        def crash(event):
            if event["type"] == "node_end":
                calls["n"] += 1
                if calls["n"] == crash_at:
                    raise Crash

        try:
            final = c.run_graph(g, {"seed": 1}, checkpoints=cps, thread="t", on_event=crash)
        except Crash:
            final = c.run_graph(g, resume=cps.latest("t"), checkpoints=cps)
    assert final["state"] == whole["state"] and final["step"] == whole["step"]
    assert final["status"] == "done"


def test_arun_graph_awaits_async_nodes_and_gathers_parallel_steps():
    async def fetch_a(s):
        await asyncio.sleep(0.01)
        return "A"

    async def fetch_b(s):
        return "B"

    seen = []

    async def on_event(e):
        seen.append(e["type"])

    g = c.graph(
        {"gather": c.parallel(a=fetch_a, b=fetch_b), "join": lambda s: {"both": s["a"] + s["b"]}},
        {"gather": "join", "join": c.END},
    )
    run = asyncio.run(c.arun_graph(g, {}, on_event=on_event, checkpoints=c.MemoryCheckpoints()))
    assert run["state"]["both"] == "AB"
    assert seen == ["node_start", "node_end", "node_start", "node_end", "graph_end"]
    with pytest.raises(c.ValidationError, match="is async"):
        c.run_graph(g, {})


@st.composite
def fixed_graphs(draw):
    n = draw(st.integers(1, 6))
    names = [f"n{i}" for i in range(n)]
    targets = st.sampled_from([*names, c.END])
    edges = {name: draw(targets) for name in names}
    return names, edges


@given(fixed_graphs())
def test_validate_and_mermaid_agree_with_a_plain_walk_of_the_edges(spec):
    names, edges = spec
    g = c.graph({n: (lambda s: None) for n in names}, edges)
    seen, node = [], names[0]
    while node != c.END and node not in seen:  # one fixed edge out of each node: a path
        seen.append(node)
        node = edges[node]
    problems = c.validate_graph(g)
    unreachable = {n for n in names if n not in seen}
    assert {p.split("'")[1] for p in problems if "cannot be reached" in p} == unreachable
    assert any("no route leads to c.END" in p for p in problems) == (node != c.END)
    arrows = [ln for ln in c.to_mermaid(g).splitlines() if "-->" in ln]
    assert len(arrows) == len(names) + 1  # the start arrow and one per node
    if node == c.END:  # a path that ends: running it visits exactly the walked nodes
        visited = []
        c.run_graph(g, {}, on_event=lambda e: e["type"] == "node_end" and visited.append(e["node"]))
        assert visited == seen
