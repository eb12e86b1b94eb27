"""Files a user relies on: atomic saves that survive a failure or a SIGKILL, damaged files that
are ConduitErrors naming the file and the remedy, symlinks that stay in their folder, and batch
checkpoints that one run holds at a time, retry failures and never hold a key."""

import json
import os
import pathlib
import pickle
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from toolz import pipe

import conduit as c
from conduit._files import append_line, atomic_write, open_append, read_jsonl, write_atomic
from conduit.batching import load_checkpoint
from conduit.rag.memory_store import MemoryStore

ROOT = pathlib.Path(__file__).resolve().parents[2]
embed16 = c.hash_embedder(16)


def small_store():
    return c.add_documents(c.memory_store(), ["cats purr", "dogs bark"], c.hash_embedder(16))


def big_store(rows, dim):
    docs = tuple(c.document(f"document {i}") for i in range(rows))
    return MemoryStore(documents=docs, vectors=np.ones((rows, dim), np.float32))


def run_python(code, *args, timeout=60, **kwargs):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        **kwargs,
    )


# -- atomic writes -------------------------------------------------------------------------------


def test_a_save_that_fails_midway_leaves_the_previous_store(tmp_path):
    """A real mid-write failure (the file size limit: EFBIG after 1 MiB) in a real process."""
    path = tmp_path / "index.npz"
    c.save_store(small_store(), path)
    failed = run_python(
        """
        import resource, signal, sys
        import numpy as np
        import conduit as c
        from conduit.rag.memory_store import MemoryStore
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails: EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        big = MemoryStore(documents=tuple(c.document(f"d{i}") for i in range(100)),
                          vectors=np.ones((100, 8192), np.float32))
        try:
            c.save_store(big, sys.argv[1])
        except OSError as exc:
            print("failed", exc.errno)
        """,
        path,
    )
    assert failed.stdout.startswith("failed"), failed.stderr
    assert c.load_store(path) == small_store()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.npz"]  # no temporary left


KILLED_SAVE = """
    import sys
    import numpy as np
    import conduit as c
    from conduit.rag.memory_store import MemoryStore
    big = MemoryStore(documents=tuple(c.document(f"d{i}") for i in range(2000)),
                      vectors=np.ones((2000, 8192), np.float32))  # 65 MB
    print("saving", flush=True)
    c.save_store(big, sys.argv[1])
    print("saved", flush=True)
"""


def test_sigkill_in_the_middle_of_a_large_save_leaves_a_store_that_loads(tmp_path):
    path = tmp_path / "index.npz"
    c.save_store(small_store(), path)
    size = path.stat().st_size
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_SAVE), str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout.readline().strip() == "saving"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the write has begun: a new file, or the old one cut
        if len(list(tmp_path.iterdir())) > 1 or path.stat().st_size != size:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    survivor = c.load_store(path)  # the old store, or (killed after the rename) the new one
    assert survivor == small_store() or len(survivor) == 2000
    c.save_store(small_store(), path)  # a later save is not blocked by the killed one's debris
    assert c.load_store(path) == small_store()


def test_atomic_write_keeps_the_old_file_its_mode_and_a_symlink_to_it(tmp_path):
    real = tmp_path / "real.json"
    write_atomic(real, "old")
    real.chmod(0o600)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with pytest.raises(RuntimeError), atomic_write(link) as out:
        out.write(b"half of the new")
        raise RuntimeError("disk on fire")
    assert real.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["link.json", "real.json"]
    write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    assert real.stat().st_mode & 0o777 == 0o600


def test_a_failed_conversation_save_leaves_the_previous_conversation(tmp_path, monkeypatch):
    path = c.save_conversation([c.user("first")], tmp_path / "chat.json")
    real_fsync = os.fsync

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        c.save_conversation([c.user("second")], path)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert c.load_conversation(path)["messages"][0]["content"] == "first"
    assert os.listdir(tmp_path) == ["chat.json"]


