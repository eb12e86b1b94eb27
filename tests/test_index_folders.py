"""Reading real folders: .gitignore, default skips, binary files, encodings, unreadable files;
sources as path:line and code passages that keep their whitespace."""

import io
import json
import sys
from pathlib import Path

import pytest

import conduit as c
from conduit import cli
from conduit.rag.documents import PDF_EXTRA, Skipped, decode_text, load_folder, skip_summary
from tests.test_cli import run
from tests.test_rag import text_pdf

LATIN = "Crème brûlée, naïve façade: the café's menu is in Latin-1.\n"


def tree(root, files):
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body)
    return root


def ids(found):
    return [d["id"] for d in found.documents]


def reasons(found):
    return {Path(s.path).name: s.reason for s in found.skipped}


def test_gitignore_root_nested_and_negated(tmp_path):
    tree(
        tmp_path,
        {
            ".gitignore": "drafts/\n*.tmp.md\n",
            "a.md": "a",
            "drafts/x.md": "x",
            "notes.tmp.md": "t",
            "sub/.gitignore": "*.txt\n!important.txt\n",
            "sub/b.txt": "b",
            "sub/important.txt": "i",
            "sub/c.md": "c",
            "other/b.txt": "not under sub's rules",
        },
    )
    found = load_folder(tmp_path)
    assert ids(found) == ["a.md", "other/b.txt", "sub/c.md", "sub/important.txt"]
    assert reasons(found) == {
        "drafts": "in .gitignore",
        "notes.tmp.md": "in .gitignore",
        "b.txt": "in .gitignore",
    }
    assert ids(load_folder(tmp_path, ignore=False)) == [
        "a.md",
        "drafts/x.md",
        "notes.tmp.md",
        "other/b.txt",
        "sub/b.txt",
        "sub/c.md",
        "sub/important.txt",
    ]


def test_the_enclosing_repositorys_gitignore_applies_to_a_subfolder(tmp_path):
    tree(
        tmp_path,
        {
            ".git/HEAD": "ref: refs/heads/main\n",
            ".git/info/exclude": "*.local.md\n",
            ".gitignore": "docs/private/\n",
            "docs/guide.md": "g",
            "docs/private/plan.md": "p",
            "docs/me.local.md": "m",
        },
    )
    found = load_folder(tmp_path / "docs")
    assert ids(found) == ["guide.md"]
    assert reasons(found) == {"private": "in .gitignore", "me.local.md": "in .gitignore"}


def test_default_skips_and_the_options_that_turn_them_off(tmp_path):
    tree(
        tmp_path,
        {
            "README.md": "read me",
            ".venv/pyvenv.cfg": "home = /usr/bin\n",
            ".venv/lib/site.py": "x = 1\n",
            "env/pyvenv.cfg": "home = /usr/bin\n",
            "env/lib/pip.py": "y = 2\n",
            "node_modules/left-pad/README.md": "pad",
            "pkg/__pycache__/mod.py": "cached",
            "build/lib/mod.py": "built",
            "dist/notes.txt": "dist",
            "site/index.html": "<p>site</p>",
            "target/out.txt": "rust",
            "conduit_llm.egg-info/PKG-INFO.txt": "info",
            ".git/description.txt": "git",
            ".tox/log.txt": "tox",
            ".notes.md": "hidden file",
            "pkg/mod.py": "def f():\n    return 1\n",
        },
    )
    found = load_folder(tmp_path)
    assert ids(found) == ["README.md", "pkg/mod.py"]
    assert reasons(found) == {
        ".venv": "virtual environment",
        "env": "virtual environment",
        "node_modules": "dependencies",
        "__pycache__": "cache",
        "build": "build output",
        "dist": "build output",
        "site": "build output",
        "target": "build output",
        "conduit_llm.egg-info": "build output",
        ".git": "hidden",
        ".tox": "hidden",
        ".notes.md": "hidden",
    }
    assert all(s.folder for s in found.skipped if s.path != str(tmp_path / ".notes.md"))
    summary = skip_summary(found.skipped)
    assert summary.startswith("skipped 11 folders and 1 file: 3 hidden (")
    assert "2 virtual environment (" in summary and "5 build output (" in summary
    assert len(ids(load_folder(tmp_path, hidden=True))) == 5  # and the three hidden ones
    everything = ids(load_folder(tmp_path, ignore=False, hidden=True))
    assert ".venv/lib/site.py" in everything and "node_modules/left-pad/README.md" in everything
    assert len(everything) == 14


