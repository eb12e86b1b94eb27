"""Hybrid retrieval (issue 17): recall@5 on the stdlib-docstring benchmark of rag_bench.py.

The query is a function's summary line, the documents are the rest of each docstring, and a hit
is a document from the function's module (419 functions from 50 modules on Python 3.11). Prints
every configuration tried: the baselines (rank-bm25's Okapi with the benchmark's own tokenizer,
the hash embedder), Conduit's BM25 (tokenizer, k1, b), and the fused retriever (RRF constant,
candidate depth, weights); then the cost of building and following the BM25 index.

    python benchmarks/hybrid_bench.py            # everything
    python benchmarks/hybrid_bench.py quick      # the baselines and the defaults only
"""

from __future__ import annotations

import re
import sys
import time

import numpy as np

import conduit as c
from conduit.rag.lexical import STOP_WORDS, bm25_index, stem, tokenize, words

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from rag_bench import stdlib_functions

PAIRS = stdlib_functions()
MODULES = [m for m, _, _ in PAIRS]
DOCS = tuple(
    c.freeze({"id": str(i), "text": body, "metadata": {}}) for i, (_, _, body) in enumerate(PAIRS)
)
EMBED = c.hash_embedder(384)
STORE = c.add_documents(c.memory_store(), DOCS, EMBED)


def plain(text: str) -> list[str]:
    """rag_bench's tokenizer: lowercase runs of [a-z0-9]."""
    return re.findall(r"[a-z0-9]+", text.lower())


def recall(find) -> float:
    """Share of queries whose top 5 hold a document of the query's module."""
    got = 0
    for module, summary, _ in PAIRS:
        got += any(MODULES[int(h["document"]["id"])] == module for h in find(summary))
    return got / len(PAIRS)


def rank_bm25_baseline() -> float:
    from rank_bm25 import BM25Okapi

    bm25 = BM25Okapi([plain(d["text"]) for d in DOCS])
    got = 0
    for module, summary, _ in PAIRS:
        best = np.argsort(-bm25.get_scores(plain(summary)), kind="stable")[:5]
        got += any(MODULES[j] == module for j in best)
    return got / len(PAIRS)


def row(name: str, value: float) -> None:
    print(f"   {name:<62} {value:.3f}")


def baselines() -> None:
    print(f"\nrecall@5, {len(PAIRS)} stdlib functions from 50 modules")
    row("rank-bm25 BM25Okapi, [a-z0-9]+ tokens (rag_bench's baseline)", rank_bm25_baseline())
    row("hash_embedder(384) alone (c.retriever)", recall(c.retriever(EMBED, STORE, k=5)))
    row("c.bm25_retriever defaults (k1=1.2, b=0.75)", recall(bm25()))
    row("c.hybrid_retriever defaults (hash: rrf_k=10, weights 0.3:1)", recall(hybrid()))
    row("c.hybrid_retriever, textbook RRF (rrf_k=60, weights 1:1)", recall(hybrid(60, (1, 1))))


def bm25(**kw):
    return c.bm25_retriever(STORE, k=5, **kw)


def hybrid(rrf_k=None, weights=None, **kw):
    return c.hybrid_retriever(EMBED, STORE, k=5, rrf_k=rrf_k, weights=weights, **kw)


def stemmed(text: str) -> tuple[str, ...]:
    return tuple(map(stem, words(text)))


def stems(text: str) -> set[str]:
    return {stem(w) for w in text.split()}


LUCENE = stems(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with"
)
NLTK = stems(
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his himself "
    "she her hers herself it its itself they them their theirs themselves what which who whom "
    "this that these those am is are was were be been being have has had having do does did "
    "doing a an the and but if or because as until while of at by for with about against "
    "between into through during before after above below to from up down in out on off over "
    "under again further then once here there when where why how all any both each few more "
    "most other some such no nor not only own same so than too very s t can will just don "
    "should now"
)


def without(stop):
    def split(text: str) -> tuple[str, ...]:
        return tuple(t for t in map(stem, words(text)) if t not in stop)

    return split


