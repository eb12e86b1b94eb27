"""Amazon Bedrock (Converse / ConverseStream): real payloads decode to DESIGN shapes, recorded
requests are what the encoder writes, the event-stream framing survives any chunking and
refuses corruption, SigV4 matches botocore and an independent recomputation, and the whole
path works through c.call / c.acall / c.stream with credentials from the environment."""

import asyncio
import base64
import datetime
import hashlib
import hmac
import json
import logging
from urllib.parse import quote, urlsplit

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

import conduit as c
from conduit.providers import bedrock
from conduit.providers._eventstream import EventStreamDecoder, Message, encode_message, split
from tests.providers.helpers import chunkings, load, raw
from tests.providers.test_fixtures import assert_design_response

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN0123456789abcdef"
API_KEY = "bedrock-api-key-ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl"
MODEL = "us.amazon.nova-micro-v1:0"
URL = "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-micro-v1%3A0/converse"
STREAM_URL = URL + "-stream"
STREAMS = [
    "converse_stream_text",
    "converse_stream_tool_use",
    "converse_stream_reasoning",
    "converse_stream_redacted_reasoning",
]


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    """No AWS setting of the machine running the tests leaks in; none is looked up remotely."""
    for var in [*bedrock._AWS_ENV, "AWS_REGION", "AWS_DEFAULT_REGION", "BEDROCK_BASE_URL"]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv(bedrock.TOKEN_ENV, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def creds(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_REGION", "us-east-1")


def stream_bytes(name):
    return base64.b64decode(raw(f"bedrock/{name}.eventstream.b64"))


def decode(name, req=None):
    return bedrock.decode_chat(req or c.request(MODEL), load(f"bedrock/{name}.json"))["response"]


def decode_stream(data, cuts=()):
    framer, state, events = EventStreamDecoder("bedrock"), bedrock.stream_start(), []
    for piece in chunkings(data, cuts):
        state, out = bedrock._steps(state, framer.feed(piece))
        events += out
    state, out = bedrock._steps(state, framer.flush())
    return events + out + bedrock.stream_end(state)


def eventstream(data):
    return httpx.Response(
        200, content=data, headers={"content-type": "application/vnd.amazon.eventstream"}
    )


# --- real answers decode to DESIGN shapes -----------------------------------------------------


def test_converse_text():
    resp = decode("converse_text")
    assert_design_response(resp)
    assert resp["content"].startswith("Hello! How can I assist you today?")
    assert (resp["model"], resp["id"], resp["stop_reason"]) == (MODEL, None, "end_turn")
    assert resp["usage"] == {"input_tokens": 7, "output_tokens": 30, "total_tokens": 37}


def test_converse_tool_use():
    resp = decode("converse_tool_use")
    assert_design_response(resp)
    assert resp["stop_reason"] == "tool_use" and resp["content"] == ""
    assert resp["tool_calls"] == [
        {
            "id": "tooluse_Mj06ft-ITJik1Otgpkc1uA",
            "name": "temperature",
            "arguments": {"city": "London", "date": "2022-01-01"},
        }
    ]
    assert resp["usage"]["total_tokens"] == 593


def test_converse_reasoning_is_a_signed_block_before_the_text():
    body = load("bedrock/converse_reasoning.json")
    sent = body["output"]["message"]["content"][0]["reasoningContent"]["reasoningText"]
    resp = decode("converse_reasoning")
    assert_design_response(resp)
    thought, answer = resp["content"]
    assert thought == {"type": "reasoning", "text": sent["text"], "signature": sent["signature"]}
    assert answer["type"] == "text" and c.content(resp) == answer["text"]
    assert resp["usage"]["cache_read_tokens"] == 0


def test_converse_redacted_reasoning():
    body = load("bedrock/converse_redacted_reasoning.json")
    redacted = body["output"]["message"]["content"][0]["reasoningContent"]["redactedContent"]
    resp = decode("converse_redacted_reasoning")
    assert resp["content"][0] == {"type": "reasoning", "text": "", "redacted": redacted}
    assert c.content(resp).startswith("I notice you've sent")


def test_usage_counts_cached_prompt_tokens_as_input():
    resp = decode("converse_cache_usage")
    assert_design_response(resp)
    assert resp["usage"] == {
        "input_tokens": 13 + 1504,
        "output_tokens": 5,
        "total_tokens": 1522,  # Bedrock's own totalTokens
        "cache_read_tokens": 1504,
        "cache_creation_tokens": 0,
    }


def test_converse_after_documents():
    assert c.content(decode("converse_documents")).startswith("Based on the documents")


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("end_turn", "end_turn"),
        ("tool_use", "tool_use"),
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("model_context_window_exceeded", "max_tokens"),
    ],
)
def test_stop_reasons(reason, expected):
    body = {**load("bedrock/converse_text.json"), "stopReason": reason}
    assert bedrock.decode_chat(c.request(MODEL), body)["response"]["stop_reason"] == expected


