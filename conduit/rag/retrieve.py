"""Retrieval: ``retriever`` (query text to hits) and ``with_retrieval`` (hits into the prompt).

``hybrid_retriever`` fuses the vector ranking with a BM25 ranking of the same store
(:mod:`conduit.rag.lexical`) by reciprocal rank fusion (``rrf``); ``bm25_retriever`` is the
lexical half alone.

``with_retrieval`` puts the retrieved passages into the request as a numbered context message
(after the system messages) so the model can cite them as [1], [2], ...; the hits travel on
the context as ``ctx["sources"]``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import partial
from typing import Any

import numpy as np
from pyrsistent import PVector, pvector

from conduit._drive import Effect
from conduit._options import Builder, configure, number
from conduit._types import Flow, Request
from conduit.errors import ValidationError
from conduit.middleware import Middleware, middleware
from conduit.rag.embed import Embedder, hash_embed
from conduit.rag.lexical import Bm25Index, Tokenizer, bm25_index, documents_of, tokenize
from conduit.rag.store import Filter, hits_from, search
from conduit.request import system, text

__all__ = [
    "DEFAULT_TEMPLATE",
    "bm25_retriever",
    "format_context",
    "fuse",
    "fusion_defaults",
    "hybrid_retriever",
    "mmr",
    "retrieval_flow",
    "retriever",
    "rrf",
    "with_retrieval",
]

Retriever = Callable[[str], PVector[Any]]

DEFAULT_TEMPLATE = (
    "Answer using the numbered sources below when they are relevant, and cite them like [1]. "
    "If they do not contain the answer, say so.\n\n{context}"
)


def mmr(
    query: np.ndarray[Any, Any], vectors: np.ndarray[Any, Any], k: int, weight: float = 0.5
) -> list[int]:
    """Return *k* indexes chosen by maximal marginal relevance (relevant, and unlike each other).

    >>> v = np.array([[1, 0], [0.99, 0.14], [0, 1]], dtype=np.float32)
    >>> mmr(np.array([1, 0], dtype=np.float32), v, 2, weight=0.3)
    [0, 2]
    """
    relevance = vectors @ query
    chosen: list[int] = []
    left = list(range(len(vectors)))
    while left and len(chosen) < k:
        if chosen:
            similarity = (vectors[left] @ vectors[chosen].T).max(axis=1)
        else:
            similarity = np.zeros(len(left))
        scores = weight * relevance[left] - (1 - weight) * similarity
        best = left[int(np.argmax(scores))]
        chosen.append(best)
        left.remove(best)
    return chosen


def _retrieve(
    query: str,
    *,
    embed: Embedder,
    store: Any,
    k: int,
    threshold: float | None,
    use_mmr: bool,
    fetch_k: int,
    mmr_weight: float,
    filter: Filter,
) -> PVector[Any]:
    hits = search(store, query, fetch_k if use_mmr else k, embed=embed, filter=filter)
    if threshold is not None:
        hits = pvector(h for h in hits if h["score"] >= threshold)
    if use_mmr and len(hits) > 1:
        vectors = np.asarray(embed([h["document"]["text"] for h in hits]), dtype=np.float32)
        qvec = np.asarray(embed([query]), dtype=np.float32)[0]
        order = mmr(qvec, vectors, k, mmr_weight)
        hits = hits_from([hits[i]["document"] for i in order], [hits[i]["score"] for i in order])
    return pvector(hits[:k])


def retriever(
    embed: Embedder,
    store: Any,
    k: int = 4,
    threshold: float | None = None,
    mmr: bool = False,
    *,
    fetch_k: int | None = None,
    mmr_weight: float = 0.5,
    filter: Filter = None,
) -> Retriever:
    """Return a function from query text to the best *k* hits in *store*.

    *threshold* drops hits scoring below it; *mmr* re-ranks *fetch_k* candidates (default
    :data:`FETCH_K`, or *k* when larger) for variety; *filter* (metadata values, or a function
    of the metadata) applies before the top-k cut.
    """
    k, fetch_k = _counts("retriever", k, fetch_k)
    if not 0 <= mmr_weight <= 1:
        raise ValidationError(f"retriever(mmr_weight=...) must be from 0 to 1, not {mmr_weight!r}")
    return partial(
        _retrieve,
        embed=embed,
        store=store,
        k=k,
        threshold=threshold,
        use_mmr=mmr,
        fetch_k=fetch_k,
        mmr_weight=mmr_weight,
        filter=filter,
    )


def rrf(
    rankings: Sequence[Sequence[str]], k: float = 60, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Return the ids of *rankings* (each best first) fused by reciprocal rank fusion, best first.

    An id scores the sum over rankings of ``weight / (k + rank)``, rank counted from 1 (Cormack,
    Clarke and Buettcher, 2009). Sums are exact, so the result does not depend on the order of
    the rankings, and an id ranked above another in every ranking ends above it; equal scores
    go by id.

    >>> rrf([["a", "b", "c"], ["c", "a"]], k=1)
    [('a', 0.8333333333333334), ('c', 0.75), ('b', 0.3333333333333333)]
    """
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings) or any(not w >= 0 for w in weights) or not k >= 0:
        raise ValidationError(f"rrf needs k >= 0 and one weight >= 0 per ranking, got {weights}")
    total: dict[str, Fraction] = {}
    base = Fraction(k)
    for ranking, weight in zip(rankings, weights, strict=True):
        w, seen = Fraction(weight), set()
        for rank, key in enumerate(ranking, 1):
            if key not in seen:  # an id listed twice counts at its best rank
                seen.add(key)
                total[key] = total.get(key, Fraction(0)) + w / (base + rank)
    ordered = sorted(total.items(), key=lambda item: (-item[1], item[0]))
    return [(key, float(score)) for key, score in ordered]