TOKENIZERS = {
    "[a-z0-9]+": plain,
    "words (code-aware)": words,
    "words+stem": stemmed,
    "words+stop (default list)": lambda t: tuple(w for w in words(t) if stem(w) not in STOP_WORDS),
    "words+stem+Lucene stop": without(LUCENE),
    "words+stem+NLTK stop": without(NLTK),
    "words+stem+stop (tokenize)": tokenize,
}

# The modules in two halves (alternate names), to see whether a setting chosen on one half
# holds on the other.
HALF = set(sorted(set(MODULES))[::2])


def halves(find) -> tuple[float, float, float]:
    got = {True: [], False: []}
    for module, summary, _ in PAIRS:
        top = find(summary)
        got[module in HALF].append(any(MODULES[int(h["document"]["id"])] == module for h in top))
    both = got[True] + got[False]
    return sum(got[True]) / len(got[True]), sum(got[False]) / len(got[False]), sum(both) / len(both)


def sweep() -> None:
    print("\nBM25 alone: tokenizer x k1 x b")
    for name, split in TOKENIZERS.items():
        for k1 in (0.9, 1.2, 1.5, 2.0):
            for b in (0.5, 0.75, 0.9):
                row(f"{name:<27} k1={k1} b={b}", recall(bm25(k1=k1, b=b, tokenize=split)))
    print("\nhybrid (default tokenize): rrf_k x fetch_k x vector weight (BM25 weight 1)")
    print("   columns: half A, half B, all")
    for rrf_k in (5, 10, 20, 30, 60):
        for fetch_k in (10, 20, 50):
            for w in (0.2, 0.3, 0.5, 0.7, 1.0):
                a, b, both = halves(hybrid(rrf_k, (w, 1.0), fetch_k=fetch_k))
                print(
                    f"   rrf_k={rrf_k:<3} fetch_k={fetch_k:<3} w={w:<4} {a:.3f} {b:.3f} {both:.3f}"
                )
    print("\nhybrid by BM25 tokenizer: default fusion (rrf_k=10, 0.3:1), textbook (60, 1:1)")
    for name, split in TOKENIZERS.items():
        fused, textbook = recall(hybrid(tokenize=split)), recall(hybrid(60, (1, 1), tokenize=split))
        print(f"   {name:<62} {fused:.3f} {textbook:.3f}")


def timed(fn, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def costs() -> None:
    docs = DOCS * 20  # 8,380 documents (ids repeat: fine for timing)
    docs = tuple(d.set("id", f"{i}") for i, d in enumerate(docs))
    print(f"\ncosts on {len(docs)} documents ({sum(len(d['text']) for d in docs) / 1e6:.1f} MB)")
    t_build, index = timed(lambda: bm25_index(docs))
    print(f"   build from scratch                  {t_build * 1e3:8.1f} ms")
    more = tuple(d.set("id", f"new{i}") for i, d in enumerate(DOCS[:100]))
    t_add, _ = timed(lambda: bm25_index(docs + more, previous=index))
    print(f"   100 added, previous index reused    {t_add * 1e3:8.1f} ms")
    t_del, _ = timed(lambda: bm25_index(docs[100:], previous=index))
    print(f"   100 removed, previous index reused  {t_del * 1e3:8.1f} ms")
    summaries = [s for _, s, _ in PAIRS]
    t_q, _ = timed(lambda: [index.search(q, 50) for q in summaries], repeat=3)
    print(f"   BM25 top-50 search, per query       {t_q / len(summaries) * 1e3:8.2f} ms")
    store = c.MemoryStore(documents=docs, vectors=np.tile(STORE.vectors, (20, 1)))
    find = c.hybrid_retriever(EMBED, store, k=5)
    find("warm up")
    t_h, _ = timed(lambda: [find(q) for q in summaries], repeat=3)
    print(f"   hybrid query (embed, both searches, RRF) {t_h / len(summaries) * 1e3:5.2f} ms")
    t_v, _ = timed(lambda: [c.search(store, q, 5, embed=EMBED) for q in summaries], repeat=3)
    print(f"   vector query alone                  {t_v / len(summaries) * 1e3:8.2f} ms")


if __name__ == "__main__":
    baselines()
    if sys.argv[1:] != ["quick"]:
        sweep()
        costs()
