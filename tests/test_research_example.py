"""The research workflow example (classify -> parallel gather -> summarise -> answer), offline."""

import importlib.util
from pathlib import Path

import pytest

import conduit as c

spec = importlib.util.spec_from_file_location(
    "research_example", Path(__file__).resolve().parents[1] / "examples" / "research.py"
)
research = importlib.util.module_from_spec(spec)
spec.loader.exec_module(research)


def recorded(script_fn):
    calls = []

    def model(req):
        calls.append(req)
        return script_fn(req)

    return calls, model


def run(question, **kw):
    calls, model = recorded(research.offline_model)
    g = research.build("mock-model", {"mock": model}, c.mock_call)
    path = []
    out = c.run_graph(
        g,
        {"question": question},
        on_event=lambda e: path.append(e["node"]) if e["type"] == "node_end" else None,
        **kw,
    )
    return out, path, calls


def test_a_research_question_gathers_from_both_sources_then_summarises_and_answers():
    out, path, calls = run("How does a retry interact with the cache?")
    assert path == ["classify", "gather", "summarize", "answer"]
    state = out["state"]
    assert state["kind"] == "research"
    assert len(state["notes"]) == 2 and set(state["notes"]) <= set(research.NOTES)
    assert list(state["glossary"]) == [research.GLOSSARY["retry"], research.GLOSSARY["cache"]]
    summary_prompt = calls[1]["messages"][-1]["content"]
    assert research.GLOSSARY["cache"] in summary_prompt and state["notes"][0] in summary_prompt
    assert state["summary"] and state["summary"] in calls[2]["messages"][-1]["content"]
    assert state["answer"] == "Answer: " + state["summary"]
    assert len(calls) == 3  # classify, summarise, answer: gathering needs no model


def test_a_simple_question_skips_gathering():
    out, path, calls = run("What is Conduit?")
    assert path == ["classify", "answer"] and len(calls) == 2
    assert "notes" not in out["state"] and out["state"]["answer"] == "Answer: (none gathered)"


def test_the_workflow_resumes_after_a_failed_model_call(tmp_path):
    cps = c.SQLiteCheckpoints(tmp_path / "r.db")
    _, model = recorded(research.offline_model)
    flaky = {"left": 1}

    def sometimes_down(req):
        if req["messages"][0]["content"].startswith("Summarise") and flaky["left"]:
            flaky["left"] -= 1
            return c.ServerError("overloaded", status_code=529)
        return model(req)

    g = research.build("mock-model", {"mock": sometimes_down}, c.mock_call)
    question = {"question": "Why retry?"}
    with pytest.raises(c.ServerError):
        c.run_graph(g, question, checkpoints=cps, thread="q")
    latest = cps.latest("q")
    assert latest["next"] == "summarize" and "notes" in latest["state"]
    resumed = c.run_graph(g, resume=latest, checkpoints=cps)
    whole = c.run_graph(
        research.build("mock-model", {"mock": research.offline_model}, c.mock_call), question
    )
    assert resumed["state"] == whole["state"]


def test_the_example_prints_its_graph_and_both_answers(capsys):
    research.main()
    out = capsys.readouterr().out
    assert out.startswith("flowchart TD") and "classify -->|research| gather" in out
    assert "path: classify -> gather -> summarize -> answer" in out
    assert "path: classify -> answer" in out
    assert "checkpoints written: 10" in out