def test_an_answer_of_the_wrong_shape_is_a_malformed_provider_error():
    with pytest.raises(c.ProviderError, match="malformed Converse answer"):
        bedrock.decode_chat(c.request(MODEL), {"output": {"message": {"content": [7]}}})


# --- real streams -------------------------------------------------------------------------


def test_stream_text():
    events = decode_stream(stream_bytes("converse_stream_text"))
    assert events[0] == {"type": "message_start"} and events[-1]["type"] == "message_end"
    resp = c.collect(events)
    assert resp["content"].startswith("The capital of France is Paris.")
    assert resp["usage"] == {"input_tokens": 13, "output_tokens": 82, "total_tokens": 95}
    assert resp["stop_reason"] == "end_turn"


def test_stream_tool_use():
    events = decode_stream(stream_bytes("converse_stream_tool_use"))
    kinds = [e["type"] for e in events]
    assert kinds.count("tool_call_start") == kinds.count("tool_call_end") == 1
    resp = c.collect(events)
    assert_design_response(resp)
    (call,) = resp["tool_calls"]
    assert (call["name"], call["arguments"]) == ("get_temperature", {"city": "Paris"})
    assert call["id"].startswith("tooluse_")
    assert resp["stop_reason"] == "tool_use" and resp["content"].startswith("<thinking>")
    assert resp["usage"]["total_tokens"] == 562


def test_stream_reasoning_is_signed():
    resp = c.collect(decode_stream(stream_bytes("converse_stream_reasoning")))
    thought, answer = resp["content"]
    assert thought["type"] == "reasoning" and thought["text"].startswith("The user has greeted")
    assert thought["signature"].startswith("Eu0CCkgI")
    assert answer["type"] == "text" and c.content(resp) == answer["text"]
    assert resp["usage"]["total_tokens"] == 109


def test_stream_redacted_reasoning():
    data = stream_bytes("converse_stream_redacted_reasoning")
    sent = [m for m in split(data)[0] if b"redactedContent" in m.payload]
    resp = c.collect(decode_stream(data))
    kinds = [b["type"] for b in resp["content"]]
    assert kinds == ["reasoning"] * len(sent) + ["text"] and len(sent) == 2
    for block, message in zip(resp["content"], sent, strict=False):
        redacted = json.loads(message.payload)["delta"]["reasoningContent"]["redactedContent"]
        assert block == {"type": "reasoning", "text": "", "redacted": redacted}
    assert c.content(resp).startswith("I notice you've sent")


@pytest.mark.parametrize("name", STREAMS)
@given(data=st.data())
def test_any_chunking_gives_the_same_events(name, data):
    whole = stream_bytes(name)
    cuts = data.draw(st.lists(st.integers(1, len(whole) - 1), max_size=40))
    assert decode_stream(whole, cuts) == decode_stream(whole)


@given(st.data())
def test_the_framing_round_trips(data):
    headers = data.draw(st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=20)))
    payload = data.draw(st.binary(max_size=200))
    frames = encode_message(headers, payload) * 2
    cuts = data.draw(st.lists(st.integers(1, len(frames) - 1), max_size=10))
    framer = EventStreamDecoder()
    messages = [m for piece in chunkings(frames, cuts) for m in framer.feed(piece)]
    assert messages == [Message(headers, payload)] * 2 and framer.flush() == []


@pytest.mark.parametrize(("at", "what"), [(5, "prelude CRC"), (40, "message CRC"), (-2, "message")])
def test_a_corrupted_stream_raises(at, what):
    frame = bytearray(stream_bytes("converse_stream_text")[:0x8F])  # the first message
    frame[at] ^= 0x01
    with pytest.raises(c.ConnectionError, match=f"corrupted event stream \\({what}"):
        EventStreamDecoder("bedrock").feed(bytes(frame))
    assert c.is_retryable(c.ConnectionError("x"))


