"""Embedders, stores, retrievers and with_retrieval, on real files and a real Qdrant local mode."""

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import conduit as c
from conduit.rag.store import top_k

EMBED = c.hash_embedder(256)
FACTS = [
    {
        "id": "fr",
        "text": "Paris is the capital of France.",
        "metadata": {"lang": "en", "topic": "geo"},
    },
    {
        "id": "it",
        "text": "Rome is the capital of Italy.",
        "metadata": {"lang": "en", "topic": "geo"},
    },
    {
        "id": "py",
        "text": "Python lists are mutable sequences.",
        "metadata": {"lang": "en", "topic": "code"},
    },
    {
        "id": "de",
        "text": "Berlin ist die Hauptstadt von Deutschland.",
        "metadata": {"lang": "de", "topic": "geo"},
    },
]


def test_hash_embedder_is_deterministic_normalised_and_picklable():
    a, b = EMBED(["hello world"]), pickle.loads(pickle.dumps(EMBED))(["hello world"])
    assert (a == b).all() and a.dtype == np.float32 and not a.flags.writeable
    assert np.linalg.norm(EMBED(["some text", "other"]), axis=1) == pytest.approx([1.0, 1.0])
    assert (EMBED([""]) == 0).all()
    with pytest.raises(c.ValidationError, match="list of texts"):
        EMBED("not a list")


@given(arrays(np.float64, st.integers(1, 60), elements=st.floats(-1e6, 1e6)), st.integers(1, 70))
def test_top_k_agrees_with_a_full_sort(scores, k):
    expected = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k]
    assert top_k(scores, k).tolist() == expected


def test_memory_store_is_an_immutable_value_with_upsert_and_delete():
    empty = c.memory_store()
    store = c.add_documents(empty, FACTS, EMBED)
    assert len(empty) == 0 and len(store) == 4
    again = c.add_documents(
        store, [{"id": "fr", "text": "Paris hosts the Louvre.", "metadata": {}}], EMBED
    )
    assert len(again) == 4 and len(store) == 4  # replaced, and the old value is unchanged
    assert next(d for d in again.documents if d["id"] == "fr")["text"] == "Paris hosts the Louvre."
    smaller = c.delete_documents(again, ["py", "nope"])
    assert [d["id"] for d in smaller.documents] == ["it", "de", "fr"]
    with pytest.raises(ValueError):
        store.vectors[0, 0] = 1.0


def test_search_ranks_and_filters_before_the_top_k_cut():
    store = c.add_documents(c.memory_store(), FACTS, EMBED)
    hits = c.search(store, "capital of Italy", 2, embed=EMBED)
    assert hits[0]["document"]["id"] == "it" and [h["rank"] for h in hits] == [0, 1]
    assert hits[0]["score"] >= hits[1]["score"]
    code = c.search(store, "capital of Italy", 1, embed=EMBED, filter={"topic": "code"})
    assert [h["document"]["id"] for h in code] == ["py"]  # the filter ran before the cut
    german = c.search(store, "capital", 3, embed=EMBED, filter=lambda m: m["lang"] == "de")
    assert [h["document"]["id"] for h in german] == ["de"]


def test_dot_metric_keeps_magnitudes():
    store = c.add_documents(
        c.memory_store("dot"),
        ["a", "b"],
        lambda texts: np.array([[2.0, 0.0], [0.0, 1.0]], dtype=np.float32)[: len(texts)],
    )
    hits = c.search(store, [1.0, 1.0], 2)
    assert [(h["document"]["text"], h["score"]) for h in hits] == [("a", 2.0), ("b", 1.0)]


def test_save_and_load_round_trip(tmp_path):
    store = c.add_documents(c.memory_store(), FACTS, EMBED)
    path = c.save_store(store, tmp_path / "index.npz")
    back = c.load_store(path)
    assert back == store and (back.vectors == store.vectors).all()
    assert c.search(back, "Berlin", 1, embed=EMBED)[0]["document"]["id"] == "de"


def test_sqlite_store_persists_and_agrees_with_memory(tmp_path):
    path = tmp_path / "store.db"
    sql = c.add_documents(c.SQLiteStore(path), FACTS, EMBED)
    sql.close()
    reopened = c.SQLiteStore(path)
    mem = c.add_documents(c.memory_store(), FACTS, EMBED)
    for query in ("capital of France", "mutable sequences", "Deutschland"):
        got = [
            (h["document"]["id"], round(h["score"], 5))
            for h in c.search(reopened, query, 3, embed=EMBED)
        ]
        want = [
            (h["document"]["id"], round(h["score"], 5))
            for h in c.search(mem, query, 3, embed=EMBED)
        ]
        assert got == want
    c.delete_documents(reopened, ["fr"])
    assert len(reopened) == 3
    assert (
        c.search(reopened, "x", 4, embed=EMBED, filter={"topic": "geo"})[0]["document"]["id"]
        != "fr"
    )


