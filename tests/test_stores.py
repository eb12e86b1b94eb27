"""The vector-store protocol: one suite over the memory, SQLite and Qdrant (local mode) stores,
SQLite freshness across handles and processes, and laws over the pure scoring."""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PMap

import conduit as c
from conduit.rag.store import MemoryStore, QdrantStore, SQLiteStore, add_documents, search

ROOT = Path(__file__).resolve().parents[1]
EMBED = c.hash_embedder(256)
FACTS = [
    {"id": "fr", "text": "Paris is the capital of France.", "metadata": {"lang": "en", "n": 1}},
    {"id": "it", "text": "Rome is the capital of Italy.", "metadata": {"lang": "en", "n": 2}},
    {"id": "py", "text": "Python lists are mutable sequences.", "metadata": {"lang": "en", "n": 3}},
    {"id": "de", "text": "Berlin ist die Hauptstadt.", "metadata": {"lang": "de", "n": 4.5}},
]
BACKENDS = ["memory", "sqlite", "qdrant"]


@pytest.fixture(params=BACKENDS)
def make(request, tmp_path):
    """A function from a metric to a new, empty store of the backend under test."""
    made = []

    def new(metric="cosine"):
        if request.param == "memory":
            return c.memory_store(metric)
        if request.param == "sqlite":
            made.append(SQLiteStore(tmp_path / f"s{len(made)}.db", metric))
        else:
            pytest.importorskip("qdrant_client")
            made.append(QdrantStore(":memory:", collection=f"c{len(made)}", metric=metric))
        return made[-1]

    yield new
    for store in made:
        if isinstance(store, SQLiteStore):
            store.close()
        else:
            store.client.close()


def ids(hits):
    return [h["document"]["id"] for h in hits]


def brute_force(docs, query, k, keep=lambda m: True):
    """The expected hits, from a plain sort of cosine scores (the oracle for every backend)."""
    m = np.asarray(EMBED([d["text"] for d in docs]))
    q = np.asarray(EMBED([query]))[0]
    scored = [(float(m[i] @ q), d["id"]) for i, d in enumerate(docs) if keep(d["metadata"])]
    return sorted(scored, key=lambda p: -p[0])[:k]


def test_search_agrees_with_a_brute_force_sort(make):
    store = add_documents(make(), FACTS, EMBED)
    assert len(store) == 4
    for query in ("capital of Italy", "mutable sequences", "Hauptstadt"):  # no tied scores
        hits = search(store, query, 3, embed=EMBED)
        want = brute_force(FACTS, query, 3)
        assert [(h["document"]["id"], h["score"]) for h in hits] == [
            (i, pytest.approx(s, abs=1e-5)) for s, i in want
        ]
        assert [h["rank"] for h in hits] == [0, 1, 2]
    back = search(store, "Berlin", 1, embed=EMBED)[0]["document"]
    assert back == FACTS[3] and isinstance(back["metadata"], PMap)


def test_upsert_replaces_by_id_and_delete_ignores_unknown_ids(make):
    store = add_documents(make(), FACTS, EMBED)
    store = add_documents(
        store, {"id": "fr", "text": "The Louvre is a museum.", "metadata": {}}, EMBED
    )
    assert len(store) == 4
    top = search(store, "Louvre museum", 1, embed=EMBED)[0]["document"]
    assert (top["id"], top["text"]) == ("fr", "The Louvre is a museum.")
    assert "Paris" not in {h["document"]["text"] for h in search(store, "Paris", 4, embed=EMBED)}
    store = c.delete_documents(store, ["py", "no-such-id"])
    assert len(store) == 3 and "py" not in ids(search(store, "Python lists", 4, embed=EMBED))
    assert len(c.delete_documents(make(), ["x"])) == 0


def test_an_empty_store_finds_nothing_and_k_must_be_positive(make):
    store = make()
    assert list(search(store, "anything", 3, embed=EMBED)) == []
    with pytest.raises(c.ValidationError, match="k must be at least 1"):
        search(add_documents(store, FACTS, EMBED), "x", 0, embed=EMBED)