def fuse(hit_lists: Sequence[Any], k: float = 60, weights: Sequence[float] | None = None) -> Any:
    """Return the hits of *hit_lists* fused by :func:`rrf` on document ids (score: the fused one).

    >>> a = {"id": "a", "text": "A", "metadata": {}}
    >>> b = {"id": "b", "text": "B", "metadata": {}}
    >>> hits = fuse([hits_from([a, b], [0.9, 0.2]), hits_from([b], [7.0])])
    >>> [(h["document"]["id"], h["rank"]) for h in hits]
    [('b', 0), ('a', 1)]
    """
    docs = {h["document"]["id"]: h["document"] for hits in hit_lists for h in hits}
    fused = rrf([[h["document"]["id"] for h in hits] for hits in hit_lists], k, weights)
    return hits_from([docs[key] for key, _ in fused], [score for _, score in fused])


def _follow(source: Any, k1: float, b: float, split: Tokenizer) -> Callable[[], Bm25Index]:
    """Return a function giving the BM25 index of *source* as it is now: a store's documents
    are read on each call and indexed again only when they changed, reusing what is known."""
    if isinstance(source, Bm25Index):
        return lambda: source
    if documents_of(source) is None:
        if isinstance(source, str) or not hasattr(source, "__iter__"):
            raise ValidationError(
                "BM25 needs the documents: a memory or SQLite store, a list of documents or "
                f"texts, or a bm25 index, not {source!r:.60}"
            )
        index = bm25_index(source, k1=k1, b=b, tokenize=split)
        return lambda: index
    lock = threading.Lock()
    state: list[Any] = [None, None]  # the documents last indexed, their index

    def current() -> Bm25Index:
        docs = documents_of(source)
        with lock:
            if docs is not state[0]:
                state[1] = bm25_index(docs, k1=k1, b=b, tokenize=split, previous=state[1])
                state[0] = docs
            index: Bm25Index = state[1]
            return index

    return current


#: How many candidates a retriever ranks before keeping its best *k*, unless told.
FETCH_K = 20


def _counts(builder: str, k: Any, fetch_k: Any) -> tuple[int, int]:
    """Return (k, fetch_k) checked: whole numbers > 0, *fetch_k* at least *k* (None: the larger
    of :data:`FETCH_K` and *k*).

    >>> _counts("retriever", 25, None), _counts("retriever", 3, 5)
    ((25, 25), (3, 5))
    >>> _counts("retriever", 5, 3)
    Traceback (most recent call last):
    conduit.errors.ValidationError: retriever(fetch_k=3) must be at least k=5: the candidates \
fetched are ranked down to k
    """
    k = number(builder, "k", k, whole=True)
    if fetch_k is None:
        return k, max(FETCH_K, k)
    fetch_k = number(builder, "fetch_k", fetch_k, whole=True)
    if fetch_k < k:
        raise ValidationError(
            f"{builder}(fetch_k={fetch_k}) must be at least k={k}: the candidates fetched are "
            "ranked down to k"
        )
    return k, fetch_k


