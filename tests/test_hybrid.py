"""Hybrid retrieval: code-aware tokens, BM25, reciprocal rank fusion, and the retrievers that
follow a store as it changes (memory, SQLite, saved and loaded)."""

import copy
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import conduit as c
from conduit.rag.index import hits_from
from conduit.rag.lexical import bm25_index, bm25_scores, stem, tokenize, words
from conduit.rag.retrieve import fuse, fusion_defaults, rrf

EMBED = c.hash_embedder(128)
CODE = [
    {"id": "load", "text": "def load_store(path): read a saved store from one file"},
    {"id": "save", "text": "def save_store(store, path): write the store atomically"},
    {"id": "retry", "text": "class RetryPolicy: back off exponentially between attempts"},
    {"id": "cache", "text": "A cache hit is never billed; the cache keeps answers by key."},
    {"id": "purr", "text": "Cats purr when they are content, and sometimes when they are not."},
]
VOCAB = st.sampled_from(["alpha", "beta", "gamma", "delta", "store", "load", "cache", "x1"])
TEXTS = st.lists(st.lists(VOCAB, min_size=1, max_size=8).map(" ".join), min_size=1, max_size=8)


def ids(hits):
    return [h["document"]["id"] for h in hits]


# -- tokens -------------------------------------------------------------------------------------


def test_tokens_split_code_identifiers_and_punctuation():
    assert words("parseHTTPResponse(raw_bytes)->JSONDecoder.v2 x+y") == (
        *("parse", "http", "response", "raw", "bytes", "json", "decoder", "v2", "x", "y"),
    )
    assert (
        tokenize("load_store")
        == tokenize("loadStore")
        == tokenize("LoadStore")
        == (
            "load",
            "store",
        )
    )
    assert tokenize("The stores, and THE caches!") == ("store", "cache")
    assert words("") == tokenize("  ...  ") == ()


def test_stemming_drops_plural_endings_only():
    assert [stem(w) for w in ("queries", "files", "status", "glass", "is", "bus")] == [
        *("query", "file", "status", "glass", "is", "bus"),
    ]


@given(st.text())
def test_tokenize_is_idempotent_on_its_own_output(text):
    once = tokenize(text)
    assert tokenize(" ".join(once)) == once
    assert words(" ".join(words(text))) == words(text)
    assert all(stem(t) == t for t in once)


# -- BM25 ---------------------------------------------------------------------------------------


def test_bm25_ranks_the_keyword_match_first():
    index = bm25_index(CODE)
    assert ids(index.search("loadStore", 5))[0] == "load"
    assert ids(index.search("how is a cache hit billed?", 5))[0] == "cache"
    assert ids(index.search("RetryPolicy", 5)) == ["retry"]  # only documents sharing a term
    assert index.search("zebra", 5) == c.freeze([])


def test_bm25_prefers_rare_terms_and_short_documents():
    docs = ["common common rare", "common common common", "common filler filler filler filler"]
    index = bm25_index(docs)
    assert index.search("rare common", 3)[0]["document"]["text"] == docs[0]
    short = bm25_index(["cats purr", "cats " + "and more words " * 20])
    assert short.search("cats", 2)[0]["document"]["text"] == "cats purr"


def test_bm25_scores_match_the_okapi_formula():
    docs = ["red apples", "green pears", "red red wine"]
    n, df, k1, b = 3, 2, 1.2, 0.75
    avg = 7 / 3
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))

    def okapi(tf, length):
        return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))

    expected = [okapi(1, 2), 0.0, okapi(2, 3)]
    assert bm25_scores(bm25_index(docs), "red").tolist() == pytest.approx(expected)


@given(TEXTS, st.randoms(use_true_random=False), st.lists(VOCAB, min_size=1, max_size=4))
def test_bm25_scores_do_not_depend_on_insertion_order(texts, rnd, query):
    docs = [c.document(t, f"d{i}") for i, t in enumerate(texts)]
    shuffled = list(docs)
    rnd.shuffle(shuffled)
    q = " ".join(query)
    a = dict(zip([d["id"] for d in docs], bm25_scores(bm25_index(docs), q).tolist(), strict=True))
    b = {d["id"]: s for d, s in zip(shuffled, bm25_scores(bm25_index(shuffled), q), strict=True)}
    assert a == b  # exactly, not approximately