def test_filters_apply_before_the_top_k_cut_even_when_the_matches_score_lowest(make):
    # 300 near-duplicates of the query, then the only two documents the filters let through.
    near = [
        {"id": f"n{i}", "text": f"cats purr {i}", "metadata": {"keep": "no"}} for i in range(300)
    ]
    far = [
        {"id": "far1", "text": "dogs purr too", "metadata": {"keep": "yes", "w": 0.5}},
        {"id": "far2", "text": "fish swim", "metadata": {"keep": "yes", "w": 0.5}},
    ]
    store = add_documents(make(), near + far, EMBED)
    want = [i for _, i in brute_force(far, "cats purr", 2)]
    assert want == ["far1", "far2"]
    assert ids(search(store, "cats purr", 2, embed=EMBED, filter={"keep": "yes"})) == want
    assert ids(search(store, "cats purr", 5, embed=EMBED, filter={"w": 0.5})) == want  # a float
    calls = search(store, "cats purr", 2, embed=EMBED, filter=lambda m: m["keep"] == "yes")
    assert ids(calls) == want
    assert ids(search(store, "cats purr", 1, embed=EMBED, filter={"keep": "yes", "w": 1})) == []


def test_dot_metric_keeps_magnitudes(make):
    def embed(texts):
        return np.array([[2.0, 0.0], [0.0, 1.0]], dtype=np.float32)[: len(texts)]

    store = add_documents(make("dot"), ["a", "b"], embed)
    hits = search(store, [1.0, 1.0], 2)
    assert [(h["document"]["text"], h["score"]) for h in hits] == [("a", 2.0), ("b", 1.0)]


def test_a_store_keeps_one_embedder(make):
    store = add_documents(make(), FACTS, EMBED)
    with pytest.raises(c.ValidationError, match="use the same embedder"):
        add_documents(store, ["more"], c.hash_embedder(64))
    with pytest.raises(c.ValidationError, match="search with the store's embedder"):
        search(store, "x", embed=c.hash_embedder(64))
    with pytest.raises(c.ValidationError, match="needs embed="):
        search(store, "x")
    assert len(store) == 4


def test_memory_stores_are_values_and_the_others_change_in_place(make):
    empty = make()
    full = add_documents(empty, FACTS, EMBED)
    if isinstance(empty, MemoryStore):
        assert full is not empty and len(empty) == 0
    else:
        assert full is empty and len(empty) == 4


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_ties_go_to_the_older_document(backend, tmp_path):
    store = c.memory_store() if backend == "memory" else SQLiteStore(tmp_path / "t.db")
    store = add_documents(store, [{"id": i, "text": "same words"} for i in "cab"], EMBED)
    store = add_documents(store, {"id": "c", "text": "same words"}, EMBED)  # replaced: now newest
    assert ids(search(store, "same words", 3, embed=EMBED)) == ["a", "b", "c"]


# --- SQLite: every handle and process sees committed writes -------------------------------


def test_a_second_handle_sees_writes_and_deletes_from_the_first(tmp_path):
    reader = add_documents(SQLiteStore(tmp_path / "shared.db"), FACTS[:2], EMBED)
    assert ids(search(reader, "capital of Italy", 4, embed=EMBED)) == ["it", "fr"]  # matrix read
    writer = SQLiteStore(tmp_path / "shared.db")
    add_documents(writer, FACTS[2:], EMBED)
    assert ids(search(reader, "Python lists", 1, embed=EMBED)) == ["py"]
    c.delete_documents(writer, ["py"])
    add_documents(writer, {"id": "it", "text": "Milan has a cathedral.", "metadata": {}}, EMBED)
    hits = search(reader, "cathedral in Milan", 4, embed=EMBED)
    assert ids(hits)[0] == "it" and "py" not in ids(hits) and len(reader) == 3
    with pytest.raises(c.ValidationError, match="use the same embedder"):
        add_documents(writer, ["x"], c.hash_embedder(8))  # checked against the file, not a cache