def test_a_stream_cut_inside_a_message_or_before_message_stop_raises():
    data = stream_bytes("converse_stream_text")
    framer = EventStreamDecoder("bedrock")
    framer.feed(data[:-3])
    with pytest.raises(c.ConnectionError, match="ended inside a message"):
        framer.flush()
    messages, rest = split(data)
    assert rest == b""
    state, _ = bedrock._steps(bedrock.stream_start(), messages[:-2])  # no messageStop
    with pytest.raises(c.ConnectionError, match="before messageStop"):
        bedrock.stream_end(state)


def test_header_value_types():
    # value types 0-9 (botocore/eventstream.py's table); Bedrock sends strings only
    headers = (
        b"\x01t\x00"
        + b"\x01f\x01"
        + b"\x01b\x02\xff"
        + b"\x01s\x03\x00\x02"
        + b"\x01i\x04\x00\x00\x00\x03"
        + b"\x01l\x05"
        + (4).to_bytes(8, "big")
        + b"\x01y\x06\x00\x02ab"
        + b"\x01d\x08"
        + (5).to_bytes(8, "big")
        + b"\x01u\x09"
        + bytes(range(16))
    )
    import struct
    import zlib

    prelude = struct.pack(">II", 16 + len(headers), len(headers))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers
    (message,), _ = split(body + struct.pack(">I", zlib.crc32(body)))
    values = dict(message.headers)
    assert values.pop("u").bytes == bytes(range(16))
    assert values == {"t": True, "f": False, "b": -1, "s": 2, "i": 3, "l": 4, "y": b"ab", "d": 5}


def test_an_exception_event_raises_the_mapped_error():
    throttled = Message(
        {":message-type": "exception", ":exception-type": "throttlingException"},
        b'{"message":"Too many tokens, please wait before trying again."}',
    )
    with pytest.raises(c.RateLimitError, match="Too many tokens") as caught:
        bedrock.stream_step(bedrock.stream_start(), throttled)
    assert c.is_retryable(caught.value) and caught.value.status_code == 429
    invalid = Message(
        {":message-type": "exception", ":exception-type": "validationException"},
        b'{"message":"bad input"}',
    )
    with pytest.raises(c.BadRequestError):
        bedrock.stream_step(bedrock.stream_start(), invalid)


# --- recorded requests are what encode_chat writes ------------------------------------------


def encoded(req):
    return json.loads(
        json.dumps(bedrock.encode_chat(c.request(**req) if isinstance(req, dict) else req))
    )


def recorded(name):
    body = load(f"bedrock/{name}.json")
    if body.get("system") == []:  # pydantic-ai sends an empty system; Conduit leaves it out
        del body["system"]
    return body


def test_request_text():
    req = c.request(MODEL, [c.system("You are a chatbot."), c.user("Hello!")])
    assert encoded(req) == recorded("request_converse_text")


def tools_of(body):
    return [
        {
            "name": t["toolSpec"]["name"],
            "description": t["toolSpec"]["description"],
            "parameters": t["toolSpec"]["inputSchema"]["json"],
        }
        for t in body["toolConfig"]["tools"]
    ]


def test_request_tools_and_tool_result():
    body = load("bedrock/request_converse_tool_result.json")
    use = body["messages"][1]["content"][0]["toolUse"]
    messages = [
        c.system("You are a helpful chatbot."),
        c.user("What was the temperature in London 1st January 2022?"),
        c.assistant("", [{"id": use["toolUseId"], "name": use["name"], "arguments": use["input"]}]),
        c.tool_result(use["toolUseId"], "30°C"),
    ]
    req = c.request(MODEL, messages, tools=tools_of(body), tool_choice="required")
    assert encoded(req) == recorded("request_converse_tool_result")


def test_request_stream_with_tools_and_top_p():
    body = load("bedrock/request_converse_stream_tools.json")
    messages = [
        c.system("You are a helpful chatbot."),
        c.user("What is the temperature of the capital of France?"),
    ]
    req = c.request(MODEL, messages, tools=tools_of(body), top_p=0.5)
    assert json.loads(json.dumps(bedrock.encode_chat(req, True))) == recorded(
        "request_converse_stream_tools"
    )


