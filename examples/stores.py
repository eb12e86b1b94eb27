"""Vector stores with one set of functions: the in-memory store, SQLite and Qdrant.

Indexes this repository's docs with the offline hash embedder (or OpenAI embeddings when
OPENAI_API_KEY is set), then runs the same searches, a metadata filter and MMR against each store.
Qdrant runs in its local mode when qdrant-client is installed (pip install "conduit-llm[qdrant]").
"""

import os
import tempfile
from pathlib import Path

import conduit as c

DOCS = Path(__file__).resolve().parents[1] / "docs"


def main() -> None:
    embed = (
        c.provider_embedder("openai:text-embedding-3-small")
        if os.environ.get("OPENAI_API_KEY")
        else c.hash_embedder(384)
    )
    chunks = c.split_markdown(c.load_documents(DOCS, glob="*.md"), chunk_size=600)
    print(f"{len(chunks)} chunks from {len({ch['metadata']['source'] for ch in chunks})} pages")

    folder = Path(tempfile.mkdtemp())
    stores = {"memory": c.memory_store(), "sqlite": c.SQLiteStore(folder / "docs.db")}
    try:
        stores["qdrant"] = c.QdrantStore(":memory:", collection="docs")
    except c.ConduitError as err:
        print("qdrant skipped:", str(err)[:80])

    question = "How does a graph resume from a checkpoint?"
    for name, store in stores.items():
        store = c.add_documents(store, chunks, embed)
        hits = c.search(store, question, k=3, embed=embed)
        only_memory = c.search(
            store, question, k=2, embed=embed, filter=lambda m: m["source"].endswith("memory.md")
        )
        print(
            f"{name:>7}: {[Path(h['document']['metadata']['source']).name for h in hits]}"
            f" | filtered: {[Path(h['document']['metadata']['source']).name for h in only_memory]}"
        )

    # Another handle on the same file (or another process) writes; the first handle sees it.
    note = {"id": "note", "text": "Checkpoints live in one file.", "metadata": {"source": "n.md"}}
    c.add_documents(c.SQLiteStore(folder / "docs.db"), note, embed)
    seen = c.search(stores["sqlite"], "checkpoints", k=1, embed=embed, filter={"source": "n.md"})
    print("a second handle's write, seen by the first:", [h["document"]["id"] for h in seen])

    diverse = c.retriever(embed, c.add_documents(c.memory_store(), chunks, embed), k=3, mmr=True)
    print(
        "mmr:", [" > ".join(h["document"]["metadata"]["headings"])[:50] for h in diverse(question)]
    )
    path = c.save_store(c.add_documents(c.memory_store(), chunks, embed), folder / "docs.npz")
    print(f"saved the memory store to one file: {path.name} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
