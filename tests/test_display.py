"""Readable display at a prompt: c.show, the plain REPL's displayhook, IPython's formatter."""

import json
import subprocess
import sys

import pytest
from toolz import pipe

import conduit as c


def test_a_request_shows_roles_options_middleware_and_masks_the_key():
    req = pipe(
        c.request(
            "gpt-4o-mini",
            [c.system("Be brief."), c.user("x" * 500)],
            api_key="sk-live-123",
            temperature=0.2,
            base_url="http://localhost:8000/v1",
        ),
        c.with_retry,
        c.with_cache,
    )
    text = c.show(req)
    head, *lines = text.splitlines()
    assert head.startswith("<request gpt-4o-mini · 2 messages · temperature=0.2")
    assert "middleware: retry → cache" in head and "at http://localhost:8000/v1" in head
    assert "sk-live-123" not in text and "api_key=***" in head
    assert lines[0].split() == ["system", "Be", "brief."]
    assert len(lines[1]) <= 100 and lines[1].endswith("…")  # long content is clipped


def test_a_context_shows_the_response_usage_cost_and_tool_calls():
    script = c.mock_script(
        [
            {"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]},
        ]
    )
    ctx = pipe(c.request("gpt-4o-mini", "1+2?", mock=script), c.with_cost, c.mock_call)
    text = c.show(ctx)
    assert text.startswith("<context gpt-4o-mini · 1 messages")
    assert "⇒ response  [tool_use · " in text and " in / " in text and "$0.0000" in text
    assert "→ add(a=1, b=2)" in text
    convo = [
        c.user("q"),
        c.assistant("", [{"id": "t1", "name": "f", "arguments": {}}]),
        c.tool_result("t1", "42"),
        c.user("look", c.image_url("https://x/cat.png")),
    ]
    shown = c.show(c.freeze(convo))
    assert "tool [t1]" in shown and "[image https://x/cat.png]" in shown
    assert c.show(ctx["response"]).startswith("<response gpt-4o-mini · tool_use")
    assert c.show(c.user("hello")) == "user       hello"
    assert c.show({"unrelated": 1}) == "{'unrelated': 1}"


def test_long_conversations_show_the_latest_messages():
    req = c.request("m", [c.user(str(i)) for i in range(30)])
    lines = c.show(req).splitlines()
    assert lines[1] == "  … 18 earlier messages" and lines[-1].split() == ["user", "29"]


def test_the_plain_repl_prints_conduit_maps_readably():
    script = 'import conduit as c\nc.request("m", "hi", api_key="sk-abc")\n{"a": 1}\n_["a"]\n'
    out = subprocess.run(
        [sys.executable, "-i"], input=script, capture_output=True, text=True, timeout=60
    )
    assert "<request m · 1 messages · api_key=***>" in out.stderr + out.stdout
    assert "sk-abc" not in out.stdout + out.stderr
    assert "{'a': 1}" in out.stdout and "\n1\n" in out.stdout  # other values: untouched, _ works


def test_ipython_formats_conduit_maps_readably():
    ipython = pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        assert c.display.install() is True
        shown = shell.display_formatter.format(c.request("m", "hi", api_key="sk-abc"))[0]
        assert shown["text/plain"].startswith("<request m · 1 messages · api_key=***>")
        other = shell.display_formatter.format(c.freeze({"a": 1}))[0]["text/plain"]
        assert other == "pmap({'a': 1})"
    finally:
        InteractiveShell.clear_instance()
        del ipython


def test_show_prints_a_wire_request_as_http_with_secrets_masked():
    shown = c.show(
        c.wire(c.request("anthropic:claude-haiku-4-5", "Hi", api_key="sk-ant-display-secret"))
    )
    lines = shown.splitlines()
    assert lines[0] == "POST https://api.anthropic.com/v1/messages"
    assert "x-api-key: ***" in lines and "sk-ant-display-secret" not in shown
    body = json.loads(shown.split("\n\n", 1)[1])
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


def test_a_url_s_query_key_is_masked_but_text_mentioning_urls_is_left_alone():
    """A value that is a URL has its userinfo and credential-named query parameters masked
    (``key``, ``api_key``, ``subscription-key``; not ``keyword``); text that quotes a URL is the
    user's own and keeps all but a password."""
    from conduit._data import masked

    assert masked("https://h/v1?subscription-key=s3cret&page=2") == (
        "https://h/v1?subscription-key=***&page=2"
    )
    assert masked({"url": "https://u:pw@h/x?api_key=s3cret#top"}) == {
        "url": "https://***@h/x?api_key=***#top"
    }
    for text in (
        "What does https://api.x.com/v1?key=abc do? Also explain y.",
        "https://x.example/?keyword=llm&page=2",
    ):
        assert masked(text) == text
    assert masked("see https://bob:pw@h/x and more") == "see https://***@h/x and more"
    assert masked("https://fn.example/api?code=FNCODE&x=1") == "https://fn.example/api?code=***&x=1"
