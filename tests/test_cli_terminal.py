"""The CLI driven in a real terminal: tmux types into it and reads the screen.

Streaming must show up token by token (the screen is read while the answer is still being
written), and ``ask`` must print its sources. CI installs tmux; a developer without it skips.
"""

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
        env_cmd = " ".join(
            f"{k}={v}" for k, v in {"PYTHONPATH": os.getcwd(), "TERM": "xterm"}.items()
        )
        subprocess.run(
            [
                TMUX,
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
        subprocess.run([TMUX, "send-keys", "-t", self.name, "-l", text], check=True)
        if enter:
            subprocess.run([TMUX, "send-keys", "-t", self.name, "Enter"], check=True)

    def screen(self):
        return subprocess.run(
            [TMUX, "capture-pane", "-p", "-J", "-t", self.name],
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

    def close(self):
        subprocess.run([TMUX, "kill-session", "-t", self.name], check=False)


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


def test_index_and_ask_print_sources_on_a_real_terminal(term, tmp_path):
    (tmp_path / "guide.md").write_text("# Timeouts\n\nA deadline covers every retry attempt.\n")
    (tmp_path / "other.md").write_text("# Tea\n\nGreen tea is brewed at 80 degrees.\n")
    term.type(f"{sys.executable} -m conduit index . && echo INDEXED")
    term.wait_for("INDEXED")
    term.type(f"{sys.executable} -m conduit ask 'does a deadline cover retries?' -k 1")
    screen = term.wait_for("No model is configured")
    assert "[1] " in screen and "guide.md" in screen and "every retry attempt" in screen
