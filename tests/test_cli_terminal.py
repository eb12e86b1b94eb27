"""The CLI driven in a real terminal: tmux types into it and reads the screen.

Streaming must show up token by token (the screen is read while the answer is still being
written), and ``ask`` must print its sources. CI installs tmux; a developer without it skips.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(
    TMUX is None and not os.environ.get("CI"), reason="tmux is not installed (CI installs it)"
)


class Terminal:
    def __init__(self, cwd):
        assert TMUX, "tmux is required in CI: apt-get install tmux"
        self.name = f"conduit-{uuid.uuid4().hex[:8]}"
        # A tmux server of its own: with the shared default server, the session a test kills
        # last takes the server down while the next test's new-session is connecting to it
        # ("server exited unexpectedly", seen once in CI).
        self.tmux = [TMUX, "-L", self.name]
        env_cmd = " ".join(
            f"{k}={v}" for k, v in {"PYTHONPATH": os.getcwd(), "TERM": "xterm"}.items()
        )
        subprocess.run(
            [
                *self.tmux,
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                "160",
                "-y",
                "50",
                "-c",
                str(cwd),
                f"env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY {env_cmd} bash --norc --noprofile",
            ],
            check=True,
        )

    def type(self, text, enter=True):
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, "-l", text], check=True)
        if enter:
            subprocess.run([*self.tmux, "send-keys", "-t", self.name, "Enter"], check=True)

    def screen(self):
        return subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-J", "-t", self.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def wait_for(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never appeared; the screen:\n{self.screen()}")

    def wait_for_prompt(self, count, timeout=30):
        """Wait until the screen shows *count* ``you>`` prompts: the chat shows its next prompt
        only after the turn before it is kept (the answer's last word is on screen earlier)."""
        deadline = time.monotonic() + timeout
        while self.screen().count("you>") < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"prompt {count} never appeared; the screen:\n{self.screen()}")
            time.sleep(0.05)

    def close(self):
        subprocess.run([*self.tmux, "kill-server"], check=False)


@pytest.fixture
def term(tmp_path):
    t = Terminal(tmp_path)
    yield t
    t.close()


def test_chat_streams_token_by_token_on_a_real_terminal(term):
    term.type(f"{sys.executable} -m conduit chat")
    term.wait_for("you>")  # tmux drops trailing spaces
    words = [f"word{i:02d}" for i in range(40)]
    term.type(" ".join(words))
    seen = []  # how many of the words the assistant line showed, each time we looked
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        screen = term.screen()
        answer = screen.split("assistant> ", 1)[1] if "assistant> " in screen else ""
        count = sum(w in answer for w in words)  # the answer may wrap over several lines
        if not seen or count != seen[-1]:
            seen.append(count)
        if count == len(words):
            break
        time.sleep(0.02)
    assert seen[-1] == len(words), seen
    partial = [n for n in seen if 0 < n < len(words)]
    assert len(partial) >= 3, f"the answer did not stream: counts seen {seen}"
    assert partial == sorted(partial)  # it only ever grows
    term.type("/exit")
    term.type("echo CHAT-ENDED")
    term.wait_for("\nCHAT-ENDED", timeout=10)


def test_an_empty_line_at_the_prompt_is_ignored_and_ctrl_d_leaves_cleanly(term):
    term.type(f"{sys.executable} -m conduit chat --no-log")
    term.wait_for("you>")
    term.type("")  # Enter on an empty line: a new prompt, not the end of the chat
    term.type("still here")
    term.wait_for("assistant> still here")
    term.wait_for_prompt(3, timeout=10)  # the prompt after the answer
    subprocess.run([*term.tmux, "send-keys", "-t", term.name, "C-d"], check=True)
    term.type("echo LEFT-$?")
    screen = term.wait_for("\nLEFT-0")
    assert "you> bash" not in screen and "you> $" not in screen  # the shell's own line


def test_ctrl_c_stops_the_answer_not_the_chat_on_a_real_terminal(term, tmp_path):
    """Ctrl-C mid-answer returns to the prompt; the chat answers the next turn and keeps only
    whole turns; the log records the interrupted call as interrupted."""
    history = tmp_path / "chat.json"
    log = tmp_path / "calls.db"
    term.type(f"CONDUIT_LOGS={log} {sys.executable} -m conduit chat --history {history}")
    term.wait_for("you>")
    words = [f"long{i:03d}" for i in range(200)]  # the echo streams 40 ms a chunk: 8 s
    term.type(" ".join(words))
    term.wait_for("assistant> long000 long001 long002")
    subprocess.run([*term.tmux, "send-keys", "-t", term.name, "C-c"], check=True)
    screen = term.wait_for("(interrupted: the turn was not kept")
    assert screen.count("long199") == 1  # what was typed; the answer stopped where it was
    term.type("after the interrupt")
    term.wait_for("assistant> after the interrupt")
    term.type("/exit")
    term.type("echo CHAT-ENDED")
    term.wait_for("\nCHAT-ENDED", timeout=10)
    kept = [m["content"] for m in json.loads(history.read_text())["messages"]]
    assert kept == ["after the interrupt", "after the interrupt"]  # the whole turn only
    term.type(f"CONDUIT_LOGS={log} {sys.executable} -m conduit logs")
    term.wait_for("! KeyboardInterrupt")


def test_index_and_ask_print_sources_on_a_real_terminal(term, tmp_path):
    (tmp_path / "guide.md").write_text("# Timeouts\n\nA deadline covers every retry attempt.\n")
    (tmp_path / "other.md").write_text("# Tea\n\nGreen tea is brewed at 80 degrees.\n")
    term.type(f"{sys.executable} -m conduit index . && echo INDEXED")
    term.wait_for("INDEXED")
    term.type(f"{sys.executable} -m conduit ask 'does a deadline cover retries?' -k 1")
    screen = term.wait_for("No model is configured")
    assert "[1] " in screen and "guide.md" in screen and "every retry attempt" in screen