@given(TEXTS, TEXTS, st.integers(0, 8), st.lists(VOCAB, min_size=1, max_size=4))
def test_an_index_built_from_a_previous_one_scores_as_one_built_afresh(old, new, cut, query):
    before = [c.document(t, f"o{i}") for i, t in enumerate(old)]
    after = before[cut:] + [c.document(t, f"n{i}") for i, t in enumerate(new)]
    previous = bm25_index(before)
    following = bm25_index(after, previous=previous)
    fresh = bm25_index(after)
    q = " ".join(query)
    assert bm25_scores(following, q).tolist() == bm25_scores(fresh, q).tolist()
    assert following.search(q, 5) == fresh.search(q, 5)


def test_a_previous_index_spares_tokenizing_what_it_holds():
    seen = []

    def counting(text):
        seen.append(text)
        return tokenize(text)

    first = bm25_index(CODE[:3], tokenize=counting)
    assert len(seen) == 3
    bm25_index(CODE[1:], tokenize=counting, previous=first)  # one dropped, two added
    assert seen[3:] == [CODE[3]["text"], CODE[4]["text"]]
    changed = [{**CODE[0], "text": "def load_store(path): changed"}]
    bm25_index(changed, tokenize=counting, previous=first)  # same id, new text: read again
    assert seen[-1] == "def load_store(path): changed"


def test_bm25_filter_applies_before_the_cut():
    docs = [
        {"id": "a", "text": "store store store", "metadata": {"lang": "en"}},
        {"id": "b", "text": "store", "metadata": {"lang": "de"}},
    ]
    assert ids(bm25_index(docs).search("store", 1, {"lang": "de"})) == ["b"]
    assert ids(c.bm25_retriever(docs, k=1, filter=lambda m: m["lang"] == "de")("store")) == ["b"]


# -- reciprocal rank fusion ---------------------------------------------------------------------

RANKING = st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=8)


@given(
    st.lists(st.tuples(RANKING, st.floats(0, 3)), min_size=1, max_size=4),
    st.randoms(use_true_random=False),
    st.sampled_from([0, 1, 10, 60]),
)
def test_rrf_does_not_depend_on_the_order_of_the_rankings(pairs, rnd, k):
    shuffled = list(pairs)
    rnd.shuffle(shuffled)
    fused = rrf([r for r, _ in pairs], k, [w for _, w in pairs])
    assert fused == rrf([r for r, _ in shuffled], k, [w for _, w in shuffled])


@st.composite
def dominated(draw):
    """Rankings (with weights) in which "top" is above "low" wherever "low" appears."""
    pairs = []
    for i in range(draw(st.integers(1, 4))):
        ranking = draw(st.lists(st.sampled_from("abcdef"), unique=True, max_size=6))
        has_low = i == 0 or draw(st.booleans())
        at = draw(st.integers(0, len(ranking)))
        if has_low:
            ranking.insert(draw(st.integers(at, len(ranking))), "low")
            ranking.insert(at, "top")
        elif draw(st.booleans()):
            ranking.insert(at, "top")
        pairs.append((ranking, draw(st.floats(0.01, 3))))
    return pairs


@given(dominated(), st.sampled_from([0, 1, 10, 60]))
def test_rrf_keeps_an_id_ranked_higher_in_every_ranking_above(pairs, k):
    order = [key for key, _ in rrf([r for r, _ in pairs], k, [w for _, w in pairs])]
    assert order.index("top") < order.index("low")