# -- damaged files -------------------------------------------------------------------------------


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pickled array", "pickle file"])
def test_a_damaged_store_file_is_a_conduit_error_naming_it(tmp_path, damage):
    path, marker = tmp_path / "index.npz", tmp_path / "pwned"
    c.save_store(small_store(), path)
    if damage == "garbage":
        path.write_bytes(b"PK\x03\x04" + os.urandom(4000))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "pickled array":
        with path.open("wb") as f:
            meta = np.frombuffer(b'{"metric": "cosine", "documents": []}', np.uint8)
            np.savez(f, vectors=np.array([Evil(marker)], dtype=object), meta=meta)
    else:
        path.write_bytes(pickle.dumps(Evil(marker)))
    remedy = "pass the file save_store" if damage == "pickle file" else "re-run `conduit index`"
    with pytest.raises(c.ConduitError, match=re.escape(remedy)) as err:
        c.load_store(path)
    assert str(path) in str(err.value) and err.value.data["path"] == str(path)
    assert not marker.exists()  # nothing was unpickled
    if damage == "pickled array":
        assert "pickled objects, which Conduit never loads" in str(err.value)


def test_a_file_that_is_no_store_at_all_is_not_called_damaged(tmp_path):
    """A README passed as the store is the wrong file: never "delete it", never "pickled"."""
    readme = tmp_path / "README.md"
    readme.write_text("# My project\n")
    with pytest.raises(c.ConduitError, match="is not a Conduit store") as err:
        c.load_store(readme)
    assert "delete" not in str(err.value) and "pickle" not in str(err.value)
    assert "conduit-index.npz" in str(err.value) and readme.read_text() == "# My project\n"
    with pytest.raises(c.ConduitError, match="is a folder, not a store"):
        c.load_store(tmp_path)


def test_a_missing_store_says_how_to_build_one(tmp_path):
    with pytest.raises(c.ConduitError, match=r"no store at .*conduit index"):
        c.load_store(tmp_path / "none.npz")


def test_a_file_that_is_not_a_sqlite_store_is_a_conduit_error(tmp_path):
    path = tmp_path / "store.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(c.ConduitError, match="restore it from a backup") as err:
        c.SQLiteStore(path)
    assert str(path) in str(err.value)


def test_a_damaged_sqlite_store_is_a_conduit_error(tmp_path):
    path = tmp_path / "store.db"
    store = c.add_documents(c.SQLiteStore(path), [f"doc {i} " * 50 for i in range(400)], embed16)
    store.close()
    raw = bytearray(path.read_bytes())
    raw[4096 * 3 : 4096 * 6] = os.urandom(4096 * 3)  # pages in the middle of the table
    path.write_bytes(bytes(raw))
    with pytest.raises(c.ConduitError, match="restore it from a backup") as err:
        reopened = c.SQLiteStore(path)
        c.search(reopened, "doc", 3, embed=embed16)
    assert str(path) in str(err.value)


def test_a_row_conduit_did_not_write_is_a_conduit_error(tmp_path):
    path = tmp_path / "store.db"
    c.add_documents(c.SQLiteStore(path), ["cats purr"], embed16).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO conduit_docs VALUES ('x', 'y', '{not json', x'0000')")
    with pytest.raises(c.ConduitError, match=r"row Conduit did not write.*restore it") as err:
        c.search(c.SQLiteStore(path), "cats", 1, embed=embed16)
    assert str(path) in str(err.value)


def test_damaged_graph_checkpoints_are_conduit_errors(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(8192))
    with pytest.raises(
        c.ConduitError, match=r"garbage\.db is not a readable checkpoint file.*backup"
    ):
        c.SQLiteCheckpoints(garbage)
    path = tmp_path / "runs.db"
    cp = c.SQLiteCheckpoints(path)
    cp.put({"thread": "t", "step": 1, "state": {}, "status": "running"})
    with sqlite3.connect(path) as db:
        db.execute("UPDATE checkpoints SET body = '{torn'")
    with pytest.raises(c.ConduitError, match=r"runs\.db holds a checkpoint that is not JSON"):
        cp.latest("t")
    with pytest.raises(c.ConduitError, match="delete it"):
        cp.history("t")


def test_a_damaged_batch_checkpoint_line_is_a_conduit_error(tmp_path):
    path = tmp_path / "run.jsonl"
    c.batch(c.mock_call, [c.request("m", f"q{i}") for i in range(3)], checkpoint=path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "\x00\x00garbage", *lines[1:]]) + "\n")
    with pytest.raises(c.ConduitError, match=r"run\.jsonl:2 is not a batch checkpoint line"):
        c.batch(c.mock_call, [c.request("m", "q0")], checkpoint=path)
    path.write_text('[1, 2]\n{"index": 0}\n')
    with pytest.raises(c.ConduitError, match=r"run\.jsonl:1 .*delete that line"):
        load_checkpoint(path)