def test_request_image():
    body = load("bedrock/request_converse_image.json")
    image = body["messages"][0]["content"][1]["image"]["source"]["bytes"]
    messages = [
        c.system("You are a helpful chatbot."),
        c.user([c.text_block("What is this vegetable?"), c.image_base64(image, "image/jpeg")]),
    ]
    assert encoded(c.request("us.amazon.nova-pro-v1:0", messages)) == recorded(
        "request_converse_image"
    )


def test_request_documents():
    body = load("bedrock/request_converse_documents.json")
    pdfs = [
        m["content"][1]["document"]["source"]["bytes"]
        for m in body["messages"]
        if m["role"] == "user" and len(m["content"]) == 2
    ]
    messages = [
        c.user(
            [
                c.text_block("Here is a PDF document: "),
                c.document_base64(pdfs[0], title="Document 1"),
            ]
        ),
        c.assistant("foo bar"),
        c.user(
            [
                c.text_block("Here is another PDF document: "),
                c.document_base64(pdfs[1], title="Document 2"),
            ]
        ),
        c.assistant("foo bar 2"),
        c.user("What is in the documents?"),
    ]
    assert encoded(c.request("m", messages)) == recorded("request_converse_documents")


@pytest.mark.parametrize(
    ("answer", "request_", "follow_up"),
    [
        (
            "converse_reasoning",
            "request_converse_reasoning_carried",
            "Considering the way to cross the street, analogously, how do I cross the river?",
        ),
        ("converse_redacted_reasoning", "request_converse_redacted_carried", "What was that?"),
    ],
)
def test_reasoning_goes_back_exactly_as_received(answer, request_, follow_up):
    """The recorded second turn is what reply() on the decoded first answer encodes to."""
    body = recorded(request_)
    first = body["messages"][0]["content"][0]["text"]
    thinking = body["additionalModelRequestFields"]["thinking"]
    ctx = bedrock.decode_chat(
        c.request(MODEL, first, thinking=thinking), load(f"bedrock/{answer}.json")
    )
    assert encoded(c.reply(ctx, follow_up)) == body


def test_options_mapping():
    req = c.request(
        MODEL,
        "hi",
        max_tokens=100,
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
        top_k=40,
        region="eu-west-1",
        guardrailConfig={"guardrailIdentifier": "g", "guardrailVersion": "1"},
        additionalModelRequestFields={"thinking": {"type": "enabled", "budget_tokens": 1024}},
    )
    body = encoded(req)
    assert body["inferenceConfig"] == {
        "maxTokens": 100,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END"],
    }
    assert body["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "top_k": 40,
    }
    assert body["guardrailConfig"] == {"guardrailIdentifier": "g", "guardrailVersion": "1"}
    assert "region" not in json.dumps(body)


def test_options_without_a_converse_meaning_are_dropped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="conduit"):
        body = encoded(c.request(MODEL, "hi", n=2, parallel_tool_calls=False))
    assert "additionalModelRequestFields" not in body and "'n'" in caplog.text


def test_tool_choice():
    tool = {"name": "f", "description": "d", "parameters": {"type": "object"}}
    for choice, wire in [
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        ("f", {"tool": {"name": "f"}}),
    ]:
        body = encoded(c.request(MODEL, "hi", tools=[tool], tool_choice=choice))
        assert body["toolConfig"]["toolChoice"] == wire
    assert "toolConfig" not in encoded(c.request(MODEL, "hi", tools=[tool], tool_choice="none"))


def test_response_format_is_a_forced_tool_and_auto_while_thinking():
    fmt = {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object"}}}
    body = encoded(c.request(MODEL, "hi", response_format=fmt))
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "city"}}
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": {"type": "object"}}
    thinking = {"type": "enabled", "budget_tokens": 1024}
    body = encoded(c.request(MODEL, "hi", response_format=fmt, thinking=thinking))
    assert body["toolConfig"]["toolChoice"] == {"auto": {}}
    assert "city tool" in body["system"][-1]["text"]
    with pytest.raises(c.ValidationError, match="no response_format"):
        bedrock.encode_chat(c.request(MODEL, "hi", response_format={"type": "json_object"}))
    tool = {"name": "weather", "description": "d", "parameters": {"type": "object"}}
    body = encoded(c.request(MODEL, "hi", response_format=fmt, tools=[tool]))
    assert body["toolConfig"]["toolChoice"] == {"any": {}}  # the caller's tools, or the answer
    assert [t["toolSpec"]["name"] for t in body["toolConfig"]["tools"]] == ["weather", "city"]
    assert "city tool" in body["system"][-1]["text"]