def _bm25(query: str, *, index: Callable[[], Bm25Index], k: int, filter: Filter) -> Any:
    return index().search(query, k, filter)


def bm25_retriever(
    source: Any,
    k: int = 4,
    *,
    filter: Filter = None,
    k1: float = 1.2,
    b: float = 0.75,
    tokenize: Tokenizer = tokenize,
) -> Retriever:
    """Return a function from query text to the best *k* BM25 hits (no embedder, no vectors).

    *source* is a store (its documents, followed as it changes), a list of documents or texts,
    or an index from :func:`conduit.rag.lexical.bm25_index` (its own *k1*, *b*, *tokenize*
    apply then). Only documents sharing a term with the query come back; *filter* applies
    before the top-k cut.

    >>> import conduit as c
    >>> find = c.bm25_retriever(["def load_store(path)", "def save_store(store, path)"], k=1)
    >>> find("how do I load a store?")[0]["document"]["text"]
    'def load_store(path)'
    """
    k = number("bm25_retriever", "k", k, whole=True)
    return partial(_bm25, index=_follow(source, k1, b, tokenize), k=k, filter=filter)


def _hybrid(
    query: str,
    *,
    embed: Embedder,
    store: Any,
    index: Callable[[], Bm25Index],
    k: int,
    fetch_k: int,
    rrf_k: float,
    weights: tuple[float, float],
    filter: Filter,
) -> PVector[Any]:
    dense = search(store, query, fetch_k, embed=embed, filter=filter)
    lexical = index().search(query, fetch_k, filter)
    return pvector(fuse([dense, lexical], rrf_k, weights)[:k])


def fusion_defaults(embed: Embedder) -> tuple[float, tuple[float, float]]:
    """Return the RRF constant and the (vector, BM25) weights :func:`hybrid_retriever` uses
    with *embed* when given none.

    The textbook (k=60, equal weights) for a learned embedder. The hash embedder scores shared
    words, word pairs and trigrams without IDF: a noisier copy of BM25's evidence, so it gets a
    third of BM25's weight and a sharper constant, which lets it break ties and fill in where
    BM25 finds nothing (a typo) without outvoting it (benchmarks/README.md, issue 17).

    >>> from conduit.rag.embed import hash_embedder
    >>> fusion_defaults(hash_embedder(64)), fusion_defaults(lambda texts: None)
    ((10.0, (0.3, 1.0)), (60.0, (1.0, 1.0)))
    """
    if isinstance(embed, partial) and embed.func is hash_embed:
        return 10.0, (0.3, 1.0)
    return 60.0, (1.0, 1.0)


def hybrid_retriever(
    embed: Embedder,
    store: Any,
    k: int = 4,
    *,
    fetch_k: int | None = None,
    rrf_k: float | None = None,
    weights: tuple[float, float] | None = None,
    filter: Filter = None,
    k1: float = 1.2,
    b: float = 0.75,
    tokenize: Tokenizer = tokenize,
    lexical: Any = None,
) -> Retriever:
    """Return a function from query text to the best *k* hits of vector and BM25 search fused.

    Each side ranks its best *fetch_k* documents (default :data:`FETCH_K`, or *k* when
    larger); reciprocal rank fusion (:func:`rrf`, constant
    *rrf_k*, *weights* for the vector and the BM25 ranking; by default
    :func:`fusion_defaults`) merges them, and a hit's score is its fused score. The BM25 side
    (*k1*, *b*, *tokenize*) indexes the store's own documents (a memory or SQLite store) on
    first use and follows the store as it changes, tokenizing only new documents; for a store
    that cannot list its documents (Qdrant), pass them as *lexical*. *filter* applies to both
    sides before their cut.

    >>> import conduit as c
    >>> embed = c.hash_embedder(64)
    >>> texts = ["def load_store(path): read a saved store", "Cats purr when content."]
    >>> find = c.hybrid_retriever(embed, c.add_documents(c.memory_store(), texts, embed), k=1)
    >>> find("loadStore")[0]["document"]["text"]
    'def load_store(path): read a saved store'
    """
    k, fetch_k = _counts("hybrid_retriever", k, fetch_k)
    if lexical is None and documents_of(store) is None:
        raise ValidationError(
            f"{store!r:.60} does not list its documents for BM25: pass them as lexical="
        )
    preset_k, preset_weights = fusion_defaults(embed)
    rrf_k = preset_k if rrf_k is None else rrf_k
    weights = preset_weights if weights is None else weights
    if len(weights) != 2 or any(not w >= 0 for w in weights) or not rrf_k >= 0:
        raise ValidationError(f"need rrf_k >= 0 and two weights >= 0, got {rrf_k}, {weights}")
    return partial(
        _hybrid,
        embed=embed,
        store=store,
        index=_follow(store if lexical is None else lexical, k1, b, tokenize),
        k=k,
        fetch_k=fetch_k,
        rrf_k=float(rrf_k),
        weights=(float(weights[0]), float(weights[1])),
        filter=filter,
    )