@pytest.fixture
def server():
    from tests.faultserver import FaultServer

    srv = FaultServer()
    yield srv
    srv.close()


ANSWER = "".join(f"w{i} " for i in range(20))  # what tests/faultserver.py streams


def _history(path):
    import json

    return json.loads(path.read_text())["messages"] if path.exists() else []


def test_a_chat_rides_out_a_503_visibly_and_keeps_every_turn(term, server, tmp_path):
    """Answers, then a 503 (retried, and said so), then answers: both turns are kept."""
    base = server.url("cli-503", "ok,503,ok")
    history = tmp_path / "chat.json"
    term.type(
        f"CONDUIT_LOGS=off OPENAI_BASE_URL={base} {sys.executable} -m conduit chat "
        f"-m openai:fault-model --history {history}"
    )
    term.wait_for("you>", timeout=60)
    term.type("first question")
    term.wait_for("w19", timeout=60)
    term.wait_for_prompt(2, timeout=60)  # the turn is saved before the next prompt
    assert [m["role"] for m in _history(history)] == ["user", "assistant"]  # kept already
    term.type("second question")
    screen = term.wait_for("retrying)", timeout=60)
    assert "HTTP 503" in screen
    deadline = time.monotonic() + 60
    while len(_history(history)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m["content"] for m in _history(history)] == [
        "first question",
        ANSWER,
        "second question",
        ANSWER,
    ]
    assert server.hits["cli-503"] == 3
    term.type("/exit")


def test_a_chat_killed_after_its_first_answer_keeps_that_turn(term, server, tmp_path):
    import signal

    base = server.url("cli-kill", "ok")
    history = tmp_path / "chat.json"
    logs = tmp_path / "logs.db"
    term.type(
        f"CONDUIT_LOGS={logs} OPENAI_BASE_URL={base} {sys.executable} -m conduit chat "
        f"-m openai:fault-model --history {history}"
    )
    term.wait_for("you>", timeout=60)
    term.type("remember this")
    term.wait_for("w19", timeout=60)
    term.wait_for_prompt(2, timeout=60)  # the answer is over and kept; killed at the prompt
    shell = subprocess.run(
        [*term.tmux, "display", "-p", "-t", term.name, "#{pane_pid}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    child = subprocess.run(
        ["pgrep", "-P", shell], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    os.kill(int(child), signal.SIGKILL)
    term.type("echo KILLED-$?")
    term.wait_for("KILLED-137")
    assert [m["content"] for m in _history(history)] == ["remember this", ANSWER]
    done = subprocess.run(
        [sys.executable, "-m", "conduit", "logs", "search", "remember"],
        capture_output=True,
        text=True,
        env={**os.environ, "CONDUIT_LOGS": str(logs)},
    )
    assert "remember this" in done.stdout and "w0 w1" in done.stdout


def test_index_reads_a_real_folder_and_skips_the_rest_on_a_real_terminal(term, tmp_path):
    """`conduit index .` in a folder with a virtual environment, node_modules, .git, a
    .gitignore entry, a binary .txt, Latin-1 text and a PDF while pypdf is unavailable."""
    import conduit as c

    files = {
        "guide.md": b"# Timeouts\n\nA deadline covers every retry attempt.\n",
        "menu.txt": "Crème brûlée and café au lait, naïve façade.\n".encode("latin-1"),
        "blob.txt": b"\x00\x01\x02\x03 not text",
        "report.pdf": b"%PDF-1.4\n%%EOF\n",
        ".gitignore": b"secret.md\n",
        "secret.md": b"never indexed",
        ".venv/pyvenv.cfg": b"home = /usr/bin\n",
        ".venv/lib/retry.py": b"def retry(): ...\n",
        "node_modules/pkg/README.md": b"vendored",
        ".git/HEAD": b"ref: refs/heads/main\n",
        ".git/notes.md": b"git internals",
    }
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(body)
    no_pdf = (
        "import sys; sys.modules['pypdf'] = None; from conduit.cli import main; sys.exit(main())"
    )
    term.type(f'{sys.executable} -c "{no_pdf}" index . ; echo "STATUS=$?"')
    screen = term.wait_for("\nSTATUS=", timeout=60)
    assert "STATUS=0" in screen, screen
    assert "warning: skipped report.pdf: needs the pdf extra: pip install 'conduit-llm[pdf]'" in (
        screen
    )
    assert "note: skipped blob.txt: binary data, not text" in screen
    summary = next(line for line in screen.splitlines() if line.startswith("skipped "))
    assert summary.startswith("skipped 3 folders and 3 files: 1 hidden (.git/)"), summary
    for part in ("1 virtual environment (.venv/)", "1 dependencies (node_modules/)"):
        assert part in summary, summary
    assert "1 in .gitignore (secret.md)" in summary and "--no-ignore" in summary
    assert "wrote conduit-index.npz (2 chunks from 2 files)" in screen
    parents = {
        d["metadata"]["parent"] for d in c.load_store(tmp_path / "conduit-index.npz").documents
    }
    assert parents == {"guide.md", "menu.txt"}
    term.type(f"{sys.executable} -m conduit ask 'creme brulee cafe' -k 1")
    screen = term.wait_for("No model is configured")
    assert "[1] menu.txt:1 (score" in screen and "Crème brûlée and café au lait" in screen