def test_qdrant_local_mode_agrees_with_memory(tmp_path):
    pytest.importorskip("qdrant_client")
    for location in (":memory:", str(tmp_path / "qdrant")):
        store = c.add_documents(c.QdrantStore(location, collection="facts"), FACTS, EMBED)
        mem = c.add_documents(c.memory_store(), FACTS, EMBED)
        got = c.search(store, "capital of Italy", 2, embed=EMBED)
        want = c.search(mem, "capital of Italy", 2, embed=EMBED)
        assert [h["document"]["id"] for h in got] == [h["document"]["id"] for h in want]
        assert [h["score"] for h in got] == pytest.approx([h["score"] for h in want], abs=1e-5)
        assert got[0]["document"]["metadata"] == {"lang": "en", "topic": "geo"}
        only_de = c.search(store, "capital", 4, embed=EMBED, filter={"lang": "de"})
        assert [h["document"]["id"] for h in only_de] == ["de"]
        c.delete_documents(store, ["de"])
        assert len(store) == 3
        store.client.close()


def test_retriever_threshold_and_mmr():
    docs = ["cats purr softly", "cats purr loudly", "cats purr at night", "dogs bark at strangers"]
    store = c.add_documents(c.memory_store(), docs, EMBED)
    plain = c.retriever(EMBED, store, k=2)("cats purr")
    assert all("cats" in h["document"]["text"] for h in plain)
    varied = c.retriever(EMBED, store, k=2, mmr=True, mmr_weight=0.2)("cats purr")
    assert any("dogs" in h["document"]["text"] for h in varied)
    strict = c.retriever(EMBED, store, k=4, threshold=0.99)("cats purr")
    assert len(strict) == 0
    with pytest.raises(c.ValidationError, match=r"fetch_k=20\) must be at least k=30"):
        c.retriever(EMBED, store, k=30, fetch_k=20)
    assert len(c.retriever(EMBED, store, k=30)("cats")) == 4  # fetch_k grows to k when unset


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda s: c.retriever(EMBED, s, k=0), r"retriever\(k=...\) must be a whole number > 0"),
        (lambda s: c.retriever(EMBED, s, k=float("nan")), r"k=...\) must be a whole number"),
        (lambda s: c.retriever(EMBED, s, mmr_weight=2), r"mmr_weight=...\) must be from 0 to 1"),
        (lambda s: c.bm25_retriever(["a"], k=float("nan")), r"bm25_retriever\(k=...\)"),
        (lambda s: c.hybrid_retriever(EMBED, s, k=-1), r"hybrid_retriever\(k=...\)"),
        (lambda s: c.hybrid_retriever(EMBED, s, k=5, fetch_k=2), r"fetch_k=2\) must be at least"),
    ],
)
def test_retriever_numbers_are_checked_when_built(build, problem):
    with pytest.raises(c.ValidationError, match=problem):
        build(c.memory_store())


def test_with_retrieval_puts_numbered_sources_in_the_prompt_and_on_the_context(tmp_path):
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "france.md").write_text("# France\n\nParis is the capital of France.")
    (tmp_path / "kb" / "italy.md").write_text("# Italy\n\nRome is the capital of Italy.")
    chunks = c.split_markdown(c.load_documents(tmp_path / "kb"), chunk_size=200)
    store = c.add_documents(c.memory_store(), chunks, EMBED)
    script = c.mock_script(lambda r: "Rome [1]")
    req = c.request(
        "m", [c.system("Be brief."), c.user("What is the capital of Italy?")], mock=script
    )
    ctx = c.mock_call(c.with_retrieval(c.retriever(EMBED, store, k=1))(req))
    sent = script.calls[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "system", "user"]
    assert "[1] (" in sent[1]["content"] and "Rome is the capital of Italy." in sent[1]["content"]
    assert sent[1]["content"].split("[1] (")[1].startswith(str(tmp_path / "kb" / "italy.md"))
    assert ctx["sources"][0]["document"]["metadata"]["source"].endswith("italy.md")
    with pytest.raises(c.ValidationError, match="needs a retriever"):
        c.with_retrieval(None)
    with pytest.raises(c.ValidationError, match=r"\{context\} placeholder"):
        c.with_retrieval(c.retriever(EMBED, store), template="no slot")