def test_an_unchanged_file_is_not_read_again(tmp_path):
    store = add_documents(SQLiteStore(tmp_path / "s.db"), FACTS, EMBED)
    first = store.matrix()
    assert store.matrix() is first  # nothing committed since: the same matrix
    other = SQLiteStore(tmp_path / "s.db")
    add_documents(other, {"id": "new", "text": "new words", "metadata": {}}, EMBED)
    docs, vectors = store.matrix()
    assert [d["id"] for d in docs] == ["fr", "it", "py", "de", "new"] and vectors.shape == (5, 256)
    assert all(a is b for a, b in zip(first[0], docs[:4], strict=False))  # unchanged: reused
    assert not vectors.flags.writeable


WRITER = """
import sys
import conduit as c
store = c.SQLiteStore(sys.argv[1])
c.add_documents(store, [{"id": "sub", "text": "written by a subprocess", "metadata": {"pid": 1}}],
                c.hash_embedder(256))
c.delete_documents(store, ["fr"])
store.close()
"""


def test_an_open_handle_sees_a_subprocess_write(tmp_path):
    path = tmp_path / "shared.db"
    store = add_documents(SQLiteStore(path), FACTS, EMBED)
    assert ids(search(store, "capital of France", 1, embed=EMBED)) == ["fr"]  # matrix read
    subprocess.run([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, check=True, timeout=120)
    hits = search(store, "written by a subprocess", 4, embed=EMBED)
    assert ids(hits)[0] == "sub" and hits[0]["document"]["metadata"] == {"pid": 1}
    assert "fr" not in ids(hits) and len(store) == 4


# --- laws ---------------------------------------------------------------------------------

SMALL = c.hash_embedder(16)
texts = st.lists(st.sampled_from(["a b", "b c", "c d", "a", "d", "a b c"]), max_size=12)


@given(texts, st.integers(1, 5))
def test_batch_size_does_not_change_the_store(words, batch_size):
    docs = [{"id": str(i), "text": w} for i, w in enumerate(words)]
    one = add_documents(c.memory_store(), docs, SMALL)
    many = add_documents(c.memory_store(), docs, SMALL, batch_size=batch_size)
    assert many == one and (many.vectors == one.vectors).all()


@given(
    st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["a b", "b c", "a", "c d"]))),
    st.sampled_from(["a", "b c", "d"]),
    st.integers(1, 8),
)
def test_sqlite_and_memory_agree_on_any_upserts_ties_included(pairs, query, k):
    docs = [{"id": str(i), "text": w} for i, w in pairs]  # repeated ids: later ones replace
    with tempfile.TemporaryDirectory() as folder:
        sql = SQLiteStore(Path(folder) / "law.db")
        for doc in docs:
            add_documents(sql, doc, SMALL)
        mem = add_documents(c.memory_store(), docs, SMALL, batch_size=1)
        got, want = search(sql, query, k, embed=SMALL), search(mem, query, k, embed=SMALL)
        sql.close()
    assert ids(got) == ids(want)
    assert [h["score"] for h in got] == pytest.approx([h["score"] for h in want])


@given(st.permutations(range(6)), st.sampled_from(["a", "b c", "d"]), st.integers(1, 6))
def test_insert_order_changes_only_which_tied_document_comes_first(order, query, k):
    docs = [{"id": str(i), "text": w} for i, w in enumerate(["a b", "b c", "a", "c d", "a b", "d"])]
    base = search(add_documents(c.memory_store(), docs, SMALL), query, k, embed=SMALL)
    moved = search(
        add_documents(c.memory_store(), [docs[i] for i in order], SMALL), query, k, embed=SMALL
    )
    assert [h["score"] for h in moved] == [h["score"] for h in base]
    cut = base[-1]["score"]
    assert {i for i, h in zip(ids(base), base, strict=True) if h["score"] > cut} == {
        i for i, h in zip(ids(moved), moved, strict=True) if h["score"] > cut
    }