def test_rrf_scores_are_sums_of_reciprocal_ranks():
    fused = dict(rrf([["a", "b"], ["b", "c"]], k=60, weights=[1.0, 2.0]))
    assert fused == pytest.approx({"a": 1 / 61, "b": 1 / 62 + 2 / 61, "c": 2 / 62})
    assert rrf([["a", "a", "b"]], k=0) == [("a", 1.0), ("b", 1 / 3)]  # repeats: best rank
    assert rrf([]) == []
    with pytest.raises(c.ValidationError):
        rrf([["a"]], weights=[1.0, 1.0])
    with pytest.raises(c.ValidationError):
        rrf([["a"]], weights=[-1.0])


def test_fuse_returns_hits_in_the_design_shape():
    docs = [c.document(t, t) for t in "abc"]
    hits = fuse([hits_from(docs[:2], [0.9, 0.1]), hits_from([docs[2], docs[1]], [3.0, 2.0])])
    assert ids(hits) == ["b", "a", "c"]
    assert [h["rank"] for h in hits] == [0, 1, 2]
    assert all(set(h) == {"document", "score", "rank"} for h in hits)
    assert all(isinstance(h["score"], float) for h in hits)


# -- retrievers ---------------------------------------------------------------------------------


def test_hybrid_retriever_fuses_both_rankings_into_hits():
    store = c.add_documents(c.memory_store(), CODE, EMBED)
    hits = c.hybrid_retriever(EMBED, store, k=3)("how do I load a saved store?")
    assert ids(hits)[0] == "load"
    assert [h["rank"] for h in hits] == [0, 1, 2]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_the_vector_side_fills_in_where_bm25_finds_nothing():
    store = c.add_documents(c.memory_store(), CODE, EMBED)
    typo = "exponentialy"
    assert c.bm25_retriever(store, k=2)(typo) == c.freeze([])  # no shared term
    assert ids(c.hybrid_retriever(EMBED, store, k=2)(typo))[0] == "retry"


def test_hybrid_defaults_depend_on_the_embedder():
    assert fusion_defaults(c.hash_embedder(32)) == (10.0, (0.3, 1.0))
    assert fusion_defaults(c.provider_embedder("mock:any")) == (60.0, (1.0, 1.0))
    store = c.add_documents(c.memory_store(), CODE, EMBED)
    q = "save the store"
    hits = c.hybrid_retriever(EMBED, store, k=4, fetch_k=5)(q)
    dense, lexical = c.search(store, q, 5, embed=EMBED), bm25_index(store.documents).search(q, 5)
    assert hits == fuse([dense, lexical], 10, (0.3, 1.0))[:4]


def test_hybrid_retriever_follows_a_sqlite_store_as_it_changes(tmp_path):
    store = c.add_documents(c.SQLiteStore(tmp_path / "s.db"), CODE[:3], EMBED)
    seen = []

    def counting(text):
        seen.append(text)
        return tokenize(text)

    find = c.hybrid_retriever(EMBED, store, k=1, tokenize=counting)
    assert ids(find("loadStore")) == ["load"]
    other = c.SQLiteStore(tmp_path / "s.db")  # another handle writes
    c.add_documents(other, CODE[3:4], EMBED)
    before = len(seen)
    assert ids(find("is a cache hit billed")) == ["cache"]
    assert seen[before:] == [CODE[3]["text"], "is a cache hit billed"]  # the new document only
    c.delete_documents(other, ["cache"])
    assert "cache" not in ids(c.hybrid_retriever(EMBED, store, k=5)("cache hit billed"))
    assert "cache" not in [d["id"] for d in find.keywords["index"]().documents]
    other.close()
    store.close()


def test_retrievers_work_from_a_saved_store(tmp_path):
    store = c.add_documents(c.memory_store(), CODE, EMBED)
    loaded = c.load_store(c.save_store(store, tmp_path / "index.npz"))
    for q in ("loadStore", "cache billed", "retry attempts"):
        assert c.hybrid_retriever(EMBED, loaded)(q) == c.hybrid_retriever(EMBED, store)(q)
        assert c.bm25_retriever(loaded)(q) == c.bm25_retriever(store)(q)