def test_blocks_bedrock_cannot_take_fail_before_any_call():
    with pytest.raises(c.ValidationError, match="cannot fetch a image from a URL"):
        bedrock.encode_chat(c.request(MODEL, [c.user([c.image_url("https://x/cat.png")])]))
    with pytest.raises(c.ValidationError, match="'audio' blocks"):
        bedrock.encode_chat(c.request(MODEL, [c.user([c.input_audio("AAAA", "wav")])]))
    with pytest.raises(c.ValidationError, match="empty"):
        bedrock.encode_chat(c.request(MODEL, [c.user("hi"), c.assistant("")]))
    data_url = bedrock.encode_chat(
        c.request(MODEL, [c.user([c.image_url("data:image/png;base64,iVBO")])])
    )
    assert data_url["messages"][0]["content"][0]["image"] == {
        "format": "png",
        "source": {"bytes": "iVBO"},
    }
    s3 = bedrock.encode_chat(c.request(MODEL, [c.user([c.document_url("s3://b/k/report.pdf")])]))
    assert s3["messages"][0]["content"][0]["document"] == {
        "name": "document-1",
        "format": "pdf",
        "source": {"s3Location": {"uri": "s3://b/k/report.pdf"}},
    }


def test_unsigned_reasoning_and_empty_text_are_not_sent_and_errors_are_status_error():
    msgs = [
        c.user("hi"),
        c.assistant([{"type": "reasoning", "text": "hmm"}, c.text_block("ok")]),
        c.tool_result("t1", "boom", is_error=True),
    ]
    body = bedrock.encode_chat(c.request(MODEL, msgs))
    assert body["messages"][1]["content"] == [{"text": "ok"}]
    assert body["messages"][2]["content"][0]["toolResult"]["status"] == "error"


# --- SigV4 ------------------------------------------------------------------------------


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_signature(method, url, headers, body, secret, region, service):
    """Signature Version 4 from its specification (docs.aws.amazon.com/IAM/latest/UserGuide/
    create-signed-request.html), independently of botocore: each path segment URI-encoded
    again (every service but S3), headers lower-cased and sorted, the payload hashed."""
    parts = urlsplit(url)
    path = "/".join(quote(seg, safe="-_.~") for seg in (parts.path or "/").split("/"))
    names = sorted(headers)
    canonical_headers = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
    payload = hashlib.sha256(body).hexdigest()
    canonical = "\n".join([method, path, parts.query, canonical_headers, ";".join(names), payload])
    stamp = headers["x-amz-date"]
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, digest])
    key = _hmac(("AWS4" + secret).encode(), stamp[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_the_independent_signer_matches_aws_published_vector():
    """AWS's SigV4 test suite, get-vanilla: the recomputation below is right."""
    headers = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}
    got = sigv4_signature(
        "GET", "https://example.amazonaws.com/", headers, b"", SECRET, "us-east-1", "service"
    )
    assert got == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"


FROZEN = datetime.datetime(2025, 3, 7, 12, 34, 56)


@pytest.fixture
def frozen_clock(monkeypatch):
    import botocore.auth

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: FROZEN)