def test_binary_files_are_skipped_whatever_their_suffix(tmp_path):
    tree(tmp_path, {"blob.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "ok.md": "fine"})
    found = load_folder(tmp_path)
    assert ids(found) == ["ok.md"]
    assert found.skipped == (
        Skipped(path=str(tmp_path / "blob.txt"), reason="binary", detail="binary data, not text"),
    )
    with pytest.warns(UserWarning, match=r"load_documents skipped .*blob.txt: binary data"):
        assert [d["id"] for d in c.load_documents(tmp_path)] == ["ok.md"]
    with pytest.raises(c.ValidationError, match="binary data"):
        c.load_documents(tmp_path / "blob.txt")


def test_encodings_are_detected(tmp_path):
    tree(
        tmp_path,
        {
            "latin.txt": LATIN.encode("latin-1"),
            "cp1252.md": "\u201cSmart quotes\u201d \u2013 and a dash.\n".encode("cp1252"),
            "utf16.txt": "UTF-16 with a byte-order mark: ü\n".encode("utf-16"),
            "bom.md": "\ufeffA UTF-8 byte-order mark.\n".encode(),
            "russian.txt": "Привет, как дела? Это обычный текст на русском языке.\n".encode(
                "cp1251"
            ),
        },
    )
    texts = {d["id"]: d["text"] for d in load_folder(tmp_path).documents}
    assert texts["latin.txt"] == LATIN and "\ufffd" not in "".join(texts.values())
    assert texts["cp1252.md"] == "\u201cSmart quotes\u201d \u2013 and a dash.\n"
    assert texts["utf16.txt"] == "UTF-16 with a byte-order mark: ü\n"
    assert texts["bom.md"] == "A UTF-8 byte-order mark.\n"
    assert texts["russian.txt"].startswith("Привет, как дела?")


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("crème", "latin-1"),
        ("über", "latin-1"),
        ("Straße", "latin-1"),
        ("Ça va? Très bien, merci.", "latin-1"),
        ("Das Wetter ist heute schön und die Vögel singen.", "latin-1"),
        ("señor, ¿qué tal?", "latin-1"),
        ("C\u2019est l\u2019été \u2013 déjà!", "cp1252"),
        ("Привет мир, как дела?", "cp1251"),
        ("Dzień dobry, jak się masz? Zażółć gęślą jaźń.", "cp1250"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy.", "cp1250"),
        ("Καλημέρα κόσμε", "cp1253"),
        ("日本語のテキストです。これはテストです。", "shift_jis"),
        ("中文文本测试\uff0c这是一个测试。", "gb18030"),
    ],
)
def test_short_texts_in_8_bit_code_pages_read_as_written(text, encoding):
    """Short Western text fits many code pages equally; the one that reads as words wins, and
    text of other languages keeps the code page detected for it."""
    assert decode_text(text.encode(encoding)) == text


def test_decode_text_is_lazy_about_charset_normalizer():
    import subprocess

    code = (
        "import sys, conduit; from conduit.rag.documents import decode_text; decode_text(b'ok'); "
        "print(sorted(m for m in ('pathspec', 'charset_normalizer') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert decode_text(b"\xff\xfe\x00") is None  # a byte-order mark, then no text: binary


def test_a_pdf_without_the_extra_is_skipped_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pypdf", None)  # `import pypdf` now fails
    tree(tmp_path, {"report.pdf": b"%PDF-1.4\n%%EOF\n", "notes.md": "notes"})
    found = load_folder(tmp_path)
    assert ids(found) == ["notes.md"]
    assert found.skipped == (
        Skipped(path=str(tmp_path / "report.pdf"), reason="unreadable", detail=PDF_EXTRA),
    )
    with pytest.warns(UserWarning) as caught:
        c.load_documents(tmp_path)
    assert len(caught) == 1 and "report.pdf: needs the pdf extra" in str(caught[0].message)
    with pytest.raises(c.ConduitError, match=r"report.pdf needs the pdf extra"):
        c.load_documents(tmp_path / "report.pdf")  # named on its own: an error


def test_a_damaged_pdf_is_skipped_not_fatal(tmp_path):
    pytest.importorskip("pypdf")
    tree(tmp_path, {"broken.pdf": b"%PDF-1.4\nnot really a pdf", "good.pdf": text_pdf(["Hi."])})
    found = load_folder(tmp_path)
    assert ids(found) == ["good.pdf"]
    assert reasons(found) == {"broken.pdf": "unreadable"}


def test_a_file_that_cannot_be_read_is_skipped(tmp_path, monkeypatch):
    tree(tmp_path, {"locked.md": "secret", "open.md": "open"})
    real = Path.read_bytes

    def read_bytes(self):  # root reads any file, so permissions are simulated
        if self.name == "locked.md":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    found = load_folder(tmp_path)
    assert ids(found) == ["open.md"]
    assert found.skipped == (
        Skipped(path=str(tmp_path / "locked.md"), reason="unreadable", detail="Permission denied"),
    )


# -- the command ----------------------------------------------------------------------------------


@pytest.fixture
def messy(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pypdf", None)
    return tree(
        tmp_path / "project",
        {
            "guide.md": "# Guide\n\nRetries wait with backoff.\n",
            "latin.txt": LATIN.encode("latin-1"),
            "blob.txt": b"\x00\x01\x02binary",
            "report.pdf": b"%PDF-1.4\n%%EOF\n",
            ".gitignore": "secret.md\n",
            "secret.md": "do not index",
            ".venv/pyvenv.cfg": "home = /usr/bin\n",
            ".venv/lib/retry.py": "def retry(): ...\n",
            "node_modules/x/README.md": "vendored",
            ".git/HEAD": "ref: refs/heads/main\n",
        },
    )


def test_index_reports_what_it_skipped_and_goes_on(capsys, messy, tmp_path):
    store = tmp_path / "idx.npz"
    status, out, err = run(capsys, "index", str(messy), "-o", str(store))
    assert status == 0 and "(2 chunks from 2 files)" in out
    lines = err.splitlines()
    assert f"note: skipped {messy / 'blob.txt'}: binary data, not text" in lines
    assert f"warning: skipped {messy / 'report.pdf'}: {PDF_EXTRA}" in lines
    summary = next(line for line in lines if line.startswith("skipped "))
    assert summary.startswith("skipped 3 folders and 3 files: 1 hidden (")
    assert "1 virtual environment (" in summary and "1 dependencies (" in summary
    assert "1 in .gitignore (" in summary and "1 binary (" in summary
    assert "--include-hidden" in summary and "--no-ignore" in summary
    parents = {d["metadata"]["parent"] for d in c.load_store(store).documents}
    assert parents == {"guide.md", "latin.txt"}
    texts = "".join(d["text"] for d in c.load_store(store).documents)
    assert "Crème brûlée" in texts and "\ufffd" not in texts


def test_index_options_read_what_is_skipped_by_default(capsys, messy, tmp_path):
    store = tmp_path / "idx.npz"
    status, *_ = run(capsys, "index", str(messy), "-o", str(store), "--no-ignore")
    parents = {d["metadata"]["parent"] for d in c.load_store(store).documents}
    assert status == 0 and parents == {
        "guide.md",
        "latin.txt",
        "secret.md",
        "node_modules/x/README.md",
    }
    status, *_ = run(
        capsys, "index", str(messy), "-o", str(store), "--no-ignore", "--include-hidden"
    )
    parents = {d["metadata"]["parent"] for d in c.load_store(store).documents}
    assert status == 0 and ".venv/lib/retry.py" in parents


def test_a_bad_output_path_fails_before_any_work(capsys, notes_folder, tmp_path):
    for bad, says in [
        (tmp_path / "no" / "such" / "idx.npz", "does not exist"),
        (tmp_path, "is a folder"),
    ]:
        status, _, err = run(capsys, "index", str(notes_folder), "-o", str(bad))
        assert status == 2 and says in err and "indexing" not in err
        assert err.startswith("error: ") and len(err.splitlines()) == 1


@pytest.fixture
def notes_folder(tmp_path):
    return tree(tmp_path / "notes", {"a.md": "alpha"})


# -- path:line and whitespace ---------------------------------------------------------------------

CODE = '''"""Retries."""


def backoff(attempt):
    """Seconds to wait before *attempt*."""
    if attempt > 3:
        return 8.0
    return 0.5 * 2**attempt
'''


def test_chunks_record_the_line_they_start_on():
    text = "# A\n\nalpha\n\n# B\n\nbeta beta beta\n\ngamma"
    for chunks in (
        c.split_recursive(text, chunk_size=12, chunk_overlap=0),
        c.split_markdown(text, chunk_size=12),
        c.split_code(text, chunk_size=12),
    ):
        for ch in chunks:
            meta = ch["metadata"]
            assert meta["line"] == text.count("\n", 0, meta["start"]) + 1
            assert text.splitlines()[meta["line"] - 1].strip().startswith(ch["text"].split()[0])


def test_ask_prints_path_line_and_keeps_the_whitespace_of_code(capsys, tmp_path):
    tree(
        tmp_path / "src",
        {
            "retry.py": CODE,
            "guide.md": "# Guide\n\nIntro.\n\nThe   backoff\n   doubles   each time.\n",
        },
    )
    store = tmp_path / "idx.npz"
    run(capsys, "index", str(tmp_path / "src"), "-o", str(store), "--chunk-size", "120")
    status, out, _ = run(capsys, "ask", "backoff", "attempt", "wait", "-s", str(store), "-k", "4")
    assert status == 0
    assert f"{tmp_path / 'src' / 'retry.py'}:4 (score" in out
    assert (
        '\n    def backoff(attempt):\n        """Seconds' in out
        and "\n        if attempt > 3:\n" in out
    )
    assert f"{tmp_path / 'src' / 'guide.md'}:1 (score" in out
    assert "The backoff doubles each time." in out  # prose: one run of words


def test_sources_print_as_path_line():
    def hit(**meta):
        return {"document": {"id": "d#0", "text": "x", "metadata": meta}, "score": 1.0}

    assert cli._source(hit(source="a.md", start=10, line=3)) == "a.md:3"
    assert cli._source(hit(source="a.md", start=10)) == "a.md @10"  # an index from before
    assert cli._source(hit(source="p.pdf", type="pdf", start=10, line=3)) == "p.pdf"


def test_ask_with_a_model_lists_sources_as_path_line(capsys, tmp_path, monkeypatch):
    import httpx
    import respx

    from tests.providers.helpers import raw

    tree(tmp_path / "src", {"guide.md": "# Guide\n\nIntro.\n\nRetries wait with backoff.\n"})
    store = tmp_path / "idx.npz"
    run(
        capsys,
        "index",
        str(tmp_path / "src"),
        "-o",
        str(store),
        "--chunk-size",
        "30",
        "--overlap",
        "0",
    )
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with respx.mock:
        respx.post("https://api.openai.com/v1/chat/completions").mock(
            return_value=httpx.Response(
                200,
                content=raw("openai/stream_text.sse"),
                headers={"content-type": "text/event-stream"},
            )
        )
        status, out, _ = run(capsys, "ask", "backoff", "-s", str(store), "-k", "1")
    assert status == 0 and f"Sources:\n[1] {tmp_path / 'src' / 'guide.md'}:5\n" in out


# -- the progress line ----------------------------------------------------------------------------


def test_the_time_left_settles_after_the_first_batch():
    now = [0.0]
    err = io.StringIO()
    chunks = [{"text": "x" * 100}] * 10
    eta = cli._Eta(chunks, err, clock=lambda: now[0])
    now[0] = 30.0  # the first batch: a slow warm-up
    eta(1, 10)
    estimates = []
    for done in range(2, 10):
        now[0] += 1.0  # then one chunk a second
        eta(done, 10)
        estimates.append(round(eta.left, 6))
    assert estimates == [10 - d for d in range(2, 10)]  # exact from the second batch on
    now[0] += 1.0
    eta(10, 10)
    out = err.getvalue().splitlines()
    assert out[0].endswith("1/10 chunks, estimating") and out[1].endswith("~8s left")
    assert out[-1].endswith("10/10 chunks, done in 39s")


def test_index_writes_its_settings(capsys, notes_folder, tmp_path):
    store = tmp_path / "idx.npz"
    status, _, err = run(capsys, "index", str(notes_folder), "-o", str(store))
    assert status == 0 and "1/1 chunks, done in" in err and "skipped" not in err
    assert json.loads((tmp_path / "idx.npz.json").read_text())["files"] == 1
