"""A research workflow as a graph: classify -> gather in parallel -> summarise -> answer.

Simple questions go straight to the answer; research questions first gather from two sources
at once (a vector search over local notes and a keyword index), then a model condenses what
was found, and the answer cites it. Every node's result is checkpointed to a SQLite file, so
a crashed run resumes where it stopped. Offline by default (the mock plays the model, reading
the prompts it gets); with OPENAI_API_KEY set it runs on gpt-4o-mini.
"""

import os
import tempfile
from pathlib import Path

import conduit as c

NOTES = [
    "A retry re-sends 408, 409, 429 and 5xx failures with exponential backoff and jitter.",
    "A with_timeout deadline covers every retry attempt, not just one.",
    "with_cache keys on the model, messages, options and tools; a hit is never billed.",
    "The Anthropic API takes the system prompt as a top-level field, not a message.",
    "Batch runs keep a JSON Lines checkpoint, so a killed batch resumes where it stopped.",
]
GLOSSARY = {
    "retry": "Retrying re-runs the call and every middleware inside it.",
    "cache": "The default cache is an in-memory LRU with a time to live.",
    "checkpoint": "A checkpoint records finished work so a run can resume.",
}


def offline_model(req) -> str:
    """The mock's script: answers each prompt the way a model would, from what it was sent."""
    prompt = req["messages"][0]["content"]
    if prompt.startswith("Classify"):
        question = req["messages"][-1]["content"]
        kind = "research" if any(w in question.lower() for w in ("how", "why")) else "simple"
        return f'{{"label": "{kind}"}}'
    if prompt.startswith("Summarise"):
        facts = [
            ln[2:] for ln in req["messages"][-1]["content"].splitlines() if ln.startswith("- ")
        ]
        return " ".join(facts[:3])
    return "Answer: " + req["messages"][-1]["content"].split("Notes: ", 1)[-1]


def settings() -> tuple[str, dict, object]:
    if os.environ.get("OPENAI_API_KEY"):
        return "gpt-4o-mini", {}, c.openai_call
    return "mock-model", {"mock": offline_model}, c.mock_call


def build(model: str, extra: dict, call) -> c.Graph:
    """The workflow, for any model and handler: the same graph runs offline and live."""
    embed = c.hash_embedder(256)
    store = c.add_documents(c.memory_store(), [c.document(t) for t in NOTES], embed)
    search = c.retriever(embed, store, k=2)

    def classify(s):
        return {
            "kind": c.classify(call, s["question"], ["research", "simple"], model=model, **extra)
        }

    def vector_search(s):
        return [h["document"]["text"] for h in search(s["question"])]

    def keyword_search(s):
        words = s["question"].lower()
        return [text for key, text in GLOSSARY.items() if key in words]

    def summary_request(s):
        found = "\n".join(f"- {t}" for t in [*s["notes"], *s["glossary"]])
        return c.request(
            model,
            [
                c.system("Summarise the notes below for the question."),
                c.user(f"Question: {s['question']}\n{found}"),
            ],
            **extra,
        )

    def answer_request(s):
        notes = s.get("summary") or "(none gathered)"
        return c.request(
            model,
            [
                c.system("Answer from the notes; say which note you used."),
                c.user(f"{s['question']}\nNotes: {notes}"),
            ],
            **extra,
        )

    return c.graph(
        {
            "classify": classify,
            "gather": c.parallel(notes=vector_search, glossary=keyword_search),
            "summarize": c.llm_step("summary", summary_request, call),
            "answer": c.llm_step("answer", answer_request, call),
        },
        {
            "classify": (lambda s: s["kind"], {"research": "gather", "simple": "answer"}),
            "gather": "summarize",
            "summarize": "answer",
            "answer": c.END,
        },
    )


def main() -> None:
    model, extra, call = settings()
    g = build(model, extra, call)
    print(c.to_mermaid(g), end="\n\n")
    checkpoints = c.SQLiteCheckpoints(Path(tempfile.mkdtemp()) / "research.db")
    questions = ["How does a retry interact with the cache?", "What is Conduit?"]
    for i, question in enumerate(questions):
        path: list[str] = []

        def trace(event, path=path):
            if event["type"] == "node_end":
                path.append(event["node"])

        run = c.run_graph(
            g, {"question": question}, checkpoints=checkpoints, thread=f"q{i}", on_event=trace
        )
        print(f"Q: {question}\n   path: {' -> '.join(path)}\n   {run['state']['answer']}")
    print("checkpoints written:", sum(len(checkpoints.history(f"q{i}")) for i in range(2)))


if __name__ == "__main__":
    main()