@respx.mock
def test_the_wire_sends_the_sigv4_botocore_computes_and_the_spec_agrees(creds, frozen_clock):
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    route = respx.post(URL).mock(
        return_value=httpx.Response(200, content=raw("bedrock/converse_text.json"))
    )
    ctx = c.call(c.request(f"bedrock:{MODEL}", [c.system("You are a chatbot."), c.user("Hello!")]))
    assert c.content(ctx).startswith("Hello!")
    sent = route.calls.last.request
    body = sent.content
    assert json.loads(body) == recorded("request_converse_text")
    assert sent.url.raw_path == b"/model/us.amazon.nova-micro-v1%3A0/converse"

    # 1. botocore's own signer, on a request built here, gives the same Authorization
    theirs = botocore.awsrequest.AWSRequest(
        method="POST", url=URL, data=body, headers={"Content-Type": "application/json"}
    )
    frozen = botocore.credentials.Credentials(KEY_ID, SECRET, TOKEN)
    botocore.auth.SigV4Auth(frozen, "bedrock", "us-east-1").add_auth(theirs)
    assert sent.headers["Authorization"] == theirs.headers["Authorization"]
    assert sent.headers["X-Amz-Date"] == "20250307T123456Z"
    assert sent.headers["X-Amz-Security-Token"] == TOKEN

    # 2. the specification, recomputed by hand over the headers actually sent
    auth = sent.headers["Authorization"]
    assert auth.startswith(
        f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20250307/us-east-1/bedrock/aws4_request, "
    )
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert signed == ["content-type", "host", "x-amz-date", "x-amz-security-token"]
    values = {name: sent.headers[name] for name in signed}
    expected = sigv4_signature("POST", str(sent.url), values, body, SECRET, "us-east-1", "bedrock")
    assert auth.endswith(f"Signature={expected}")


@respx.mock
def test_each_attempt_is_signed_again(creds, monkeypatch):
    import botocore.auth

    clock = iter([FROZEN, FROZEN + datetime.timedelta(seconds=1)])
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: next(clock))
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(
                503,
                json={"message": "busy"},
                headers={"x-amzn-ErrorType": "ServiceUnavailableException"},
            ),
            httpx.Response(200, content=raw("bedrock/converse_text.json")),
        ]
    )
    req = c.with_retry(max_attempts=2, initial_delay=0)(c.request(f"bedrock:{MODEL}", "Hello!"))
    assert c.content(c.call(req)).startswith("Hello!")
    dates = [call.request.headers["X-Amz-Date"] for call in route.calls]
    assert dates == ["20250307T123456Z", "20250307T123457Z"]


@respx.mock
def test_a_bedrock_api_key_is_a_bearer_token_and_needs_no_aws_credentials(monkeypatch):
    monkeypatch.setenv(bedrock.TOKEN_ENV, API_KEY)
    route = respx.post("https://bedrock-runtime.eu-west-3.amazonaws.com/model/m/converse").mock(
        return_value=httpx.Response(200, content=raw("bedrock/converse_text.json"))
    )
    c.call(c.request("bedrock:m", "hi", region="eu-west-3"))
    headers = route.calls.last.request.headers
    assert headers["Authorization"] == f"Bearer {API_KEY}" and "X-Amz-Date" not in headers
    c.call(c.request("bedrock:m", "hi", region="eu-west-3", api_key="other-key-0123456789"))
    assert route.calls.last.request.headers["Authorization"] == "Bearer other-key-0123456789"


def test_no_credentials_and_no_region_say_what_to_set(monkeypatch):
    with pytest.raises(c.ValidationError, match="no AWS region for bedrock"):
        c.call(c.request("bedrock:m", "hi"))
    with pytest.raises(c.AuthenticationError, match=r"AWS_ACCESS_KEY_ID.*AWS_BEARER_TOKEN_BEDROCK"):
        c.call(c.request("bedrock:m", "hi", region="us-east-1"))


def test_region_order(monkeypatch, tmp_path):
    (tmp_path / "config").write_text("[default]\nregion = ap-south-1\n")
    assert bedrock.region_of(c.request("m")) == "ap-south-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-1")
    assert bedrock.region_of(c.request("m")) == "us-west-1"
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    assert bedrock.region_of(c.request("m")) == "us-west-2"
    assert bedrock.region_of(c.request("m", region="eu-central-1")) == "eu-central-1"


@respx.mock
def test_base_url_overrides_the_endpoint_and_is_signed_for_the_region(creds, monkeypatch):
    monkeypatch.setenv(
        "BEDROCK_BASE_URL", "https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com"
    )
    route = respx.post(
        "https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com/model/m/converse"
    ).mock(return_value=httpx.Response(200, content=raw("bedrock/converse_text.json")))
    c.call(c.request("bedrock:m", "hi"))
    assert "/us-east-1/bedrock/aws4_request" in route.calls.last.request.headers["Authorization"]
    other = respx.post("http://127.0.0.1:9/model/m/converse").mock(
        return_value=httpx.Response(200, content=raw("bedrock/converse_text.json"))
    )
    c.call(c.request("bedrock:m", "hi", base_url="http://127.0.0.1:9"))
    assert other.called