def format_context(hits: Any) -> str:
    """Return the numbered passages of *hits*, each with its source, for the prompt.

    >>> format_context([{"document": {"id": "a.md#0", "text": "Cats purr.",
    ...                               "metadata": {"source": "a.md"}}, "score": 0.9, "rank": 0}])
    '[1] (a.md)\\nCats purr.'
    """
    blocks = []
    for i, hit in enumerate(hits, 1):
        doc = hit["document"]
        source = doc.get("metadata", {}).get("source") or doc["id"]
        blocks.append(f"[{i}] ({source})\n{doc['text']}")
    return "\n\n".join(blocks)


def _query(req: Request) -> str:
    for msg in reversed(req["messages"]):
        if msg["role"] == "user":
            return text(msg["content"])
    raise ValidationError("with_retrieval needs a user message to search for")


def retrieval_flow(req: Request, *, retrieve: Retriever, template: str) -> Flow:
    """Retrieve for the last user message, add the context message, return the hits too."""
    hits = yield Effect(partial(retrieve, _query(req)))
    msgs = req["messages"]
    at = next((i for i, m in enumerate(msgs) if m["role"] != "system"), len(msgs))
    context = system(template.format(context=format_context(hits) or "(no sources found)"))
    sent = req.set("messages", pvector([*msgs[:at], context, *msgs[at:]]))
    ctx: Request = yield sent
    return ctx.set("sources", pvector(hits))


_NEEDS = "with_retrieval needs a retriever: c.with_retrieval(c.retriever(embed, store, k=4))"


def _build(*, retrieve: Retriever | None = None, template: str = DEFAULT_TEMPLATE) -> Middleware:
    if retrieve is None or not callable(retrieve):
        raise ValidationError(_NEEDS if retrieve is None else f"{_NEEDS}, not {retrieve!r:.40}")
    if not isinstance(template, str) or "{context}" not in template:
        raise ValidationError("with_retrieval's template needs a {context} placeholder")
    try:
        template.format(context="")
    except (KeyError, IndexError, ValueError) as exc:
        msg = f"with_retrieval's template may hold only {{context}} (double other braces): {exc}"
        raise ValidationError(msg) from None
    return middleware(
        retrieval_flow, name="retrieval", shapes=True, retrieve=retrieve, template=template
    )


_SPEC = Builder(
    name="with_retrieval", build=_build, first="retrieve", example=_NEEDS.split(": ", 1)[1]
)


def with_retrieval(retrieve: Any = None, /, **options: Any) -> Any:
    """Return a transform adding retrieved context to the prompt; hits at ``ctx["sources"]``.

    *retrieve* is a function from query text to hits (:func:`retriever`); ``template`` is the
    context message, with a ``{context}`` placeholder. There is no bare form: what to search
    is yours to say, so ``pipe(req, c.with_retrieval, ...)`` raises ``ValidationError``.

    >>> import conduit as c
    >>> embed = c.hash_embedder(64)
    >>> facts = ["Paris is in France.", "Rome is in Italy."]
    >>> store = c.add_documents(c.memory_store(), facts, embed)
    >>> script = c.mock_script("Rome [1]")
    >>> ctx = c.mock_call(c.with_retrieval(c.retriever(embed, store, k=1))(
    ...     c.request("m", "Where is Rome?", mock=script)))
    >>> ctx["sources"][0]["document"]["text"], script.calls[0]["messages"][0]["role"]
    ('Rome is in Italy.', 'system')
    """
    return configure(_SPEC, retrieve, options)