def test_a_damaged_cassette_is_a_conduit_error_and_a_torn_last_line_is_not(tmp_path):
    cassette = tmp_path / "chat.jsonl"
    req = c.request("m", "hi", mock="recorded")
    pipe(req, c.with_replay(cassette), c.mock_call)
    whole = cassette.read_bytes()
    cassette.write_bytes(whole + b'{"key": "torn mid-wri')  # a kill mid-append
    again = c.request("m", "hi", mock=c.ConnectionError("offline"))
    assert c.content(pipe(again, c.with_replay(cassette, mode="replay"), c.mock_call)) == (
        "recorded"
    )
    other = c.request("m", "second", mock="second answer")
    pipe(other, c.with_replay(cassette), c.mock_call)  # the torn line is cut off first
    assert [json.loads(x)["response"]["content"] for x in cassette.read_text().splitlines()] == [
        "recorded",
        "second answer",
    ]
    cassette.write_bytes(b"\xff\xfe not json\n" + whole)
    with pytest.raises(c.ConduitError, match=r"chat\.jsonl:1 is not a JSON line.*delete"):
        pipe(req, c.with_replay(cassette), c.mock_call)
    cassette.write_bytes(b"[]\n")
    with pytest.raises(c.ConduitError, match=r"chat\.jsonl:1 is not a recorded exchange"):
        pipe(req, c.with_replay(cassette), c.mock_call)


def test_a_hand_edited_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}')
    assert read_jsonl(path, "x", "y") == [(1, {"a": 1}), (2, {"a": 2})]
    with open_append(path) as f:  # the repair adds the newline rather than cutting a whole line
        append_line(f, '{"a": 3}')
    assert path.read_text() == '{"a": 1}\n{"a": 2}\n{"a": 3}\n'


@pytest.mark.parametrize("body", [b"\xff\xfe\x00garbage", b'{"messages": [{"role": "robot"}]}'])
def test_a_damaged_conversation_names_its_file_and_the_remedy(tmp_path, body):
    path = tmp_path / "chat.json"
    path.write_bytes(body)
    with pytest.raises(c.ValidationError, match="restore it from a backup") as err:
        c.load_conversation(path)
    assert str(err.value).startswith(f"{path}: ") and err.value.data["path"] == str(path)


# -- the CLI after a damaged index ----------------------------------------------------------------