# --- end to end ------------------------------------------------------------------------------


@respx.mock
def test_call_acall_stream_and_astream(creds):
    respx.post(URL).mock(
        return_value=httpx.Response(200, content=raw("bedrock/converse_text.json"))
    )
    stream_route = respx.post(STREAM_URL).mock(
        side_effect=lambda r: eventstream(stream_bytes("converse_stream_text"))
    )
    req = c.request(f"bedrock:{MODEL}", [c.system("You are a chatbot."), c.user("Hello!")])
    ctx, actx = c.call(req), asyncio.run(c.acall(req))
    assert ctx["response"] == actx["response"] == decode("converse_text")
    assert ctx["model"] == f"bedrock:{MODEL}" and ctx["messages"] == req["messages"]
    assert ctx == c.bedrock_call(req.set("model", MODEL)).set("model", ctx["model"])

    events = list(c.stream(req))

    async def consume():
        return [e async for e in c.astream(req)]

    assert events == asyncio.run(consume()) == decode_stream(stream_bytes("converse_stream_text"))
    assert stream_route.calls.last.request.headers["X-Amz-Security-Token"] == TOKEN
    assert json.loads(stream_route.calls.last.request.content) == encoded(req.set("model", MODEL))


@respx.mock
def test_a_tool_use_agent_round_trip(creds):
    answers = iter([raw("bedrock/converse_tool_use.json"), raw("bedrock/converse_text.json")])
    route = respx.post(URL).mock(side_effect=lambda r: httpx.Response(200, content=next(answers)))

    @c.tool
    def temperature(city: str, date: str) -> str:
        """Get the temperature in a city on a specific date."""
        return f"30°C in {city} on {date}"

    req = c.request(f"bedrock:{MODEL}", "What was the temperature in London 1st January 2022?")
    ctx = c.agent(c.call, [temperature])(req)
    assert c.content(ctx).startswith("Hello!")
    second = json.loads(route.calls.last.request.content)
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["messages"][1]["content"][0]["toolUse"]["name"] == "temperature"
    result = second["messages"][2]["content"][0]["toolResult"]
    assert result == {
        "toolUseId": "tooluse_Mj06ft-ITJik1Otgpkc1uA",
        "content": [{"text": "30°C in London on 2022-01-01"}],
        "status": "success",
    }
    assert second["toolConfig"]["tools"][0]["toolSpec"]["name"] == "temperature"


@respx.mock
def test_with_schema_reads_the_forced_tool_call(creds):
    route = respx.post(URL).mock(
        return_value=httpx.Response(200, content=raw("bedrock/converse_tool_use.json"))
    )
    schema = {
        "title": "temperature",
        "type": "object",
        "properties": {"city": {"type": "string"}, "date": {"type": "string"}},
        "required": ["city", "date"],
    }
    ctx = c.with_schema(schema)(c.request(f"bedrock:{MODEL}", "London, 1 January 2022?"))
    ctx = c.call(ctx)
    assert ctx["parsed"] == {"city": "London", "date": "2022-01-01"}
    sent = json.loads(route.calls.last.request.content)
    assert sent["toolConfig"]["toolChoice"] == {"tool": {"name": "temperature"}}


# --- errors ----------------------------------------------------------------------------------


@respx.mock
def test_a_recorded_validation_error(creds):
    body = raw("bedrock/error_400_validation.json")
    respx.post(URL).mock(
        return_value=httpx.Response(
            400,
            content=body,
            headers={
                "x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
            },
        )
    )
    with pytest.raises(
        c.BadRequestError, match="The provided model identifier is invalid"
    ) as caught:
        c.call(c.request(f"bedrock:{MODEL}", "hello"))
    assert not c.is_retryable(caught.value)


@respx.mock
def test_throttling_is_a_retryable_rate_limit_error(creds):
    busy = httpx.Response(
        429,
        json={"message": "Too many requests, please wait before trying again."},
        headers={"x-amzn-ErrorType": "ThrottlingException"},
    )
    ok = httpx.Response(200, content=raw("bedrock/converse_text.json"))
    route = respx.post(URL).mock(side_effect=[busy, busy, ok])
    with pytest.raises(c.RateLimitError, match="Too many requests") as caught:
        c.call(c.request(f"bedrock:{MODEL}", "hello"))
    assert c.is_retryable(caught.value) and caught.value.status_code == 429
    req = c.with_retry(max_attempts=2, initial_delay=0)(c.request(f"bedrock:{MODEL}", "hello"))
    ctx = c.call(req)
    assert c.content(ctx) and ctx["attempts"] == 2 and route.call_count == 3


