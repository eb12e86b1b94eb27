"""Retrieval-augmented generation over a folder, offline: load, split, embed, store, ask.

Uses the hash embedder and an in-memory store saved to one file. Without an API key the mock
model answers by quoting the best passage; with OPENAI_API_KEY set, gpt-4o-mini answers.
"""

import os
import tempfile
from pathlib import Path

import conduit as c

NOTES = {
    "retry.md": (
        "# Retries\n\nConduit retries 408, 409, 429 and 5xx answers with exponential backoff "
        "and honours Retry-After.\n\n## Limits\n\nA with_timeout deadline covers every attempt."
    ),
    "cache.md": (
        "# Caching\n\nwith_cache keys on the model, messages, options and tools. "
        "A cache hit costs nothing and streams back as events."
    ),
    "tools.md": (
        "# Tools\n\nTool schemas come from type hints and docstrings. "
        "Unknown tools become error messages the model can recover from."
    ),
}


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    for name, text in NOTES.items():
        (folder / name).write_text(text)

    docs = c.load_documents(folder)
    chunks = c.split_markdown(docs, chunk_size=200)
    embed = c.hash_embedder(384)
    store = c.add_documents(c.memory_store(), chunks, embed)
    path = c.save_store(store, folder / "index.npz")
    store = c.load_store(path)
    print(f"indexed {len(docs)} files as {len(store)} chunks in {path.name}")

    live = bool(os.environ.get("OPENAI_API_KEY"))
    quote = lambda req: "From the notes: " + req["messages"][0]["content"].split("\n", 3)[-1][:120]  # noqa: E731
    question = c.request(
        "gpt-4o-mini", "Does a cache hit cost anything?", **({} if live else {"mock": quote})
    )
    ctx = (c.openai_call if live else c.mock_call)(
        c.with_retrieval(c.retriever(embed, store, k=2))(question)
    )
    print("answer:", c.content(ctx))
    for hit in ctx["sources"]:
        meta = hit["document"]["metadata"]
        name, heads = Path(meta["source"]).name, list(meta["headings"])
        print(f"  source: {name} {heads} score={hit['score']:.2f}")


if __name__ == "__main__":
    main()