def test_ask_and_index_after_a_damaged_store_print_one_line_not_a_traceback(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "retry.md").write_text("# Retries\n\nRetries back off exponentially.")
    store = tmp_path / "index.npz"
    cli = [sys.executable, "-m", "conduit"]
    built = subprocess.run([*cli, "index", folder, "-o", store], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    store.write_bytes(store.read_bytes()[:100])  # a copy cut short
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.pop("CONDUIT_MODEL", None)
    ask = subprocess.run(
        [*cli, "ask", "how do retries work?", "-s", store], capture_output=True, text=True, env=env
    )
    assert ask.returncode == 1 and "Traceback" not in ask.stderr
    assert ask.stderr.count("\n") == 1 and ask.stderr.startswith(f"error: {store} ")
    assert "re-run `conduit index`" in ask.stderr
    rebuilt = subprocess.run([*cli, "index", folder, "-o", store], capture_output=True, text=True)
    assert rebuilt.returncode == 0 and "Traceback" not in rebuilt.stderr
    assert f"note: {store} is damaged or not a Conduit store; rebuilding it" in rebuilt.stderr
    assert len(c.load_store(store)) == 1
    (tmp_path / "index.npz.json").write_text("{half")
    ask = subprocess.run([*cli, "ask", "retries?", "-s", store], capture_output=True, text=True)
    assert ask.returncode == 1 and ask.stderr.count("\n") == 1 and "index.npz.json" in ask.stderr


# -- symlinks ------------------------------------------------------------------------------------


@pytest.fixture
def linked(tmp_path):
    """docs/ with a key linked in from outside, a folder linked from outside, links that stay
    inside, and loops."""
    docs, secret = tmp_path / "docs", tmp_path / "secret"
    (docs / "guide").mkdir(parents=True)
    secret.mkdir()
    (docs / "intro.md").write_text("# Intro")
    (docs / "guide" / "retry.md").write_text("# Retries")
    (secret / "id_key.txt").write_text("-----BEGIN PRIVATE KEY----- hunter2")
    (docs / "key.txt").symlink_to(secret / "id_key.txt")
    (docs / "vault").symlink_to(secret, target_is_directory=True)
    (docs / "latest").symlink_to(docs / "guide", target_is_directory=True)  # inside
    (docs / "readme.md").symlink_to(docs / "intro.md")  # inside
    (docs / "guide" / "up").symlink_to(docs, target_is_directory=True)  # a loop to the root
    (docs / "a.md").symlink_to(docs / "b.md")  # a loop of two links
    (docs / "b.md").symlink_to(docs / "a.md")
    return docs


def load_within(seconds, *args, **kwargs):
    out = []
    worker = threading.Thread(target=lambda: out.append(c.load_documents(*args, **kwargs)))
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "load_documents did not finish: a symlink loop?"
    return out[0]


def test_symlinks_leaving_the_folder_are_not_followed(linked):
    with pytest.warns(
        UserWarning, match=r"skipped 2 symlink\(s\) leading outside.*follow_symlinks"
    ):
        docs = load_within(10, linked)
    assert [d["id"] for d in docs] == ["guide/retry.md", "intro.md"]  # each real file once
    assert not any("PRIVATE KEY" in d["text"] for d in docs)


def test_follow_symlinks_reads_them_and_loops_still_end(linked):
    docs = load_within(10, linked, follow_symlinks=True)
    texts = [d["text"] for d in docs]
    assert texts.count("-----BEGIN PRIVATE KEY----- hunter2") == 1
    assert texts.count("# Intro") == 1 and texts.count("# Retries") == 1


def test_symlinks_inside_the_folder_are_followed(tmp_path):
    docs, shared = tmp_path / "docs", tmp_path / "docs" / "shared"
    shared.mkdir(parents=True)
    (shared / "faq.md").write_text("# FAQ")
    (docs / "faq-link.md").symlink_to(shared / "faq.md")
    (docs / "only-here").mkdir()
    (docs / "only-here" / "x.md").symlink_to(pathlib.Path("..") / "shared" / "faq.md")
    (docs / "elsewhere").symlink_to(shared, target_is_directory=True)
    got = c.load_documents(docs)
    assert [d["id"] for d in got] == ["shared/faq.md"]  # its own path wins over the links'
    solo = tmp_path / "solo"
    solo.mkdir()
    (solo / "inner").mkdir()
    (solo / "inner" / "n.md").write_text("n")
    (solo / "view").symlink_to(solo / "inner", target_is_directory=True)
    (solo / "inner" / "n.md").rename(solo / "n.md")
    (solo / "inner" / "m.md").symlink_to(solo / "n.md")
    assert [d["id"] for d in c.load_documents(solo)] == ["n.md"]


def test_the_cli_skips_an_outside_link_with_a_note(linked, tmp_path, capsys):
    from conduit.cli import main

    assert main(["index", str(linked), "-o", str(tmp_path / "i.npz")]) == 0
    err = capsys.readouterr().err
    assert "note: load_documents skipped 2 symlink(s)" in err and "--follow-symlinks" in err
    texts = [d["text"] for d in c.load_store(tmp_path / "i.npz").documents]
    assert not any("PRIVATE KEY" in t for t in texts)


def test_glob_patterns_keep_their_meaning(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.md", "b.txt", "sub/c.md", "sub/d.py"):
        (tmp_path / name).write_text(name)
    ids = lambda **kw: [d["id"] for d in c.load_documents(tmp_path, **kw)]  # noqa: E731
    assert ids() == ["a.md", "b.txt", "sub/c.md", "sub/d.py"]
    assert ids(glob="*.md") == ["a.md"]
    assert ids(glob="**/*.md") == ["a.md", "sub/c.md"]
    assert ids(glob="sub/*.[mp][dy]") == ["sub/c.md", "sub/d.py"]
    assert ids(glob="**/?.txt") == ["b.txt"]


# -- batch checkpoints ---------------------------------------------------------------------------


def test_a_failed_item_is_retried_on_a_rerun(tmp_path):
    path = tmp_path / "run.jsonl"
    reqs = [c.request("m", f"q{i}") for i in range(4)]
    flaky = [r if i != 2 else r.set("mock", c.ServerError("down")) for i, r in enumerate(reqs)]
    first = c.batch(c.mock_call, flaky, checkpoint=path, progress=False)
    assert first[2]["error"]["type"] == "ServerError"
    script = c.mock_script(lambda r: "now " + r["messages"][-1]["content"])
    again = c.batch(c.mock_call, [r.set("mock", script) for r in reqs], checkpoint=path)
    assert [c.content(x) for x in again] == ["q0", "q1", "now q2", "q3"]
    assert len(script.calls) == 1  # only the failed item ran again
    assert load_checkpoint(path)[2]["response"]["content"] == "now q2"
    third = c.batch(c.mock_call, [r.set("mock", script) for r in reqs], checkpoint=path)
    assert len(script.calls) == 1 and c.content(third[2]) == "now q2"


HOLDER = """
    import sys
    import conduit as c
    script = c.mock_script(lambda r: "done " + r["messages"][-1]["content"], delay=0.3)
    reqs = [c.request("m", f"item {i}", mock=script) for i in range(20)]
    c.batch(c.mock_call, reqs, concurrency=2, checkpoint=sys.argv[1], progress=False)
    print("ran", len(script.calls), flush=True)
"""


def test_a_second_run_on_a_held_checkpoint_stops_at_once(tmp_path):
    path = tmp_path / "run.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 20
        while not (path.exists() and path.read_text().count("\n") >= 2):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        script = c.mock_script(lambda r: "done " + r["messages"][-1]["content"])
        reqs = [c.request("m", f"item {i}", mock=script) for i in range(20)]
        started = time.monotonic()
        with pytest.raises(c.ConduitError, match="another run is using the checkpoint") as err:
            c.batch(c.mock_call, reqs, checkpoint=path, progress=False)
        # at once: the holder has about 2.7 s of its 3 s run left, waiting for it takes that
        assert time.monotonic() - started < 1.5 and str(path) in str(err.value)
        assert not script.calls
    finally:
        out, _ = holder.communicate(timeout=60)
    assert out.split() == ["ran", "20"]
    after = c.batch(c.mock_call, reqs, checkpoint=path, progress=False)  # the lock went with it
    assert not script.calls and c.content(after[19]) == "done item 19"


def test_two_threads_on_one_checkpoint_do_the_work_once(tmp_path):
    path = tmp_path / "run.jsonl"
    script = c.mock_script(lambda r: "ok", delay=0.05)
    reqs = [c.request("m", f"item {i}", mock=script) for i in range(8)]
    outcomes = []

    def run():
        try:
            outcomes.append(len(c.batch(c.mock_call, reqs, concurrency=2, checkpoint=path)))
        except c.ConduitError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(outcomes) == 2 and outcomes.count(8) == 1  # one run did the work
    assert "another run is using the checkpoint" in str(next(o for o in outcomes if o != 8))
    assert len(script.calls) == 8


def test_a_checkpoint_line_never_holds_a_key(tmp_path, monkeypatch):
    key, env_key = "sk-request-key-0123456789", "sk-env-key-abcdefghijkl"
    monkeypatch.setenv("OPENAI_API_KEY", env_key)
    leaky = c.ConnectionError(f"refused: Authorization: Bearer {key} (env {env_key}\n)")
    reqs = [
        c.request("m", "a", api_key=key, mock=leaky),
        c.request(
            "m",
            "b",
            headers={"X-Api-Key": "hdr-secret-999999"},
            mock=c.ServerError("upstream said: bad key hdr-secret-999999"),
        ),
        c.request(
            "m",
            "c",
            base_url="http://bob:pa55word-123@127.0.0.1:9/v1",
            mock=c.ServerError("proxy rejected pa55word-123"),
        ),
    ]
    path = tmp_path / "run.jsonl"
    out = c.batch(c.mock_call, reqs, checkpoint=path, progress=False)
    assert all("error" in x for x in out)
    text = path.read_text()
    for secret in (key, env_key, "hdr-secret-999999", "pa55word-123"):
        assert secret not in text
    assert text.count("***") >= 4


def test_appenders_take_the_lock_before_touching_the_tail(tmp_path):
    path = tmp_path / "shared.jsonl"
    writer = open_append(path)
    writer.write(b'{"half": ')  # a line in progress, not yet torn
    writer.flush()
    with pytest.raises(BlockingIOError):
        open_append(path, wait=False)
    waited = []
    other = threading.Thread(target=lambda: waited.append(open_append(path)))
    other.start()
    time.sleep(0.1)
    assert not waited and path.read_bytes() == b'{"half": '  # the other one waits, cuts nothing
    writer.write(b'"done"}\n')
    writer.close()
    other.join(10)
    append_line(waited[0], '{"next": 1}')
    waited[0].close()
    assert read_jsonl(path, "x", "y") == [(1, {"half": "done"}), (2, {"next": 1})]
