"""The conduit command: chat, index, ask and models, offline and against a (respx-served) model."""

import io
import json
from pathlib import Path

import httpx
import pytest
import respx

import conduit as c
from conduit import cli
from tests.providers.helpers import raw

KEYS = [
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GROQ_API_KEY",
    "XAI_API_KEY",
    "OLLAMA_BASE_URL",
    "CONDUIT_MODEL",
]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def notes(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "retry.md").write_text("# Retries\n\nA retry waits with exponential backoff.\n")
    (folder / "cache.md").write_text("# Cache\n\nA cache hit is never billed twice.\n")
    (folder / "image.bin").write_bytes(b"\x00\x01")
    return folder


def run(capsys, *argv, stdin=""):
    import sys

    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        status = cli.main(list(argv))
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return status, out, err


def test_default_model_follows_the_environment():
    assert cli.default_model({}) is None
    assert cli.default_model({"GROQ_API_KEY": "k"}) == "groq:llama-3.3-70b-versatile"
    assert cli.default_model({"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}).startswith(
        "openai:"
    )
    assert (
        cli.default_model({"CONDUIT_MODEL": "ollama:qwen3", "OPENAI_API_KEY": "k"})
        == "ollama:qwen3"
    )


def test_chat_offline_echoes_and_says_how_to_add_a_model(capsys):
    status, out, err = run(capsys, "chat", "hello", "there")
    assert status == 0 and out == "hello there\n"
    assert "offline" in err and "OPENAI_API_KEY" in err


def test_chat_session_keeps_history_resets_and_saves(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    typed = "first\n\n/save kept.json\n/reset\nsecond\n/exit\nnever sent\n"
    status, out, err = run(
        capsys, "chat", "-i", "-s", "Be brief.", "--history", "h.json", stdin=typed
    )
    assert status == 0 and out.splitlines() == ["first", "second"]
    assert "(saved to kept.json)" in err and "(history cleared)" in err
    kept = c.load_conversation(tmp_path / "kept.json")["messages"]
    assert [m["content"] for m in kept] == ["Be brief.", "first", "first"]
    saved = c.load_conversation(tmp_path / "h.json")["messages"]
    assert [m["content"] for m in saved] == ["Be brief.", "second", "second"]  # after /reset
    status, out, _ = run(capsys, "chat", "--history", "h.json", "third")  # continues the file
    assert [m["content"] for m in c.load_conversation(tmp_path / "h.json")["messages"]][-2:] == [
        "third",
        "third",
    ]


@respx.mock
def test_chat_with_a_configured_model_streams_from_the_provider(capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    route = respx.post("https://api.openai.com/v1/chat/completions").mock(
        return_value=httpx.Response(
            200,
            content=raw("openai/stream_text.sse"),
            headers={"content-type": "text/event-stream"},
        )
    )
    status, out, err = run(capsys, "chat", "-s", "Be brief.", "Weather in Paris?")
    assert status == 0 and out.startswith("I'm unable to provide real-time weather updates.")
    body = json.loads(route.calls[0].request.content)
    assert body["model"] == "gpt-4o-mini" and body["stream"] is True
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "sk-test-secret" not in out + err


def test_index_then_ask_offline_prints_passages_and_their_sources(capsys, notes, tmp_path):
    store = tmp_path / "idx.npz"
    status, out, err = run(capsys, "index", str(notes), "-o", str(store), "--chunk-size", "200")
    assert status == 0 and "2 files" in out and store.exists()
    assert "indexing 2 of 2 files" in err and "2/2" in err  # the progress bar reached the end
    assert json.loads((tmp_path / "idx.npz.json").read_text())["embedder"] == "hash"
    status, out, err = run(
        capsys, "ask", "is", "a", "cache", "hit", "billed?", "-s", str(store), "-k", "1"
    )
    assert status == 0
    assert "[1] " in out and "cache.md" in out and "never billed twice" in out
    assert "retry.md" not in out  # k=1: only the best passage
    assert "No model is configured" in out


@respx.mock
def test_ask_with_a_model_answers_from_the_passages_and_lists_sources(
    capsys, notes, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    store = tmp_path / "idx.npz"
    run(capsys, "index", str(notes), "-o", str(store))
    route = respx.post("https://api.openai.com/v1/chat/completions").mock(
        return_value=httpx.Response(
            200,
            content=raw("openai/stream_text.sse"),
            headers={"content-type": "text/event-stream"},
        )
    )
    status, out, _ = run(capsys, "ask", "How long does a retry wait?", "-s", str(store), "-k", "2")
    assert status == 0 and "Sources:\n[1] " in out and "retry.md" in out.split("Sources:")[1]
    sent = json.loads(route.calls[0].request.content)["messages"]
    assert any("exponential backoff" in m["content"] for m in sent if m["role"] == "system")
    assert sent[-1] == {"role": "user", "content": "How long does a retry wait?"}


def test_index_and_ask_errors(capsys, tmp_path):
    status, _, err = run(capsys, "index", str(tmp_path / "missing"))
    assert status == 2 and "no such file or folder" in err
    (tmp_path / "empty").mkdir()
    status, _, err = run(capsys, "index", str(tmp_path / "empty"))
    assert status == 2 and "no readable documents" in err
    status, _, err = run(capsys, "ask", "q", "-s", str(tmp_path / "none.npz"))
    assert status == 2 and "conduit index FOLDER" in err
    status, _, err = run(capsys, "ask", "q", "-s", str(tmp_path))  # a folder: a usage error
    assert status == 2 and "is a folder: -s takes the index file" in err
    (tmp_path / "README.md").write_text("# notes\n")
    status, _, err = run(capsys, "ask", "q", "-s", str(tmp_path / "README.md"))  # the wrong file
    assert status == 1 and "is not a Conduit store" in err and "delete" not in err


def test_ask_without_a_question(capsys, notes, tmp_path):
    store = tmp_path / "idx.npz"
    run(capsys, "index", str(notes), "-o", str(store))
    status, _, err = run(capsys, "ask", "-s", str(store))
    assert status == 2 and "needs a question" in err


def test_models_lists_providers_and_prices(capsys, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    status, out, _ = run(capsys, "models")
    assert status == 0 and "default model: anthropic:claude-haiku-4-5" in out
    assert "anthropic  configured" in out and "openai     set OPENAI_API_KEY" in out
    assert "gpt-4o-mini" in out and "0.150 / 0.600" in out
    assert "ollama     a local server at http://localhost:11434/v1" in out
    assert "(unverified): limits and prices not yet checked" in out
    columns = {line.index(" / ") for line in out.splitlines() if " / " in line and "  " in line}
    assert len(columns) == 1  # the price column lines up, long model names included
    monkeypatch.setenv("OPENAI_BASE_URL", "http://me:pw@localhost:8000/v1")
    _, out, _ = run(capsys, "models")
    assert "openai     the server at http://***@localhost:8000/v1 (OPENAI_BASE_URL" in out


def test_provider_errors_are_one_clear_line(capsys, monkeypatch):
    status, _, err = run(capsys, "chat", "-m", "openai:gpt-4o-mini", "hi")
    assert status == 3 and err.startswith("error: no API key for openai")
    assert len(err.strip().splitlines()) == 1


def test_python_dash_m_conduit_runs_the_same_command():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "conduit", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "chat" in out.stdout and "index" in out.stdout


def test_index_again_re_embeds_only_what_changed(capsys, notes, tmp_path):
    store = tmp_path / "idx.npz"
    run(capsys, "index", str(notes), "-o", str(store))
    first = c.load_store(store)
    status, out, err = run(capsys, "index", str(notes), "-o", str(store))
    assert status == 0 and "indexing 0 of 2 files as 0 chunks (2 unchanged, 0 removed)" in err
    assert [d["id"] for d in c.load_store(store).documents] == [d["id"] for d in first.documents]

    (notes / "retry.md").write_text("# Retries\n\nA retry now waits at most eight seconds.\n")
    (notes / "cache.md").unlink()
    (notes / "tea.md").write_text("# Tea\n\nGreen tea wants water at 80 degrees.\n")
    status, out, err = run(capsys, "index", str(notes), "-o", str(store))
    assert "indexing 2 of 2 files" in err and "(0 unchanged, 1 removed)" in err
    texts = {d["metadata"]["parent"]: d["text"] for d in c.load_store(store).documents}
    assert set(texts) == {"retry.md", "tea.md"} and "eight seconds" in texts["retry.md"]
    status, out, _ = run(capsys, "ask", "how long does a retry wait?", "-s", str(store), "-k", "1")
    assert "eight seconds" in out and "exponential" not in out

    status, out, err = run(capsys, "index", str(notes), "-o", str(store), "--chunk-size", "300")
    assert "indexing 2 of 2 files" in err and "unchanged" not in err  # new settings: a rebuild
    status, out, err = run(
        capsys, "index", str(notes), "-o", str(store), "--chunk-size", "300", "--rebuild"
    )
    assert "indexing 2 of 2 files" in err


def test_the_cli_reads_the_provider_registry_and_stays_light(capsys):
    """The CLI names every registry provider with the variable that configures it, and its
    start-up imports no provider module (no httpx)."""
    import subprocess
    import sys

    from conduit.registry import PROVIDERS

    status, out, _ = run(capsys, "models")
    assert status == 0
    for info in PROVIDERS:
        assert f"-m {info.name}:{info.default_model}" in out
        assert all(var in out for var in info.needs)
    code = "import sys, conduit.cli; print('httpx' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_provider_needing_several_variables_counts_only_with_all_of_them():
    from conduit.cli import default_model

    assert default_model({"AZURE_OPENAI_API_KEY": "k"}) is None  # no endpoint: not usable
    both = {"AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com"}
    assert default_model(both) == "azure:gpt-4o-mini"
    assert default_model({"AWS_REGION": "us-east-1"}) is None
    assert default_model({"MISTRAL_API_KEY": "k"}) == "mistral:mistral-small-latest"


# --- issue 17: a chat that never loses a turn, logs, pipes, errors -------------------------


@pytest.fixture
def logged(tmp_path, monkeypatch):
    path = tmp_path / "logs.db"
    monkeypatch.setenv("CONDUIT_LOGS", str(path))
    return path


def stream_response(name="openai/stream_text.sse"):
    return httpx.Response(200, content=raw(name), headers={"content-type": "text/event-stream"})


def test_piped_text_is_added_to_the_prompt_or_is_the_prompt(capsys):
    status, out, _ = run(capsys, "chat", "summarize this:", stdin="line one\nline two\n")
    assert status == 0 and out == "summarize this:\n\nline one\nline two\n"  # one call, echoed
    status, out, _ = run(capsys, "chat", stdin="first\nsecond\n")
    assert out == "first\nsecond\n"  # the whole input is one message, not one call a line
    status, _, err = run(capsys, "chat", stdin="")
    assert status == 2 and "chat needs a prompt" in err


def test_slash_commands_never_reach_the_model(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    typed = "/help\n/nonsense\n//etc/hosts is a file\n/model mock:other\n/history\n/exit\n"
    status, out, err = run(capsys, "chat", "-i", stdin=typed)
    assert status == 0
    assert "/reset" in err and "unknown command /nonsense" in err
    assert out.splitlines()[0] == "/etc/hosts is a file"  # // sends the text with one /
    assert "(model: mock:other)" in err and "user: /etc/hosts is a file" in out


def test_version_is_the_installed_one(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    shown = capsys.readouterr().out.strip()
    assert done.value.code == 0 and shown == f"conduit {version('conduit-llm')}"


@respx.mock
def test_a_503_is_retried_visibly_and_every_turn_is_kept(capsys, tmp_path, monkeypatch, logged):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-secret-0001")
    route = respx.post("https://api.openai.com/v1/chat/completions").mock(
        side_effect=[
            stream_response(),
            httpx.Response(503, json={"error": {"message": "overloaded"}}),
            stream_response(),
        ]
    )
    history = tmp_path / "h.json"
    typed = "first question\nsecond question\n"
    status, out, err = run(capsys, "chat", "-i", "--history", str(history), stdin=typed)
    assert status == 0 and route.call_count == 3
    assert "(attempt 1 failed: openai HTTP 503: overloaded" in err and "retrying)" in err
    saved = c.load_conversation(history)["messages"]
    assert [m["role"] for m in saved] == ["user", "assistant", "user", "assistant"]
    status, out, _ = run(capsys, "logs")
    assert out.count("gpt-4o-mini") == 2 and "second question" in out
    assert "sk-cli-secret-0001" not in logged.read_bytes().decode("latin-1")


@respx.mock
def test_a_failed_turn_keeps_the_turns_before_it(capsys, tmp_path, monkeypatch, logged):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-secret-0002")
    respx.post("https://api.openai.com/v1/chat/completions").mock(
        side_effect=[stream_response()]
        + [httpx.Response(503, json={"error": {"message": "down"}})] * 5
    )
    history = tmp_path / "h.json"
    typed = "first\nsecond\n"
    status, _, err = run(
        capsys, "chat", "-i", "--retries", "1", "--history", str(history), stdin=typed
    )
    assert status == 4 and "error:" in err and "the turn was not kept" in err  # its last turn
    assert err.count("retrying)") == 1  # attempt 1 of 2 said so; the last is the error line
    assert "c.with_retry" not in err and "try again later, or raise --retries" in err
    assert len(c.load_conversation(history)["messages"]) == 2  # the first turn, answered
    _, out, _ = run(capsys, "logs", "search", "second")
    assert "! ServerError" in out  # the failure is logged too


def test_continue_picks_up_the_last_chat_from_the_log(capsys, logged):
    run(capsys, "chat", "remember the word apricot")
    status, out, _ = run(capsys, "chat", "-c", "and now?")
    assert status == 0 and out == "and now?\n"
    _, shown, _ = run(capsys, "logs", "--json", "-n", "1")
    row = json.loads(shown)
    kept = row["messages"]["messages"]  # nested JSON, not a string
    assert [m["content"] for m in kept] == [
        "remember the word apricot",
        "remember the word apricot",
        "and now?",
        "and now?",
    ]
    status, shown, _ = run(capsys, "logs", "show", row["id"][:6])
    assert status == 0 and "prompt:\nand now?" in shown and f"id: {row['id']}" in shown
    assert "None" not in shown  # the offline mock has no cost: shown as "-"


def test_logs_json_is_json_lines_and_search_takes_several_words(capsys, logged):
    run(capsys, "chat", "apricot jam recipe")
    run(capsys, "chat", "plum cake")
    _, lines, _ = run(capsys, "logs", "--json", "-n", "2")
    rows = [json.loads(line) for line in lines.splitlines()]  # one whole object a line
    assert [r["prompt"] for r in rows] == ["plum cake", "apricot jam recipe"]
    _, found, _ = run(capsys, "logs", "search", "apricot", "jam")  # no quotes needed
    assert "apricot jam recipe" in found and "plum cake" not in found


def test_continue_without_a_log_says_why(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CONDUIT_LOGS", str(tmp_path / "empty.db"))
    status, _, err = run(capsys, "chat", "-c", "hi")
    assert status == 2 and "no earlier chat" in err
    monkeypatch.setenv("CONDUIT_LOGS", "off")
    status, _, err = run(capsys, "chat", "-c", "hi")
    assert status == 2 and "turned off" in err


def test_no_log_leaves_no_row(capsys, logged):
    run(capsys, "chat", "--no-log", "private")
    _, out, _ = run(capsys, "logs")
    assert "private" not in out


def test_every_error_is_one_line_with_a_documented_status(capsys, tmp_path):
    (tmp_path / "README.md").write_text("not an index")
    status, _, err = run(capsys, "ask", "-s", str(tmp_path / "README.md"), "x")
    assert status in cli.EXIT_CODES and status != 70 and err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    status, _, err = run(capsys, "ask", "-s", str(tmp_path / "missing.npz"), "x")
    assert status == 2 and "conduit index FOLDER" in err


def test_the_exit_codes_in_the_docs_are_the_command_s():
    page = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    for code, meaning in cli.EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in page


def test_a_log_that_cannot_be_opened_warns_and_the_chat_answers(capsys, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CONDUIT_LOGS", str(blocker / "logs.db"))
    status, out, err = run(capsys, "chat", "still answered")
    assert status == 0 and out == "still answered\n" and "not logging this call" in err


def test_a_save_that_fails_keeps_the_chat_going(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    typed = f"/save {blocker}/x.json\nafter\n/exit\n"
    status, out, err = run(capsys, "chat", "-i", stdin=typed)
    assert status == 0 and "nothing was saved" in err and out == "after\n"


def test_negative_retries_and_timeouts_are_usage_errors(capsys):
    for flag in ("--retries", "--timeout"):
        with pytest.raises(SystemExit) as done:
            cli.main(["chat", flag, "-1", "hi"])
        assert done.value.code == 2 and "must be at least 0" in capsys.readouterr().err


@respx.mock
def test_openai_base_url_alone_chats_with_that_server_without_a_key(capsys, monkeypatch):
    """A local OpenAI-compatible server named by OPENAI_BASE_URL is the default, keyless."""
    for var in ("OPENAI_API_KEY", "CONDUIT_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8123/v1")
    route = respx.post("http://localhost:8123/v1/chat/completions").mock(
        return_value=stream_response()
    )
    status, out, err = run(capsys, "chat", "hello")
    assert status == 0 and route.called and "offline" not in err
    assert out.strip()  # the recorded stream's text, not the echo of "hello"
    assert out != "hello\n" and "authorization" not in route.calls.last.request.headers


@respx.mock
def test_a_history_file_goes_on_with_its_own_model(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CONDUIT_MODEL", "groq:llama-3.3-70b-versatile")  # the default elsewhere
    monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-secret-0003")
    history = tmp_path / "h.json"
    c.save_conversation([c.user("hi"), c.assistant("hello")], history, model="openai:gpt-4o-mini")
    route = respx.post("https://api.openai.com/v1/chat/completions").mock(
        return_value=stream_response()
    )
    status, _, _ = run(capsys, "chat", "--history", str(history), "and now?")
    assert status == 0 and route.called  # not groq: the file's model
    assert c.load_conversation(history)["model"] == "openai:gpt-4o-mini"
    assert len(c.load_conversation(history)["messages"]) == 4


def test_a_resumed_chat_takes_a_new_system_prompt_and_the_log_records_the_one_sent(
    capsys, tmp_path, logged
):
    history = tmp_path / "h.json"
    run(capsys, "chat", "-s", "Be brief.", "--history", str(history), "first")
    status, _, _ = run(capsys, "chat", "-s", "Be very brief.", "--history", str(history), "second")
    kept = c.load_conversation(history)["messages"]
    assert status == 0 and [m["content"] for m in kept if m["role"] == "system"] == [
        "Be very brief."
    ]
    assert [m["content"] for m in kept if m["role"] == "user"] == ["first", "second"]
    run(capsys, "chat", "-c", "third")  # -c without -s: the system prompt the chat has
    _, shown, _ = run(capsys, "logs", "--json", "-n", "3")
    systems = [json.loads(line)["system"] for line in shown.splitlines()]
    assert systems == ["Be very brief.", "Be very brief.", "Be brief."]  # newest first


def test_slips_a_newcomer_makes_get_answers_not_surprises(capsys, tmp_path, notes):
    """An empty line, a misspelt /model, /save to a missing folder, a piped question to ask,
    a model without its provider prefix: each gets a clear answer and loses nothing."""
    typed = "\n   \n/model antropic:claude-haiku-4-5\nhello\n/save /no/such/dir/x.json\n"
    status, out, err = run(capsys, "chat", "-i", stdin=typed)
    assert status == 0 and out == "hello\n"  # the mock still answers: the model did not change
    assert "did you mean 'anthropic'" in err and "the model is still mock:echo" in err
    assert "/no/such/dir is not a folder (nothing was saved" in err
    store = tmp_path / "index.npz"
    run(capsys, "index", str(notes), "-o", str(store))
    status, out, _ = run(capsys, "ask", "-s", str(store), stdin="how does a retry wait?\n")
    assert status == 0 and "retry.md" in out
    status, _, err = run(capsys, "chat", "-m", "claude-haiku-4-5", "hi")
    assert status == 3 and "claude-haiku-4-5 has no provider prefix, so it goes to openai" in err
    assert "-m anthropic:claude-haiku-4-5" in err
    assert "c.request" not in err and "choose another model with -m: conduit models" in err


def test_ask_keeps_the_lines_of_markdown_code_and_wraps_the_prose(capsys, tmp_path):
    folder = tmp_path / "guide"
    folder.mkdir()
    (folder / "setup.md").write_text(
        "# Setup\n\nInstall and index your notes with these two commands:\n\n"
        '```bash\nconduit index notes/  # a folder\nconduit ask "how do retries work?"\n```\n'
    )
    store = tmp_path / "index.npz"
    run(capsys, "index", str(folder), "-o", str(store))
    status, out, _ = run(capsys, "ask", "-s", str(store), "index notes")
    assert status == 0
    assert "\n    conduit index notes/  # a folder\n    conduit ask" in out  # lines kept
    assert "Install and index your notes with these two commands:" in out


def test_a_chat_resumed_from_its_history_file_goes_on_under_one_conversation(
    capsys, tmp_path, logged
):
    history = tmp_path / "h.json"
    run(capsys, "chat", "--history", str(history), "first")
    run(capsys, "chat", "--history", str(history), "second")
    _, shown, _ = run(capsys, "logs", "--json", "-n", "2")
    rows = [json.loads(line) for line in shown.splitlines()]
    assert [r["prompt"] for r in rows] == ["second", "first"]
    assert rows[0]["conversation"] == rows[1]["conversation"]


def test_review_slips_of_the_command_line(capsys, tmp_path, monkeypatch, notes):
    """An empty question is a usage error (a piped line is not read for it); a prefixed model
    gets no prefix note; library advice reads as command-line advice; /save expands ~."""
    store = tmp_path / "index.npz"
    run(capsys, "index", str(notes), "-o", str(store))
    with pytest.raises(cli.UsageError, match="ask needs a question"):
        cli.cmd_ask(
            cli.parser().parse_args(["ask", "-s", str(store), ""]),
            io.StringIO(),
            io.StringIO(),
            io.StringIO("a piped line meant for the next command\n"),
        )
    status, _, err = run(capsys, "chat", "-m", "azure:gpt-4o-mini", "hi")
    assert status == 3 and "no provider prefix" not in err and "c.request" not in err
    monkeypatch.setenv("HOME", str(tmp_path))
    status, _, err = run(capsys, "chat", "-i", stdin="hello\n/save ~/kept.json\n")
    assert status == 0 and (tmp_path / "kept.json").exists() and "saved to" in err


@pytest.mark.parametrize(
    ("text", "shown", "hidden"),
    [
        (
            "step_18 = 1\nstep_19 = 2\n```\n\nAfter the block.",
            "    step_18 = 1\n    step_19 = 2",
            "",
        ),
        ("~~~\na = 1\n~~~\nprose " + "word " * 300, "    ~~~\n    a = 1\n    ~~~", "word " * 100),
        ("```py\n" + "\n".join(f"x{i} = {i}" for i in range(12)) + "\n```", "    x11 = 11", "..."),
    ],
)
def test_markdown_passages_start_in_their_code_and_stay_short(text, shown, hidden):
    passage = cli._passage({"document": {"metadata": {"source": "a.md"}, "text": text}})
    assert shown in passage and (not hidden or hidden not in passage)
    assert len(passage) < 700