@respx.mock
def test_a_throttling_exception_inside_a_stream(creds):
    frames = stream_bytes("converse_stream_text")[:0x8F] + encode_message(
        {
            ":message-type": "exception",
            ":exception-type": "throttlingException",
            ":content-type": "application/json",
        },
        b'{"message":"Too many tokens, please wait before trying again."}',
    )
    respx.post(STREAM_URL).mock(side_effect=lambda r: eventstream(frames))
    with pytest.raises(c.RateLimitError, match="Too many tokens"):
        list(c.stream(c.request(f"bedrock:{MODEL}", "hello")))


@respx.mock
def test_credentials_never_appear_in_a_failed_calls_error(creds):
    """AWS's signature-mismatch answer quotes the canonical request, session token included."""

    def answer(request):
        echo = f"The request signature we calculated does not match. x-amz-security-token:{TOKEN}"
        return httpx.Response(
            403, json={"message": echo}, headers={"x-amzn-ErrorType": "InvalidSignatureException"}
        )

    respx.post(URL).mock(side_effect=answer)
    with pytest.raises(c.AuthenticationError) as caught:  # the signature, not a permission
        c.call(c.request(f"bedrock:{MODEL}", "hello"))
    err = caught.value
    shown = f"{err} {err!r} {err.body!r} {err.data!r}"
    assert TOKEN not in shown and SECRET not in shown and "signature we calculated" in shown


@respx.mock
def test_a_bedrock_api_key_never_appears_in_an_error(monkeypatch):
    monkeypatch.setenv(bedrock.TOKEN_ENV, API_KEY)
    respx.post(URL).mock(return_value=httpx.Response(403, json={"message": f"bad key {API_KEY}"}))
    with pytest.raises(c.PermissionDeniedError) as caught:
        c.call(c.request(f"bedrock:{MODEL}", "hello", region="us-east-1"))
    assert API_KEY not in f"{caught.value} {caught.value.body!r}"


@respx.mock
def test_secret_key_and_signature_are_masked_even_if_echoed(creds):
    def answer(request):
        echo = f"{SECRET} {request.headers['Authorization']}"
        return httpx.Response(403, json={"message": echo})

    respx.post(URL).mock(side_effect=answer)
    with pytest.raises(c.PermissionDeniedError) as caught:
        c.call(c.request(f"bedrock:{MODEL}", "hello"))
    assert SECRET not in str(caught.value) and "Signature=" not in str(caught.value)


def test_document_titles_become_names_bedrock_accepts():
    req = c.request("m", [c.user("read", c.document_base64("QUJD", title="Q3 report.pdf"))])
    doc = bedrock.encode_chat(req)["messages"][0]["content"][1]["document"]
    assert doc["name"] == "Q3 report-pdf"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("bedrock/error_403_unrecognized_client.json", c.AuthenticationError),
        ("gemini/error_400_api_key_invalid.json", c.AuthenticationError),
    ],
)
def test_a_key_the_provider_does_not_accept_is_an_authentication_error(answer, expected):
    """Gemini says 400 and AWS 403 for a key that is not valid; both mean the credentials."""
    recorded = json.loads(raw(answer))
    status, headers, body = (
        (recorded["status"], recorded["headers"], recorded["body"])
        if "status" in recorded
        else (400, {}, recorded)
    )
    provider = answer.split("/")[0]
    err = c.errors.error_from_response(provider, status, headers, json.dumps(body).encode())
    assert type(err) is expected and err.status_code == status
    plain = c.errors.error_from_response(provider, status, {}, b'{"message": "no"}')
    assert type(plain) is not expected  # the status alone says bad request / forbidden
    denied = {"x-amzn-ErrorType": "AccessDeniedException:http://internal.amazon.com/coral/"}
    assert (
        type(c.errors.error_from_response("bedrock", 403, denied, b"{}")) is c.PermissionDeniedError
    )
