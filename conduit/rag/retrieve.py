"""Retrieval: ``retriever`` (query text to hits) and ``with_retrieval`` (hits into the prompt).

``with_retrieval`` puts the retrieved passages into the request as a numbered context message
(after the system messages) so the model can cite them as [1], [2], ...; the hits travel on
the context as ``ctx["sources"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from pyrsistent import PVector, pvector

from conduit._drive import Effect
from conduit._options import Builder, configure
from conduit._types import Flow, Request
from conduit.errors import ValidationError
from conduit.middleware import Middleware, middleware
from conduit.rag.embed import Embedder
from conduit.rag.store import Filter, hits_from, search
from conduit.request import system, text

__all__ = [
    "DEFAULT_TEMPLATE",
    "format_context",
    "mmr",
    "retrieval_flow",
    "retriever",
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
    fetch_k: int = 20,
    mmr_weight: float = 0.5,
    filter: Filter = None,
) -> Retriever:
    """Return a function from query text to the best *k* hits in *store*.

    *threshold* drops hits scoring below it; *mmr* re-ranks *fetch_k* candidates for variety;
    *filter* (metadata values, or a function of the metadata) applies before the top-k cut.
    """
    if k < 1 or fetch_k < k:
        raise ValidationError(f"need 1 <= k <= fetch_k, got k={k}, fetch_k={fetch_k}")
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
    return middleware(retrieval_flow, name="retrieval", retrieve=retrieve, template=template)


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