def test_add_documents_reports_progress_and_checks_dimensions():
    seen = []
    store = c.add_documents(
        c.memory_store(),
        [f"doc {i}" for i in range(5)],
        EMBED,
        batch_size=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(2, 5), (4, 5), (5, 5)]
    with pytest.raises(c.ValidationError, match="use the same embedder"):
        c.add_documents(store, ["more"], c.hash_embedder(64))
    with pytest.raises(c.ValidationError, match="search with the store's embedder"):
        c.search(store, "x", embed=c.hash_embedder(64))


def test_provider_embedder_batches_and_normalises():
    import json

    import httpx
    import respx

    from tests.providers.helpers import raw

    body = json.loads(raw("openai/embeddings_float.json"))
    with respx.mock:
        route = respx.post("https://api.openai.com/v1/embeddings").mock(
            side_effect=lambda r: httpx.Response(
                200,
                json={
                    **body,
                    "data": [
                        {**body["data"][0], "index": i}
                        for i in range(len(json.loads(r.content)["input"]))
                    ],
                },
            )
        )
        embed = c.provider_embedder("openai:text-embedding-ada-002", batch_size=2, api_key="sk-t")
        m = embed(["a", "b", "c"])
    assert m.shape == (3, 1536) and route.call_count == 2
    assert np.linalg.norm(m, axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    assert [json.loads(call.request.content)["input"] for call in route.calls] == [
        ["a", "b"],
        ["c"],
    ]


def text_pdf(pages):
    """A real PDF file, written by hand: one Helvetica text line per page (PDF 1.4 syntax)."""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        None,
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
        content = len(objects)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def test_pdf_files_load_through_the_pdf_extra(tmp_path):
    pytest.importorskip("pypdf")
    (tmp_path / "report.pdf").write_bytes(
        text_pdf(["Quarterly revenue grew.", "Costs fell sharply."])
    )
    (tmp_path / "notes.txt").write_text("plain notes")
    docs = c.load_documents(tmp_path)
    pdf = next(d for d in docs if d["id"] == "report.pdf")
    assert pdf["metadata"]["type"] == "pdf"
    assert "Quarterly revenue grew." in pdf["text"] and "Costs fell sharply." in pdf["text"]
    assert pdf["text"].index("Quarterly") < pdf["text"].index("Costs")  # pages in order
    hits = c.search(
        c.add_documents(c.memory_store(), docs, c.hash_embedder(64)),
        "revenue growth",
        1,
        embed=c.hash_embedder(64),
    )
    assert hits[0]["document"]["id"] == "report.pdf"


def test_sentence_transformer_embedder_says_how_to_install_its_extra():
    import importlib.util

    if importlib.util.find_spec("sentence_transformers") is not None:
        pytest.skip("sentence-transformers is installed here")
    embed = c.sentence_transformer_embedder("all-MiniLM-L6-v2")  # lazy: nothing loads yet
    with pytest.raises(c.ConduitError, match=r"pip install 'conduit-llm\[sentence-transformers\]'"):
        embed(["hello"])


def test_sentence_transformer_embedder_glue_normalises_and_loads_the_model_once(monkeypatch):
    """The adapter against sentence-transformers' documented API (``SentenceTransformer(name)``,
    ``.encode(list, convert_to_numpy=True)``); the library itself needs torch and downloaded
    weights, which this machine cannot fetch, so a stand-in module plays it here."""
    import sys
    import types

    from conduit.rag import embed as embed_module

    loads = []

    class SentenceTransformer:
        def __init__(self, name):
            loads.append(name)

        def encode(self, texts, convert_to_numpy):
            assert convert_to_numpy is True and isinstance(texts, list)
            return np.array([[len(t), 2.0, 0.0] for t in texts], dtype=np.float64)

    monkeypatch.setitem(
        sys.modules,
        "sentence_transformers",
        types.SimpleNamespace(SentenceTransformer=SentenceTransformer),
    )
    embed_module._st_model.cache_clear()
    try:
        embed = c.sentence_transformer_embedder("tiny-model")
        vectors = embed(("ab", "abcd"))
        again = embed(["x"])
    finally:
        embed_module._st_model.cache_clear()
    assert vectors.dtype == np.float32 and vectors.shape == (2, 3)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.allclose(vectors[0], np.array([2, 2, 0]) / np.sqrt(8))
    assert again.shape == (1, 3) and loads == ["tiny-model"]  # one load, reused