def test_bm25_retriever_takes_a_store_documents_texts_or_an_index():
    store = c.add_documents(c.memory_store(), CODE, EMBED)
    expected = ids(c.bm25_retriever(store, k=2)("save the store"))
    assert ids(c.bm25_retriever(CODE, k=2)("save the store")) == expected
    assert ids(c.bm25_retriever(bm25_index(CODE), k=2)("save the store")) == expected
    texts = c.bm25_retriever([d["text"] for d in CODE], k=1)("RetryPolicy")
    assert texts[0]["document"]["text"].startswith("class RetryPolicy")


def test_hybrid_retrieval_in_with_retrieval():
    store = c.add_documents(c.memory_store(), CODE, EMBED)
    req = c.request("m", "How is a cache hit billed?", mock="Never [1].")
    ctx = c.mock_call(c.with_retrieval(c.hybrid_retriever(EMBED, store, k=2))(req))
    assert ctx["sources"][0]["document"]["id"] == "cache"


def test_a_store_that_cannot_list_documents_needs_them_passed():
    class Opaque:
        metric = "cosine"

        def __init__(self, inner):
            self.inner = inner

        def search(self, vector, k, flt):
            return self.inner.search(vector, k, flt)

        def __len__(self):
            return len(self.inner)

    opaque = Opaque(c.add_documents(c.memory_store(), CODE, EMBED))
    with pytest.raises(c.ValidationError, match="lexical="):
        c.hybrid_retriever(EMBED, opaque)
    assert ids(c.hybrid_retriever(EMBED, opaque, k=1, lexical=CODE)("loadStore")) == ["load"]


@pytest.mark.parametrize(
    "kwargs",
    [{"k": 0}, {"k": 5, "fetch_k": 4}, {"weights": (-1.0, 1.0)}, {"rrf_k": -1}, {"b": 2.0}],
)
def test_bad_settings_are_refused(kwargs):
    store = c.add_documents(c.memory_store(), CODE, EMBED)
    with pytest.raises(c.ValidationError):
        c.hybrid_retriever(EMBED, store, **kwargs)("q")
    with pytest.raises(c.ValidationError):
        c.bm25_retriever(42)


# -- nothing mutates its input ------------------------------------------------------------------


def test_nothing_mutates_its_input():
    docs = copy.deepcopy(CODE)
    rankings = [["a", "b"], ["b", "c"]]
    weights = [1.0, 0.5]
    rrf(rankings, 60, weights)
    assert rankings == [["a", "b"], ["b", "c"]] and weights == [1.0, 0.5]

    previous = bm25_index(docs[:3])
    snapshot = (previous.documents, previous.analyses, dict(previous.vocabulary))
    arrays = [a.copy() for a in (previous.starts, previous.postings, previous.counts)]
    bm25_index(docs, previous=previous)
    assert (previous.documents, previous.analyses, dict(previous.vocabulary)) == snapshot
    assert all(
        np.array_equal(a, b)
        for a, b in zip(arrays, (previous.starts, previous.postings, previous.counts), strict=True)
    )
    assert not previous.postings.flags.writeable
    assert docs == CODE

    store = c.add_documents(c.memory_store(), docs, EMBED)
    vectors = store.vectors.copy()
    hits = c.hybrid_retriever(EMBED, store, k=3)("store")
    frozen_hits = copy.deepcopy(hits)
    fuse([hits, hits])
    assert hits == frozen_hits
    assert np.array_equal(store.vectors, vectors) and len(store) == len(CODE)


def test_random_corpora_keep_hits_well_formed():
    rnd = random.Random(7)
    vocab = ["store", "load", "cache", "retry", "token", "stream", "agent", "tool"]
    texts = [" ".join(rnd.choices(vocab, k=rnd.randint(1, 9))) for _ in range(40)]
    store = c.add_documents(c.memory_store(), texts, EMBED)
    for q in vocab:
        hits = c.hybrid_retriever(EMBED, store, k=6)(q)
        assert len(hits) == 6 and len(set(ids(hits))) == 6
        assert [h["rank"] for h in hits] == list(range(6))
