"""Lexical retrieval: code-aware tokens and an Okapi BM25 index, as pure functions and a value.

``tokenize`` splits on punctuation, ``snake_case`` and ``camelCase`` and lowercases, so
``parseHTTPResponse`` and ``parse_http_response`` both become ``parse http response``, then drops
plural endings and English stop words.
:class:`Bm25Index` is immutable: ``bm25_index(docs, previous=old)`` tokenizes only the documents
*old* does not already hold (same id and text) and reassembles the postings in numpy, which is
how retrievers follow a store that changes. Scores use Lucene's IDF, ``ln(1 + (N - df + 0.5) /
(df + 0.5))``, which is never negative, and are the same whatever order the documents came in.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any

import attrs
import numpy as np
from pyrsistent import PMap, PVector

from conduit.errors import ValidationError
from conduit.rag.documents import as_documents
from conduit.rag.index import Filter, hits_from, matches, top_k

__all__ = [
    "STOP_WORDS",
    "Bm25Index",
    "bm25_index",
    "bm25_scores",
    "documents_of",
    "stem",
    "tokenize",
    "words",
]

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[^\W_]+")
Analysis = tuple[tuple[int, ...], tuple[int, ...], int]  # term ids, their counts, length
Tokenizer = Callable[[str], Sequence[str]]


def words(text: str) -> tuple[str, ...]:
    """Return the lowercase words of *text*, code identifiers split into their parts.

    >>> words("parseHTTPResponse(raw_bytes) -> JSONDecoder.v2")
    ('parse', 'http', 'response', 'raw', 'bytes', 'json', 'decoder', 'v2')
    >>> words("Déjà vu, naïveBayes")
    ('déjà', 'vu', 'naïve', 'bayes')
    """
    return tuple(_WORD.findall(_CAMEL.sub(" ", text).lower()))


def stem(word: str) -> str:
    """Return *word* without an English plural ending (Harman's S-stemmer, 1991).

    >>> [stem(w) for w in ("queries", "classes", "files", "status", "class", "bytes")]
    ['query', 'classe', 'file', 'status', 'class', 'byte']
    """
    if len(word) > 3 and word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if len(word) > 2 and word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


# Lucene's English stop words, and the words a question is asked with (queries are often
# questions: "how do I ..."), stemmed as the words they are compared with.
STOP_WORDS = frozenset(
    stem(w)
    for w in (
        *("a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into"),
        *("is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then"),
        *("there", "these", "they", "this", "to", "was", "will", "with"),
        *("how", "what", "when", "where", "which", "who", "whom", "whose", "why", "do", "does"),
        *("did", "i", "me", "my", "we", "our", "you", "your", "can", "could", "should", "would"),
    )
)


def tokenize(text: str) -> tuple[str, ...]:
    """Return the terms BM25 indexes for *text*: its :func:`words`, stemmed (:func:`stem`),
    without English stop words. Applied to its own output, it gives that output back.

    >>> tokenize("Returns the parsed HTTPResponses of raw_bytes")
    ('return', 'parsed', 'http', 'response', 'raw', 'byte')
    """
    return tuple(t for t in map(_term, words(text)) if t)


@functools.lru_cache(maxsize=1 << 16)
def _term(word: str) -> str:
    """The stem of *word*, or "" for a stop word (memoised: most words repeat)."""
    t = stem(word)
    return "" if t in STOP_WORDS else t


def _ro(values: Any, dtype: Any) -> np.ndarray[Any, Any]:
    out = np.asarray(values, dtype=dtype)
    out.setflags(write=False)
    return out


@attrs.frozen(eq=False, repr=False)
class Bm25Index:
    """An Okapi BM25 index over documents: build it with :func:`bm25_index`, read it with
    :func:`bm25_scores` or :meth:`search`. Its arrays are read-only; ``vocabulary`` only grows."""

    documents: tuple[PMap[str, Any], ...]
    k1: float
    b: float
    tokenize: Tokenizer
    vocabulary: Mapping[str, int]  # term -> id
    analyses: tuple[Analysis, ...]  # per document
    starts: np.ndarray[Any, Any]  # postings of term t: [starts[t], starts[t + 1])
    postings: np.ndarray[Any, Any]  # document indexes, grouped by term, ascending
    counts: np.ndarray[Any, Any]  # term count in that document
    norms: np.ndarray[Any, Any]  # k1 * (1 - b + b * length / average length), per document

    def search(self, query: str, k: int, flt: Filter = None) -> PVector[Any]:
        """Return the *k* best hits for *query*, best first; only documents sharing a term with
        it, after the filter (ties: the earlier document first)."""
        scores = bm25_scores(self, query)
        if flt is not None:
            allowed = np.array([matches(flt, d["metadata"]) for d in self.documents], bool)
            scores = np.where(allowed, scores, 0.0)
        order = top_k(scores, min(k, int(np.count_nonzero(scores > 0))))
        return hits_from([self.documents[i] for i in order], scores[order])

    def __len__(self) -> int:
        return len(self.documents)

    def __repr__(self) -> str:
        return f"Bm25Index({len(self)} documents, {len(self.vocabulary)} terms)"


def _analyse(text: str, split: Tokenizer, vocabulary: dict[str, int]) -> Analysis:
    tokens = split(text)
    counted = Counter(tokens)
    ids = tuple(vocabulary.setdefault(t, len(vocabulary)) for t in counted)
    return ids, tuple(counted.values()), len(tokens)


def _assemble(
    docs: tuple[PMap[str, Any], ...],
    analyses: tuple[Analysis, ...],
    vocabulary: Mapping[str, int],
    k1: float,
    b: float,
    split: Tokenizer,
) -> Bm25Index:
    sizes = np.fromiter((len(a[0]) for a in analyses), np.int64, len(analyses))
    ids = np.fromiter(chain.from_iterable(a[0] for a in analyses), np.int64, int(sizes.sum()))
    counts = np.fromiter(chain.from_iterable(a[1] for a in analyses), np.float64, len(ids))
    order = np.argsort(ids, kind="stable")  # by term, then by document
    df = np.bincount(ids, minlength=len(vocabulary))
    lengths = np.fromiter((a[2] for a in analyses), np.float64, len(analyses))
    average = sum(a[2] for a in analyses) / len(analyses) if analyses else 1.0
    return Bm25Index(
        documents=docs,
        k1=k1,
        b=b,
        tokenize=split,
        vocabulary=vocabulary,
        analyses=analyses,
        starts=_ro(np.concatenate([[0], np.cumsum(df)]), np.int64),
        postings=_ro(np.repeat(np.arange(len(docs)), sizes)[order], np.int64),
        counts=_ro(counts[order], np.float64),
        norms=_ro(k1 * (1 - b + b * lengths / (average or 1.0)), np.float64),
    )


def bm25_index(
    docs: Any,
    *,
    k1: float = 1.2,
    b: float = 0.75,
    tokenize: Tokenizer = tokenize,
    previous: Bm25Index | None = None,
) -> Bm25Index:
    """Return a BM25 index over *docs* (documents or strings), in their order.

    *tokenize* turns a text into its terms, for the documents and the queries alike. Documents
    that *previous* (built with the same *tokenize*) holds with the same id and text are not
    tokenized again, so following a store that changed costs the new documents plus a numpy
    reassembly.

    >>> index = bm25_index(["cats purr softly", "dogs bark", "parse_json reads JSON"])
    >>> [h["document"]["text"] for h in index.search("jsonParse", 2)]
    ['parse_json reads JSON']
    >>> bm25_index(["dogs bark", "birds sing"], previous=index).analyses[0] == index.analyses[1]
    True
    """
    if k1 < 0 or not 0 <= b <= 1:
        raise ValidationError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
    frozen = tuple(docs) if _frozen_documents(docs) else tuple(as_documents(docs))
    known: dict[tuple[str, str], Analysis] = {}
    vocabulary: Mapping[str, int] = {}
    if previous is not None and previous.tokenize is tokenize:
        pairs = zip(previous.documents, previous.analyses, strict=True)
        known = {(d["id"], d["text"]): a for d, a in pairs}
        vocabulary = previous.vocabulary
    growing: dict[str, int] | None = None
    analyses = []
    for d in frozen:
        found = known.get((d["id"], d["text"]))
        if found is None:
            if growing is None:  # copy once, only when a new document may add terms
                growing = dict(vocabulary)
            found = _analyse(d["text"], tokenize, growing)
        analyses.append(found)
    words = vocabulary if growing is None else growing
    return _assemble(frozen, tuple(analyses), words, float(k1), float(b), tokenize)


def _frozen_documents(docs: Any) -> bool:
    return isinstance(docs, tuple | PVector) and all(isinstance(d, PMap) for d in docs)


def bm25_scores(index: Bm25Index, query: str) -> np.ndarray[Any, Any]:
    """Return the BM25 score of every document of *index* for *query* (0: no shared term).

    >>> index = bm25_index(["red apples", "green pears", "red red wine"])
    >>> bm25_scores(index, "red").round(3).tolist()
    [0.499, 0.0, 0.598]
    """
    n = len(index.documents)
    scores = np.zeros(n)
    for term, repeats in Counter(index.tokenize(query)).items():
        t = index.vocabulary.get(term)
        if t is None or t >= len(index.starts) - 1:
            continue
        lo, hi = int(index.starts[t]), int(index.starts[t + 1])
        if lo == hi:
            continue
        idf = math.log(1 + (n - (hi - lo) + 0.5) / (hi - lo + 0.5))
        docs, tf = index.postings[lo:hi], index.counts[lo:hi]
        scores[docs] += repeats * idf * tf * (index.k1 + 1) / (tf + index.norms[docs])
    return scores


def documents_of(source: Any) -> tuple[PMap[str, Any], ...] | None:
    """Return the documents a store holds now (a memory store, a SQLite store, or anything with
    a ``documents`` sequence or a ``matrix()`` method), or None when it does not say."""
    held = getattr(source, "documents", None)
    if isinstance(held, Sequence) and not isinstance(held, str):
        return held if isinstance(held, tuple) else tuple(held)
    if callable(getattr(source, "matrix", None)):
        docs = source.matrix()[0]
        return docs if isinstance(docs, tuple) else tuple(docs)
    return None
