"""A human in the loop: a graph that drafts a change, stops for approval, then acts on the answer.

The run is checkpointed to a SQLite file after every node and interrupted before "apply"; a
later process (here: the same script) resumes it with the human's answer. Offline by default
(the mock drafts the plan); with a provider configured (OPENAI_API_KEY, ... or CONDUIT_MODEL)
a real model writes it. Pass --yes or --no to answer without being asked.
"""

import sys
import tempfile
from pathlib import Path

import conduit as c
from conduit.cli import default_model


def build(model: str, extra: dict) -> c.Graph:
    def plan_request(s):
        return c.request(
            model,
            [
                c.system("Write a one-line deployment plan."),
                c.user(f"Deploy {s['service']} version {s['version']}."),
            ],
            **extra,
        )

    def apply(s):
        if not s.get("approved"):
            return {"result": f"cancelled by {s.get('reviewer', 'someone')}"}
        return {"result": f"applied: {s['plan']}"}

    return c.graph(
        {
            "plan": c.llm_step("plan", plan_request, c.call),
            "review": lambda s: {"needs_review": True},
            "apply": apply,
        },
        {"plan": "review", "review": "apply", "apply": c.END},
    )


def answer() -> bool:
    if "--yes" in sys.argv or "--no" in sys.argv:
        return "--yes" in sys.argv
    if not sys.stdin.isatty():
        return True  # run unattended (tests, CI): approve
    return input("approve? [y/N] ").strip().lower().startswith("y")


def main() -> None:
    live = default_model()
    model, extra = (
        (live, {})
        if live
        else (
            "mock:gpt-4o-mini",
            {
                "mock": lambda req: (
                    "Roll out " + req["messages"][-1]["content"].removeprefix("Deploy ")
                )
            },
        )
    )
    g = build(model, extra)
    db = Path(tempfile.mkdtemp()) / "runs.db"
    checkpoints = c.SQLiteCheckpoints(db)

    paused = c.run_graph(
        g,
        {"service": "api", "version": "2.1"},
        checkpoints=checkpoints,
        thread="deploy-42",
        interrupt_before=["apply"],
    )
    print(f"status: {paused['status']} before {paused['next']!r}")
    print(f"plan:   {paused['state']['plan']}")

    approved = answer()  # a person decides; the run waits in the SQLite file meanwhile
    later = c.SQLiteCheckpoints(db)  # e.g. another process, after a restart
    done = c.run_graph(
        g,
        resume=True,
        checkpoints=later,
        thread="deploy-42",
        input={"approved": approved, "reviewer": "ada"},
    )
    print(f"status: {done['status']} | {done['state']['result']}")
    print("checkpoints:", [h["status"] for h in later.history("deploy-42")])


if __name__ == "__main__":
    main()
