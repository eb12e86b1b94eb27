"""Splitter laws: never over chunk_size, order kept, no glued words, overlap respected, and the
text recoverable from chunks and offsets."""

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

import conduit as c
from conduit.rag.split import (
    split_character,
    split_code,
    split_markdown,
    split_recursive,
    split_sentences,
    split_spans,
)

words = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Z", "Cc"]), min_size=1, max_size=12
)
separators = st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", "! ", "\n# ", "\n\n```\n"])
texts = st.lists(st.tuples(words, separators), max_size=60).map(
    lambda parts: "".join(w + s for w, s in parts)
)
SPLITTERS = [split_recursive, split_character, split_sentences, split_markdown, split_code]


def check(text, chunks, size, overlap):
    spans = [(ch["metadata"]["start"], ch["metadata"]["end"]) for ch in chunks]
    for ch, (a, b) in zip(chunks, spans, strict=True):
        assert ch["text"] == text[a:b]  # a slice of the original: recoverable, nothing glued
        assert 0 < len(ch["text"]) <= size
        assert ch["text"] == ch["text"].strip()
    assert [a for a, _ in spans] == sorted({a for a, _ in spans})  # order kept, no repeats
    for (a1, b1), (a2, b2) in itertools.pairwise(spans):
        assert a2 > a1 and b2 > b1
        assert b1 - a2 <= overlap  # overlap respected
    covered = set()
    for a, b in spans:
        covered.update(range(a, b))
    assert all(text[i].isspace() for i in range(len(text)) if i not in covered)
    assert [ch["metadata"]["index"] for ch in chunks] == list(range(len(chunks)))


@settings(max_examples=150)
@given(texts, st.integers(1, 80), st.data())
def test_recursive_split_laws(text, size, data):
    overlap = data.draw(st.integers(0, size - 1))
    check(text, split_recursive(text, chunk_size=size, chunk_overlap=overlap), size, overlap)


@given(texts, st.integers(2, 60), st.sampled_from(SPLITTERS[1:]))
def test_every_splitter_obeys_the_laws(text, size, splitter):
    check(text, splitter(text, chunk_size=size, chunk_overlap=0), size, 0)


@given(texts, st.integers(5, 60))
def test_words_that_fit_are_never_cut(text, size):
    for ch in split_recursive(text, chunk_size=size, chunk_overlap=0):
        a, b = ch["metadata"]["start"], ch["metadata"]["end"]
        for edge in (a, b):
            inside_word = (
                0 < edge < len(text) and not text[edge - 1].isspace() and not text[edge].isspace()
            )
            if inside_word:  # only a word longer than the chunk size may be cut
                start = len(text[:edge]) - len(text[:edge].split()[-1])
                word = text[start:].split()[0]
                assert len(word) > size


@given(texts, st.integers(1, 50))
def test_token_length_function_is_respected(text, size):
    count = lambda s: len(s.split())  # noqa: E731  (a "token" is a word here)
    for ch in split_recursive(text, chunk_size=size, chunk_overlap=0, length=count):
        assert count(ch["text"]) <= size


def test_overlap_repeats_the_end_of_the_previous_chunk():
    text = "one two three four five six seven eight nine ten"
    chunks = split_recursive(text, chunk_size=20, chunk_overlap=8)
    assert [ch["text"] for ch in chunks] == [
        "one two three four",
        "four five six seven",
        "seven eight nine ten",
    ]


def test_chunk_metadata_points_at_the_source():
    doc = c.freeze(
        {"id": "guide.md", "text": "# A\n\nalpha\n\n# B\n\nbeta", "metadata": {"lang": "en"}}
    )
    chunks = split_markdown([doc], chunk_size=10)
    assert [ch["id"] for ch in chunks] == ["guide.md#0", "guide.md#1"]
    assert all(
        ch["metadata"]["parent"] == "guide.md" and ch["metadata"]["lang"] == "en" for ch in chunks
    )
    assert [list(ch["metadata"]["headings"]) for ch in chunks] == [["A"], ["B"]]


def test_code_splits_at_definitions():
    code = "import os\n\n\ndef a():\n    return 1\n\n\ndef b():\n    return 2\n"
    assert [ch["text"] for ch in split_code(code, chunk_size=30)] == [
        "import os",
        "def a():\n    return 1",
        "def b():\n    return 2",
    ]


def test_bad_sizes_are_clear_errors():
    import pytest

    with pytest.raises(c.ValidationError, match="chunk_overlap must be at least 0 and below"):
        split_spans("x", chunk_size=10, chunk_overlap=10)
    with pytest.raises(c.ValidationError, match="chunk_size must be at least 1"):
        split_spans("x", chunk_size=0)


def test_load_documents_from_a_folder(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Title\n\nSome *markdown*.")
    (tmp_path / "docs" / "b.py").write_text("def f():\n    return 1\n")
    (tmp_path / "docs" / "c.html").write_text(
        "<html><head><title>Page</title><script>bad()</script></head><body><h1>Hi</h1><p>there</p></body></html>"
    )
    (tmp_path / "docs" / "d.rst").write_text("Heading\n=======\n\nText.")
    (tmp_path / "docs" / "skip.bin").write_bytes(b"\x00\x01")
    docs = c.load_documents(tmp_path / "docs")
    assert [d["id"] for d in docs] == ["a.md", "b.py", "c.html", "d.rst"]
    html = docs[2]
    assert html["text"] == "Hi\n\nthere" and html["metadata"]["title"] == "Page"
    assert docs[1]["metadata"]["type"] == "python"
    assert docs[0]["metadata"]["source"].endswith("a.md")


def test_load_documents_errors(tmp_path):
    import pytest

    with pytest.raises(c.ValidationError, match="no such file or folder"):
        c.load_documents(tmp_path / "missing")
    (tmp_path / "x.bin").write_bytes(b"1")
    with pytest.raises(c.ValidationError, match="unknown file type"):
        c.load_documents(tmp_path / "x.bin")
