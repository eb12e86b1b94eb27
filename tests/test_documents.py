"""Document and audio blocks: builders, checks, and Anthropic request bodies equal to the official
SDK's for the same inputs (captured on the SDK's own httpx2 transport), thinking included."""

import json
import warnings

import anthropic as anthropic_sdk
import httpx
import pytest
import respx

import conduit as c
from conduit.providers import anthropic
from tests.providers.helpers import load, raw
from tests.providers.test_sdk_conformance import KEY, MODEL, _conduit_body, _sdk_client

URL = "https://api.anthropic.com/v1/messages"
PDF = load("anthropic/request_document_base64.json")["messages"][0]["content"][1]["source"]["data"]
PDF_URL = "https://www.w3.org/WAI/ER/tests/xhtml/testfiles/resources/pdf/dummy.pdf"


def test_builders_make_design_blocks():
    assert c.document_base64(PDF) == {
        "type": "document",
        "source": {"type": "base64", "data": PDF, "media_type": "application/pdf"},
    }
    assert c.document_url(PDF_URL, title="Dummy") == {
        "type": "document",
        "source": {"type": "url", "url": PDF_URL},
        "title": "Dummy",
    }
    assert c.input_audio("UklGRg==", "wav") == {
        "type": "audio",
        "source": {"type": "base64", "data": "UklGRg==", "media_type": "audio/wav"},
    }
    assert c.input_audio("SUQz", "mp3")["source"]["media_type"] == "audio/mpeg"


def test_blocks_are_checked():
    with pytest.raises(c.ValidationError, match="title"):
        c.document_url(PDF_URL, title=3)
    with pytest.raises(c.ValidationError, match="format"):
        c.input_audio("UklGRg==", "")
    bad = {"type": "audio", "source": {"type": "url", "url": "https://x/a.wav"}}
    with pytest.raises(c.ValidationError, match="audio is sent inline"):
        c.user("listen", bad)


def test_documents_travel_in_user_messages():
    req = c.request("m", [c.user("Sum up", c.document_base64(PDF, title="T"))])
    assert [b["type"] for b in req["messages"][0]["content"]] == ["text", "document"]
    assert c.content(req["messages"][0]) == "Sum up"


def test_anthropic_refuses_audio_by_name():
    req = c.request("claude", [c.user("Transcribe", c.input_audio("UklGRg==", "wav"))])
    with pytest.raises(c.ValidationError, match="anthropic cannot take audio"):
        anthropic.encode_chat(req)


# --- the SDK's bodies --------------------------------------------------------------------------

SIGNED = load("anthropic/message_thinking_tool_use.json")
THINK = SIGNED["content"][0]

CASES = {
    "document_base64": (
        [c.user("What is in this PDF?", c.document_base64(PDF))],
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this PDF?"},
                        {
                            "type": "document",
                            "source": {
                                "type": "base64",
                                "data": PDF,
                                "media_type": "application/pdf",
                            },
                        },
                    ],
                }
            ]
        },
        {},
    ),
    "document_url_titled": (
        [c.user("What is this?", c.document_url(PDF_URL, title="Dummy"))],
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {
                            "type": "document",
                            "source": {"type": "url", "url": PDF_URL},
                            "title": "Dummy",
                        },
                    ],
                }
            ]
        },
        {},
    ),
    "thinking": (
        [c.user("How many primes below 400 contain 79?")],
        {
            "messages": [{"role": "user", "content": "How many primes below 400 contain 79?"}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
        },
        {"thinking": {"type": "enabled", "budget_tokens": 1024}},
    ),
    "thinking_tool_turn": (
        [
            c.user("Largest city in the user country?"),
            c.assistant(
                [
                    {
                        "type": "reasoning",
                        "text": THINK["thinking"],
                        "signature": THINK["signature"],
                    },
                    c.text_block("Let me check."),
                ],
                [{"id": "toolu_1", "name": "get_user_country", "arguments": {}}],
            ),
            c.tool_result("toolu_1", "Mexico"),
        ],
        {
            "messages": [
                {"role": "user", "content": "Largest city in the user country?"},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "thinking",
                            "thinking": THINK["thinking"],
                            "signature": THINK["signature"],
                        },
                        {"type": "text", "text": "Let me check."},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "get_user_country",
                            "input": {},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Mexico"}
                    ],
                },
            ],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
        },
        {"thinking": {"type": "enabled", "budget_tokens": 1024}},
    ),
    "redacted_thinking_turn": (
        [
            c.user("Hi"),
            c.assistant([{"type": "reasoning", "text": "", "redacted": "EvgFCkYIBxgC"}, "Hello."]),
            c.user("Again"),
        ],
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "redacted_thinking", "data": "EvgFCkYIBxgC"},
                        {"type": "text", "text": "Hello."},
                    ],
                },
                {"role": "user", "content": "Again"},
            ],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
        },
        {"thinking": {"type": "enabled", "budget_tokens": 1024}},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@respx.mock
def test_anthropic_body_matches_the_sdk(case):
    messages, sdk_kwargs, conduit_opts = CASES[case]
    route = respx.post(URL).mock(
        return_value=httpx.Response(200, content=raw("anthropic/message_text.json"))
    )
    http, seen = _sdk_client("anthropic/message_text.json")
    sdk = anthropic_sdk.Anthropic(api_key=KEY, max_retries=0, http_client=http)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        sdk.messages.create(model=MODEL, max_tokens=2048, **sdk_kwargs)
    c.anthropic_call(c.request(MODEL, messages, api_key=KEY, max_tokens=2048, **conduit_opts))
    assert _conduit_body(route) == json.loads(seen[0].content)


@respx.mock
def test_anthropic_thinking_stream_body_matches_the_sdk():
    route = respx.post(URL).mock(
        side_effect=lambda r: httpx.Response(
            200,
            content=raw("anthropic/stream_thinking.sse"),
            headers={"content-type": "text/event-stream"},
        )
    )
    http, seen = _sdk_client("anthropic/stream_thinking.sse", stream=True)
    sdk = anthropic_sdk.Anthropic(api_key=KEY, max_retries=0, http_client=http)
    thinking = {"type": "enabled", "budget_tokens": 6400}
    messages = [{"role": "user", "content": "How many primes below 400 contain 79?"}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with sdk.messages.stream(
            model=MODEL, max_tokens=16000, messages=messages, thinking=thinking
        ) as s:
            final = s.get_final_message()
    req = c.request(MODEL, messages, api_key=KEY, max_tokens=16000, thinking=thinking)
    resp = c.collect(c.anthropic_stream(req))
    assert _conduit_body(route) == json.loads(seen[0].content)
    # and the SDK's own assembly of the stream agrees with Conduit's
    sdk_thinking = final.content[0]
    assert resp["content"][0]["text"] == sdk_thinking.thinking
    assert resp["content"][0]["signature"] == sdk_thinking.signature
    assert c.content({"response": resp}) == final.content[1].text
