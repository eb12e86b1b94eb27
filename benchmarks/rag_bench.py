"""RAG benchmarks, each against a baseline measured in the same run.

1. Top-10 search over 100,000 x 384 float32 vectors: Conduit's memory store vs faiss-cpu's
   IndexFlatIP (exact inner product), same queries, results compared.
2. Splitting: Conduit's split_recursive vs langchain-text-splitters' RecursiveCharacterTextSplitter
   on the same text and parameters: throughput, and how many chunks are identical.
3. Retrieval quality on the Python standard library's own docstrings: the query is a function's
   summary line, the document is the rest of its docstring, and a hit is a document from the
   function's module. recall@5 of hash_embedder beside BM25 (rank-bm25).

    python benchmarks/rag_bench.py
"""

from __future__ import annotations

import importlib
import inspect
import re
import statistics
import time

import numpy as np

import conduit as c
from conduit.rag.split import split_spans


def timed(fn, repeat=7):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def bench_search() -> None:
    import faiss

    rng = np.random.default_rng(0)
    n, d, queries = 100_000, 384, 50
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    qs = rng.standard_normal((queries, d)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    docs = tuple(c.freeze({"id": str(i), "text": "", "metadata": {}}) for i in range(n))
    store = c.MemoryStore(documents=docs, vectors=vectors)
    index = faiss.IndexFlatIP(d)
    index.add(vectors)

    def ours():
        return [[int(h["document"]["id"]) for h in c.search(store, q, 10)] for q in qs]

    def theirs():
        return [list(map(int, index.search(q.reshape(1, -1), 10)[1][0])) for q in qs]

    t_ours, got = timed(ours)
    t_faiss, want = timed(theirs)
    same = sum(a == b for a, b in zip(got, want, strict=True))
    print("\n1. top-10 search, 100,000 x 384, one query at a time (median per query)")
    print(f"   faiss IndexFlatIP  {t_faiss / queries * 1e3:8.2f} ms")
    print(f"   conduit search     {t_ours / queries * 1e3:8.2f} ms   {t_ours / t_faiss:.2f}x faiss")
    print(f"   identical top-10 lists: {same}/{queries}")


def corpus_text() -> str:
    parts = []
    for name in (
        "json",
        "re",
        "pathlib",
        "collections",
        "argparse",
        "typing",
        "asyncio.tasks",
        "email.message",
        "http.client",
        "logging",
        "textwrap",
        "shutil",
    ):
        parts.append(inspect.getsource(importlib.import_module(name)))
    return "\n\n".join(parts)


def interleaved(theirs, ours, n):
    """Median times of two functions run alternately (a busy machine slows both alike)."""
    a, b = [], []
    for _ in range(n):
        start = time.perf_counter()
        out_a = theirs()
        a.append(time.perf_counter() - start)
        start = time.perf_counter()
        out_b = ours()
        b.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b), out_a, out_b


def bench_split() -> None:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    text = corpus_text()
    seps = ["\n\n", "\n", " ", ""]
    lc = RecursiveCharacterTextSplitter(
        chunk_size=1000, chunk_overlap=0, separators=seps, keep_separator="end"
    )
    escaped = tuple(re.escape(s) for s in seps)
    t_lc, t_ours, theirs, spans = interleaved(
        lambda: lc.split_text(text), lambda: split_spans(text, 1000, 0, escaped), 41
    )
    ours = [text[a:b] for a, b in spans]
    same = len(set(ours) & {t.strip() for t in theirs})
    mb = len(text) / 1e6
    print(f"\n2. splitting {mb:.1f} MB of stdlib source, chunk_size=1000, overlap 0 (median)")
    print(
        f"   langchain RecursiveCharacterTextSplitter  {mb / t_lc:6.2f} MB/s  {len(theirs)} chunks"
    )
    print(
        f"   conduit split_recursive                   {mb / t_ours:6.2f} MB/s  {len(ours)} chunks"
        f"   ({t_lc / t_ours:.2f}x langchain's speed)"
    )
    print(f"   chunks identical (after trimming whitespace): {same} of {len(theirs)}")
    assert all(len(x) <= 1000 for x in ours)


def stdlib_functions():
    pairs = []
    for name in (
        "json",
        "os.path",
        "re",
        "string",
        "textwrap",
        "shutil",
        "pathlib",
        "functools",
        "itertools",
        "collections",
        "statistics",
        "random",
        "math",
        "base64",
        "urllib.parse",
        "difflib",
        "fnmatch",
        "glob",
        "heapq",
        "bisect",
        "copy",
        "csv",
        "calendar",
        "datetime",
        "fractions",
        "hashlib",
        "html",
        "inspect",
        "ipaddress",
        "operator",
        "pprint",
        "secrets",
        "shlex",
        "tempfile",
        "typing",
        "uuid",
        "zipfile",
        "tarfile",
        "gzip",
        "logging",
        "argparse",
        "email.utils",
        "http.cookies",
        "sqlite3",
        "subprocess",
        "threading",
        "contextlib",
        "dataclasses",
        "enum",
        "abc",
    ):
        module = importlib.import_module(name)
        for fname, fn in vars(module).items():
            if (
                fname.startswith("_")
                or not callable(fn)
                or getattr(fn, "__module__", None) != module.__name__
            ):
                continue
            doc = inspect.getdoc(fn) or ""
            summary, _, body = doc.partition("\n")
            if len(summary) > 15 and len(body.strip()) > 40:
                pairs.append((name, summary.strip(), body.strip()))
    return pairs


def bench_recall() -> None:
    from rank_bm25 import BM25Okapi

    pairs = stdlib_functions()
    modules = [m for m, _, _ in pairs]
    docs = [b for _, _, b in pairs]
    embed = c.hash_embedder(384)
    store = c.add_documents(
        c.memory_store(),
        [{"id": str(i), "text": d, "metadata": {}} for i, d in enumerate(docs)],
        embed,
    )
    tokenize = lambda s: re.findall(r"[a-z0-9]+", s.lower())  # noqa: E731
    bm25 = BM25Okapi([tokenize(d) for d in docs])
    hits_hash = hits_bm25 = 0
    for i, (module, summary, _) in enumerate(pairs):
        top = [int(h["document"]["id"]) for h in c.search(store, summary, 5, embed=embed)]
        hits_hash += any(modules[j] == module for j in top)
        scores = bm25.get_scores(tokenize(summary))
        best = np.argsort(-scores, kind="stable")[:5]
        hits_bm25 += any(modules[j] == module for j in best)
        _ = i
    n = len(pairs)
    print(
        f"\n3. recall@5 on {n} stdlib functions from 50 modules (query: summary line; "
        "a hit: a document from the same module)"
    )
    print(f"   BM25 (rank-bm25 Okapi)  {hits_bm25 / n:.3f}")
    print(f"   conduit hash_embedder   {hits_hash / n:.3f}")


if __name__ == "__main__":
    bench_search()
    bench_split()
    bench_recall()
