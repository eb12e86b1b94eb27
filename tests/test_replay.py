"""with_replay: record real exchanges, replay them with no network at all."""

import asyncio
import json

import httpx
import pytest
import respx
from toolz import pipe

import conduit as c
from tests.providers.helpers import raw

OPENAI = "https://api.openai.com/v1/chat/completions"
ANTHROPIC = "https://api.anthropic.com/v1/messages"


def test_record_then_replay_offline(tmp_path):
    cassette = tmp_path / "cassettes" / "chat.jsonl"
    req = c.request("gpt-4o", "What is 4200 + 42?", api_key="sk-test")
    with respx.mock:
        route = respx.post(OPENAI).mock(
            return_value=httpx.Response(200, content=raw("openai/chat_text.json"))
        )
        live = pipe(req, c.with_replay(cassette), c.openai_call)
        assert route.call_count == 1 and live["replayed"] is False
    with respx.mock:  # no routes: any network call would fail the test
        offline = pipe(req, c.with_replay(cassette, mode="replay"), c.openai_call)
    assert offline["replayed"] is True and offline["response"] == live["response"]
    line = json.loads(cassette.read_text().splitlines()[0])
    assert line["model"] == "gpt-4o" and line["messages"][0]["content"] == "What is 4200 + 42?"
    assert "sk-test" not in cassette.read_text()


def test_streams_replay_the_exact_recorded_events(tmp_path):
    cassette = tmp_path / "stream.jsonl"
    req = c.request("claude-haiku-4-5", "hi", api_key="sk-test")
    with respx.mock:
        respx.post(ANTHROPIC).mock(
            side_effect=lambda r: httpx.Response(200, content=raw("anthropic/stream_tool_use.sse"))
        )
        recorded = list(pipe(req, c.with_replay(cassette), c.anthropic_stream))
    with respx.mock:
        replayed = list(pipe(req, c.with_replay(cassette, mode="replay"), c.anthropic_stream))

        async def consume():
            return [
                e
                async for e in c.anthropic_astream(
                    pipe(req, c.with_replay(cassette, mode="replay"))
                )
            ]

        areplayed = asyncio.run(consume())
        called = pipe(req, c.with_replay(cassette, mode="replay"), c.anthropic_call)
    assert replayed == recorded == areplayed
    assert [e["type"] for e in recorded].count("tool_call_delta") == 4  # the original chunking
    assert called["response"] == c.collect(recorded)


def test_replay_mode_miss_says_how_to_record(tmp_path):
    with pytest.raises(c.ConduitError, match="no recorded exchange for this request"):
        pipe(
            c.request("m", "never seen"),
            c.with_replay(tmp_path / "x.jsonl", mode="replay"),
            c.mock_call,
        )


def test_record_mode_always_calls_and_the_latest_wins(tmp_path):
    cassette = tmp_path / "r.jsonl"
    script = c.mock_script(["first", "second"])
    req = c.request("m", "hi", mock=script)
    pipe(req, c.with_replay(cassette, mode="record"), c.mock_call)
    pipe(req, c.with_replay(cassette, mode="record"), c.mock_call)
    assert len(script.calls) == 2 and len(cassette.read_text().splitlines()) == 2
    assert c.content(pipe(req, c.with_replay(cassette), c.mock_call)) == "second"


def test_a_corrupt_cassette_names_its_line(tmp_path):
    cassette = tmp_path / "bad.jsonl"
    cassette.write_text('{"key": "a", "response": {}}\nnot json\n')
    with pytest.raises(c.ConduitError, match=r"bad\.jsonl:2 is not a JSON line"):
        pipe(c.request("m", "hi"), c.with_replay(cassette), c.mock_call)


def test_replay_input_errors(tmp_path):
    with pytest.raises(c.ValidationError, match="mode must be one of"):
        c.with_replay(tmp_path / "x.jsonl", mode="sometimes")
    with pytest.raises(c.ValidationError, match="with_replay takes a file"):
        c.with_replay(42)


def test_bare_replay_records_to_the_default_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ctx = pipe(c.request("m", "hi", mock="recorded"), c.with_replay, c.mock_call)
    assert c.content(ctx) == "recorded" and ctx["replayed"] is False
    assert (tmp_path / "conduit-replay.jsonl").exists()
    again = pipe(c.request("m", "hi", mock="different"), c.with_replay, c.mock_call)
    assert c.content(again) == "recorded" and again["replayed"] is True
