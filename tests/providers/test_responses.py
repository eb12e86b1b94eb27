"""OpenAI's Responses API on the real wire (conduit/providers/responses.py).

Every recorded payload decodes to DESIGN §2 shapes; streams parse the same under any chunking and
collect to what the stream's own ``response.completed`` decodes to; the recorded requests are what
the encoder writes for the same conversation; bodies equal the official SDK's for the same
inputs; an agent with reasoning and tools completes against a server that rejects a tool turn
whose reasoning item was not carried back, called, awaited and streamed.
"""

import asyncio
import json

import httpx
import httpx2
import openai as openai_sdk
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st
from openai.types.responses import Response

import conduit as c
from conduit.providers import responses
from conduit.request import response_message
from conduit.sse import iter_sse
from tests.providers.helpers import chunkings, load, raw
from tests.providers.test_fixtures import assert_design_response

URL = "https://api.openai.com/v1/responses"
DIR = "openai_responses/"
KEY = "sk-test-responses"


def fixture(name):
    return load(DIR + name)


def decode(body, req=None):
    return responses.decode_chat(req or c.request("m"), body)["response"]


def decode_stream(chunks):
    state, events = responses.stream_start(), []
    for sse in iter_sse(chunks):
        state, out = responses.stream_step(state, sse)
        events.extend(out)
    return events + responses.stream_end(state)


def completed(name):
    """The response object of a recorded stream's last event (response.completed)."""
    lines = [ln for ln in raw(DIR + name).decode().splitlines() if ln.startswith("data: ")]
    last = json.loads(lines[-1][len("data: ") :])
    assert last["type"] == "response.completed"
    return last["response"]


def design_block(block):
    if block["type"] == "text":
        return set(block) == {"type", "text"}
    return set(block) <= {"type", "text", "signature", "redacted"} and block["type"] == "reasoning"


# --- decoding ---------------------------------------------------------------------------------

RESPONSES = [
    "response_output_text.json",
    "response_function_calls.json",
    "response_reasoning.json",
    "response_structured_output.json",
    "response_reasoning_encrypted_function_call.json",
    "response_after_function_call_output.json",
]


@pytest.mark.parametrize("name", RESPONSES)
def test_every_response_decodes_to_design_shapes(name):
    resp = decode(fixture(name))
    assert_design_response(resp)
    if not isinstance(resp["content"], str):
        assert all(design_block(b) for b in resp["content"])
    assert c.collect(c.response_events(resp)) == resp


def test_azure_v1_endpoint_response_decodes():
    resp = decode(load("azure/responses_v1_endpoint.json"))
    assert_design_response(resp)
    assert resp["content"] == "Paris" and resp["model"] == "gpt-5.4"


def test_output_text_values():
    body = fixture("response_output_text.json")
    resp = decode(body)
    assert resp["content"] == "4200 + 42 equals 4242."
    assert resp["id"] == body["id"] and resp["model"] == "gpt-4o-2024-08-06"
    assert resp["stop_reason"] == "end_turn"
    assert resp["usage"] == {
        "input_tokens": 16,
        "output_tokens": 11,
        "total_tokens": 27,
        "cache_read_tokens": 0,
    }


def test_function_calls_become_tool_calls():
    resp = decode(fixture("response_function_calls.json"))
    assert resp["stop_reason"] == "tool_use"
    assert [(t["id"], t["name"], t["arguments"]["password"]) for t in resp["tool_calls"]] == [
        ("call_bzXaB1HDWsWy7n6bMrxJzNNa", "secret_retrieval_tool", "mellon"),
        ("call_Dd4wvykCr6NttXKxRK0BFH96", "secret_retrieval_tool", "radiance"),
    ]


def test_reasoning_becomes_a_block_that_keeps_the_item():
    body = fixture("response_reasoning_encrypted_function_call.json")
    item = body["output"][0]
    resp = decode(body)
    (block,) = resp["content"]
    assert block["type"] == "reasoning"
    assert block["text"] == "\n\n".join(s["text"] for s in item["summary"])
    assert json.loads(block["signature"]) == item
    assert resp["usage"]["reasoning_tokens"] == 1792
    assert c.content({"response": resp}) == ""


def test_reasoning_then_text():
    resp = decode(fixture("response_reasoning.json"))
    assert [b["type"] for b in resp["content"]] == ["reasoning", "text"]
    assert c.content({"response": resp}) == "3"


def _sdk_response(**fields):
    """A Responses body as the official SDK's own model writes it (no hand-made wire)."""
    base = completed("stream_after_function_call_output.sse")  # a recent body the SDK validates
    return Response.model_validate({**base, **fields}).model_dump(mode="json")


def test_refusal_is_a_stop_reason_with_the_text():
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "refusal", "refusal": "I can't help with that."}],
    }
    resp = decode(_sdk_response(output=[message]))
    assert resp["stop_reason"] == "refusal" and resp["refusal"] == "I can't help with that."


@pytest.mark.parametrize(
    ("reason", "stop"), [("max_output_tokens", "max_tokens"), ("content_filter", "content_filter")]
)
def test_incomplete_responses(reason, stop):
    body = _sdk_response(status="incomplete", incomplete_details={"reason": reason})
    assert decode(body)["stop_reason"] == stop


def test_malformed_answers_are_provider_errors():
    with pytest.raises(c.ProviderError, match="output"):
        decode({"output": 3})
    with pytest.raises(c.ProviderError, match="malformed"):
        decode({"id": "x"})


@respx.mock
def test_http_errors_map_through_the_shared_table():
    respx.post(URL).mock(return_value=httpx.Response(400, json=fixture("error_400.json")))
    with pytest.raises(c.BadRequestError, match="temperature") as err:
        c.responses_call(c.request("gpt-4o", "hi", api_key=KEY, temperature=-1))
    assert err.value.status_code == 400 and KEY not in str(err.value)


def test_failed_response_body_raises_the_mapped_error():
    failed = _sdk_response(
        status="failed", error={"code": "rate_limit_exceeded", "message": "slow down"}
    )
    with pytest.raises(c.RateLimitError, match="slow down"):
        decode(failed)


# --- streams ----------------------------------------------------------------------------------

STREAMS = [
    "stream_output_text.sse",
    "stream_function_calls.sse",
    "stream_reasoning.sse",
    "stream_reasoning_encrypted_function_call.sse",
    "stream_after_function_call_output.sse",
]


def _without_encrypted(resp):
    """The response with each reasoning item's encrypted content left out of its signature."""
    if isinstance(resp["content"], str):
        return resp
    blocks = []
    for b in resp["content"]:
        if b["type"] == "reasoning":
            item = json.loads(b["signature"])
            item.pop("encrypted_content", None)
            b = b.set("signature", json.dumps(item))
        blocks.append(b)
    return resp.set("content", tuple(blocks))


@pytest.mark.parametrize("name", STREAMS)
def test_streams_collect_to_their_completed_response(name):
    events = decode_stream([raw(DIR + name)])
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_end"
    collected = c.collect(events)
    assert_design_response(collected)
    expected = decode(completed(name))
    if name == "stream_reasoning_encrypted_function_call.sse":
        # the API encrypts the reasoning anew for response.completed; the item to send back is
        # output_item.done's (the SDK's note, and the recorded next request), checked below
        collected, expected = _without_encrypted(collected), _without_encrypted(expected)
    assert collected == expected


def test_streamed_reasoning_keeps_the_done_items_encrypted_content():
    collected = c.collect(
        decode_stream([raw(DIR + "stream_reasoning_encrypted_function_call.sse")])
    )
    sent = fixture("request_stream_reasoning_replay.json")["input"][1]
    assert (
        json.loads(collected["content"][0]["signature"])["encrypted_content"]
        == (sent["encrypted_content"])
    )
    assert collected["tool_calls"][0]["arguments"] == {"country": "PotatoLand"}


def test_streamed_reasoning_summary_parts_join_like_the_decoded_ones():
    collected = c.collect(decode_stream([raw(DIR + "stream_reasoning.sse")]))
    decoded = decode(completed("stream_reasoning.sse"))
    assert collected["content"][0]["text"] == decoded["content"][0]["text"]
    assert collected["content"][0]["text"].count("\n\n**") >= 2


@pytest.mark.parametrize("name", STREAMS)
@given(data=st.data())
def test_streams_parse_the_same_under_any_chunking(name, data):
    body = raw(DIR + name)
    cuts = data.draw(st.lists(st.integers(1, len(body) - 1), max_size=12))
    assert decode_stream(chunkings(body, cuts)) == decode_stream([body])


def _sse(payload_lines):
    return "".join(f"data: {line}\n\n" for line in payload_lines).encode()


def test_stream_error_event_raises_the_mapped_error():
    lines = raw(DIR + "stream_error_insufficient_quota.chunks.txt").decode().splitlines()
    with pytest.raises(c.RateLimitError, match="quota"):
        decode_stream([_sse(lines)])


def test_stream_failed_event_raises():
    lines = raw(DIR + "stream_error_insufficient_quota.chunks.txt").decode().splitlines()
    failed = [ln for ln in lines if '"error"' not in ln[:30]]  # created, in_progress, failed
    with pytest.raises(c.RateLimitError, match="quota"):
        decode_stream([_sse(failed)])


def test_a_cut_stream_is_a_retryable_connection_error():
    body = raw(DIR + "stream_output_text.sse")
    cut = body[: body.index(b"event: response.completed")]
    with pytest.raises(c.ConnectionError) as err:
        decode_stream([cut])
    assert c.is_retryable(err.value)


# --- encoding: the recorded requests ------------------------------------------------------------

SECRET_TOOL = {
    "name": "secret_retrieval_tool",
    "description": "A tool that requires a password to retrieve a secret.",
    "parameters": {
        "properties": {"password": {"title": "Password", "type": "string"}},
        "required": ["password"],
        "additionalProperties": False,
        "type": "object",
    },
    "strict": False,
}
SECRET_ASK = "Please retrieve the secrets associated with each of these passwords: mellon,radiance"


def _without(body, *keys):
    return {k: v for k, v in body.items() if k not in keys}


def _wire_items(items):
    """Input items without what Conduit's messages do not hold: the ids and statuses of output
    items (Conduit sends them stateless, without ids) and the empty annotations/logprobs."""
    out = []
    for item in items:
        item = _without(item, "id", "status", "phase")
        if item.get("type") == "message":
            item["content"] = [_without(p, "annotations", "logprobs") for p in item["content"]]
        out.append(item)
    return out


def test_request_tools_is_reproduced():
    req = c.request("gpt-4o", [c.system("Use parallel tool calling."), c.user(SECRET_ASK)])
    body = responses.encode_chat(req.set("tools", c.request("m", tools=[SECRET_TOOL])["tools"]))
    assert _without(body, "store") == fixture("request_tools.json")


def _tools(req, *tools):
    return req.set("tools", c._data.freeze(list(tools)))


def test_request_function_call_outputs_is_reproduced():
    recorded = fixture("request_function_call_outputs.json")
    first = decode(fixture("response_function_calls.json"))
    calls = first["tool_calls"]
    req = c.request(
        "gpt-4o",
        [
            c.system("Use parallel tool calling."),
            c.user(SECRET_ASK),
            c.assistant("", calls),
            c.tool_result(calls[0]["id"], "Welcome to Moria!"),
            c.tool_result(calls[1]["id"], "Life before Death"),
        ],
    )
    body = responses.encode_chat(_tools(req, SECRET_TOOL))
    assert _without(body, "store", "input") == _without(recorded, "input")
    assert body["input"] == _wire_items(recorded["input"])


def test_request_structured_output_is_reproduced():
    recorded = fixture("request_structured_output.json")
    fmt = recorded["text"]["format"]
    spec = {k: v for k, v in fmt.items() if k != "type"}
    req = c.request(
        "gpt-4o",
        "Please recommend the most popular book by Patrick Rothfuss",
        response_format={"type": "json_schema", "json_schema": spec},
    )
    assert _without(responses.encode_chat(req), "store") == recorded


def test_request_reasoning_carried_by_reference_is_reproduced():
    """The recorded turn was stored (the API's default): its reasoning item goes back by id."""
    recorded = fixture("request_reasoning_carried.json")
    first = decode(fixture("response_reasoning.json"))
    question = recorded["input"][0]["content"]
    req = c.request(
        "gpt-5",
        [c.user(question), response_message(first), c.user(recorded["input"][3]["content"])],
        reasoning_effort="minimal",
        store=True,
    )
    body = responses.encode_chat(req)
    expected = _wire_items(recorded["input"])
    expected[1] = recorded["input"][1]  # the reasoning item exactly as received, its id too
    assert body["input"] == expected
    assert _without(body, "store", "include", "input") == _without(recorded, "input")


def test_stored_reasoning_is_left_out_when_nothing_is_stored():
    first = decode(fixture("response_reasoning.json"))
    req = c.request("gpt-5", [c.user("q"), response_message(first), c.user("more")])
    body = responses.encode_chat(req)
    assert [i.get("type", i.get("role")) for i in body["input"]] == ["user", "message", "user"]


def test_request_reasoning_encrypted_replay_is_reproduced():
    """pydantic-ai's second turn (reasoning with encrypted content, a function call and its
    output), modulo item ids: Conduit sends the encrypted item without its id."""
    recorded = fixture("request_reasoning_encrypted_replay.json")
    first = decode(fixture("response_reasoning_encrypted_function_call.json"))
    call = first["tool_calls"][0]
    tool = {
        "name": "update_plan",
        "parameters": recorded["tools"][0]["parameters"],
    }
    req = c.request(
        "gpt-5",
        [
            c.user(recorded["input"][0]["content"]),
            response_message(first),
            c.tool_result(call["id"], "plan updated"),
        ],
        instructions=recorded["instructions"],
        reasoning={"effort": "low", "summary": "detailed"},
        tool_choice="auto",
    )
    body = responses.encode_chat(_tools(req, tool))
    assert body["input"] == _wire_items(recorded["input"])
    expected = _without(recorded, "input", "stream")
    expected["tools"] = [_without(t, "description") for t in expected["tools"]]
    assert _without(body, "input", "store") == expected
    assert body["store"] is False


def test_request_stream_reasoning_replay_is_reproduced():
    recorded = fixture("request_stream_reasoning_replay.json")
    first = c.collect(decode_stream([raw(DIR + "stream_reasoning_encrypted_function_call.sse")]))
    call = first["tool_calls"][0]
    req = c.request(
        "gpt-5.5",
        [
            c.user(recorded["input"][0]["content"]),
            response_message(first),
            c.tool_result(call["id"], "Potato City"),
        ],
        instructions=recorded["instructions"],
        tool_choice="auto",
    )
    tool = {"name": "get_capital", "parameters": recorded["tools"][0]["parameters"]}
    body = responses.encode_chat(_tools(req, tool), stream=True)
    expected = _wire_items(recorded["input"])
    # pydantic-ai's recorder NFKC-normalised the text (its curly quotes became straight ones)
    expected[2]["content"][0]["text"] = first["content"][1]["text"]
    assert body["input"] == expected
    wanted = _without(recorded, "input")
    wanted["tools"] = [_without(t, "description") for t in wanted["tools"]]
    assert _without(body, "input", "store") == wanted


# --- encoding: options ----------------------------------------------------------------------------


def test_options_mapping():
    req = c.request(
        "gpt-5-mini",
        "hi",
        max_tokens=100,
        reasoning_effort="high",
        reasoning={"summary": "auto"},
        temperature=0.3,  # gpt-5 refuses it: left out by the catalog
        tool_choice="get_weather",
        parallel_tool_calls=False,
        include=["message.output_text.logprobs"],
    )
    body = responses.encode_chat(req)
    assert body["max_output_tokens"] == 100 and "max_tokens" not in body
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert "temperature" not in body
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body["parallel_tool_calls"] is False
    assert body["include"] == ["message.output_text.logprobs", "reasoning.encrypted_content"]
    assert body["store"] is False


def test_non_reasoning_models_are_not_asked_for_encrypted_reasoning():
    body = responses.encode_chat(c.request("gpt-4o", "hi", temperature=0.3, store=True))
    assert "include" not in body and body["temperature"] == 0.3 and body["store"] is True


def test_user_blocks_become_input_parts():
    pdf = c.document_base64("JVBERi0=", title="paper.pdf")
    msg = c.user(
        "Look", c.image_url("https://x/cat.png"), c.image_base64("QUJD", "image/jpeg"), pdf
    )
    body = responses.encode_chat(
        c.request("gpt-4o", [msg, c.user(c.document_url("https://x/a.pdf"))])
    )
    assert body["input"][0]["content"] == [
        {"type": "input_text", "text": "Look"},
        {"type": "input_image", "image_url": "https://x/cat.png"},
        {"type": "input_image", "image_url": "data:image/jpeg;base64,QUJD"},
        {
            "type": "input_file",
            "filename": "paper.pdf",
            "file_data": "data:application/pdf;base64,JVBERi0=",
        },
    ]
    assert body["input"][1]["content"] == [{"type": "input_file", "file_url": "https://x/a.pdf"}]


def test_other_providers_reasoning_is_left_out():
    turn = c.assistant(
        [{"type": "reasoning", "text": "hm", "signature": "anthropic-sig"}, c.text_block("4")]
    )
    body = responses.encode_chat(c.request("gpt-5", [c.user("2+2?"), turn, c.user("and 3+3?")]))
    assert body["input"][1] == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "4"}],
    }


# --- the official SDK sends the same bodies -------------------------------------------------------

WEATHER = {
    "name": "get_weather",
    "description": "Get the weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
CITY = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
    "additionalProperties": False,
}
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
CALL = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}

# case: (model, conduit messages, conduit options, SDK keyword arguments)
SDK_CASES = {
    "text": ("gpt-4o", [c.user("Hello!")], {}, {"input": [{"role": "user", "content": "Hello!"}]}),
    "instructions": (
        "gpt-4o",
        [c.user("Hi")],
        {"instructions": "Be brief.", "temperature": 0.2, "max_tokens": 50, "top_p": 0.9},
        {
            "input": [{"role": "user", "content": "Hi"}],
            "instructions": "Be brief.",
            "temperature": 0.2,
            "max_output_tokens": 50,
            "top_p": 0.9,
        },
    ),
    "system_message": (
        "gpt-4o",
        [c.system("Be brief."), c.user("Hi")],
        {},
        {
            "input": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ]
        },
    ),
    "tools": (
        "gpt-4o",
        [c.user("Weather in Paris?")],
        {"tools": [WEATHER], "tool_choice": "get_weather"},
        {
            "input": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [{"type": "function", **WEATHER, "strict": False}],
            "tool_choice": {"type": "function", "name": "get_weather"},
        },
    ),
    "function_call_outputs": (
        "gpt-4o",
        [c.user("Weather in Paris?"), c.assistant("", [CALL]), c.tool_result("call_1", "18C")],
        {"tools": [WEATHER]},
        {
            "input": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                },
                {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
            ],
            "tools": [{"type": "function", **WEATHER, "strict": False}],
        },
    ),
    "images": (
        "gpt-4o",
        [c.user("What is this?", c.image_url("https://example.com/cat.png"), c.image_base64(PNG))],
        {},
        {
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": "https://example.com/cat.png"},
                        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
                    ],
                }
            ]
        },
    ),
    "structured_output": (
        "gpt-4o",
        [c.user("Give me a city")],
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": CITY},
            }
        },
        {
            "input": [{"role": "user", "content": "Give me a city"}],
            "text": {
                "format": {"type": "json_schema", "name": "city", "schema": CITY, "strict": True}
            },
        },
    ),
    "reasoning_effort": (
        "gpt-5-mini",
        [c.user("Think.")],
        {"reasoning_effort": "low", "max_tokens": 500},
        {
            "input": [{"role": "user", "content": "Think."}],
            "reasoning": {"effort": "low"},
            "max_output_tokens": 500,
            "include": ["reasoning.encrypted_content"],
        },
    ),
}


def _sdk_client():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx2.Response(200, content=raw(DIR + "response_output_text.json"))

    return httpx2.Client(transport=httpx2.MockTransport(handler)), seen


@pytest.mark.parametrize("case", sorted(SDK_CASES))
@respx.mock
def test_body_matches_the_official_sdk(case):
    model, messages, options, sdk_kwargs = SDK_CASES[case]
    route = respx.post(URL).mock(
        return_value=httpx.Response(200, content=raw(DIR + "response_output_text.json"))
    )
    http, seen = _sdk_client()
    sdk = openai_sdk.OpenAI(api_key=KEY, max_retries=0, http_client=http)
    sdk.responses.create(model=model, store=False, **sdk_kwargs)
    c.responses_call(c.request(model, messages, api_key=KEY, **options))
    assert str(seen[0].url) == URL == str(route.calls.last.request.url)
    assert json.loads(route.calls.last.request.content) == json.loads(seen[0].content)
    assert route.calls.last.request.headers["authorization"] == seen[0].headers["authorization"]


@respx.mock
def test_stream_body_matches_the_official_sdk():
    sse = raw(DIR + "stream_output_text.sse")
    route = respx.post(URL).mock(
        return_value=httpx.Response(200, content=sse, headers={"content-type": "text/event-stream"})
    )
    seen = []

    def handler(request):
        seen.append(request)
        return httpx2.Response(200, content=sse, headers={"content-type": "text/event-stream"})

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    sdk = openai_sdk.OpenAI(api_key=KEY, max_retries=0, http_client=http)
    list(
        sdk.responses.create(
            model="gpt-4o", input=[{"role": "user", "content": "Hi"}], store=False, stream=True
        )
    )
    events = list(c.responses_stream(c.request("gpt-4o", "Hi", api_key=KEY)))
    assert json.loads(route.calls.last.request.content) == json.loads(seen[0].content)
    assert c.collect(events)["content"] == "4200 + 42 equals 4242."


# --- end to end ---------------------------------------------------------------------------------


@respx.mock
def test_call_by_prefix():
    route = respx.post(URL).mock(
        return_value=httpx.Response(200, content=raw(DIR + "response_output_text.json"))
    )
    ctx = c.call(c.request("responses:gpt-5-mini", "hi", api_key="k"))
    assert c.content(ctx) == "4200 + 42 equals 4242."
    sent = json.loads(route.calls.last.request.content)
    assert sent["model"] == "gpt-5-mini" and sent["input"] == [{"role": "user", "content": "hi"}]
    assert route.calls.last.request.headers["authorization"] == "Bearer k"
    assert ctx["model"] == "responses:gpt-5-mini"


@respx.mock
def test_with_schema_over_the_responses_api():
    route = respx.post(URL).mock(
        return_value=httpx.Response(200, content=raw(DIR + "response_structured_output.json"))
    )
    book = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "rating": {"type": "integer"}},
        "required": ["title", "rating"],
    }
    ctx = c.responses_call(
        c.with_schema(book)(c.request("gpt-4o", "Recommend a book", api_key=KEY))
    )
    assert ctx["parsed"]["title"] == "THE NAME OF THE WIND" and ctx["parsed"]["rating"] == 7
    fmt = json.loads(route.calls.last.request.content)["text"]["format"]
    assert fmt["type"] == "json_schema" and fmt["schema"] == book


async def test_acall_and_astream():
    with respx.mock:
        respx.post(URL).mock(
            side_effect=[
                httpx.Response(200, content=raw(DIR + "response_output_text.json")),
                httpx.Response(
                    200,
                    content=raw(DIR + "stream_function_calls.sse"),
                    headers={"content-type": "text/event-stream"},
                ),
            ]
        )
        ctx = await c.responses_acall(c.request("gpt-4o", "hi", api_key=KEY))
        events = [e async for e in c.responses_astream(c.request("gpt-4o", "hi", api_key=KEY))]
    assert c.content(ctx) == "4200 + 42 equals 4242."
    assert [t["name"] for t in c.collect(events)["tool_calls"]] == ["secret_retrieval_tool"] * 2


# --- an agent whose reasoning must be carried back -----------------------------------------------

FIRST = fixture("response_reasoning_encrypted_function_call.json")
SECOND = fixture("response_after_function_call_output.json")
STREAM_FIRST = raw(DIR + "stream_reasoning_encrypted_function_call.sse")
STREAM_SECOND = raw(DIR + "stream_after_function_call_output.sse")


def _done_reasoning(sse):
    """The reasoning item of a recorded stream's output_item.done event."""
    for line in sse.decode().splitlines():
        if line.startswith("data: ") and '"response.output_item.done"' in line:
            item = json.loads(line[len("data: ") :])["item"]
            if item["type"] == "reasoning":
                return item
    raise AssertionError("no reasoning item")


def _error(status, message):
    body = {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": "input",
            "code": None,
        }
    }
    return httpx.Response(status, json=body)


def reasoning_server(request):
    """Answer as the Responses API does for a stateless reasoning model calling tools: the turn
    after a function call must carry the reasoning item that preceded it (with its encrypted
    content, since nothing is stored), else the request is refused."""
    body = json.loads(request.content)
    stream = body.get("stream", False)
    reasoning = _done_reasoning(STREAM_FIRST) if stream else FIRST["output"][0]
    if body.get("store") is not False or "reasoning.encrypted_content" not in body.get(
        "include", ()
    ):
        return _error(
            400, "this server only answers stateless requests asking for encrypted reasoning"
        )
    items = body["input"]
    outputs = [i for i in items if i.get("type") == "function_call_output"]
    if not outputs:
        answer = STREAM_FIRST if stream else FIRST
    else:
        kinds = [i.get("type") for i in items]
        at = kinds.index("function_call")
        carried = [i for i in items[:at] if i.get("type") == "reasoning"]
        if not carried:
            return _error(
                400,
                f"Item 'fc_1' of type 'function_call' was provided without its required "
                f"'reasoning' item: '{reasoning['id']}'.",
            )
        if carried[-1].get("encrypted_content") != reasoning["encrypted_content"]:
            return _error(
                400, f"The encrypted content for item {reasoning['id']} could not be verified."
            )
        answer = STREAM_SECOND if stream else SECOND
    if stream:
        return httpx.Response(200, content=answer, headers={"content-type": "text/event-stream"})
    return httpx.Response(200, json=answer)


@c.tool
def update_plan(plan: str) -> str:
    """Update the plan."""
    return "plan updated"


@c.tool
def get_capital(country: str) -> str:
    """Return the capital of a country."""
    return "Potato City"


def _req():
    return c.request("gpt-5", "Write the poem; plan first.", api_key=KEY, reasoning_effort="low")


def test_the_server_rejects_a_tool_turn_without_its_reasoning():
    ctx = responses.decode_chat(_req(), FIRST)
    call = c.tool_calls(ctx)[0]
    bare = c.assistant(c.content(ctx), c.tool_calls(ctx))  # the reasoning block dropped
    with respx.mock:
        respx.post(URL).mock(side_effect=reasoning_server)
        with pytest.raises(c.BadRequestError, match="reasoning"):
            c.responses_call(
                _req().set(
                    "messages", ctx["messages"].extend([bare, c.tool_result(call["id"], "ok")])
                )
            )


def _check(ctx, route):
    assert route.call_count == 2
    assert "Softly old fountains" in c.content(ctx)
    turn = ctx["messages"][1]
    assert json.loads(turn["content"][0]["signature"]) == FIRST["output"][0]


def test_agent_carries_reasoning():
    with respx.mock:
        route = respx.post(URL).mock(side_effect=reasoning_server)
        ctx = c.agent(c.responses_call, [update_plan])(_req())
    _check(ctx, route)


def test_aagent_carries_reasoning():
    async def run():
        with respx.mock:
            route = respx.post(URL).mock(side_effect=reasoning_server)
            return await c.aagent(c.responses_acall, [update_plan])(_req()), route

    _check(*asyncio.run(run()))


def _stream_req():
    return c.request("gpt-5.5", "What is the capital of PotatoLand?", api_key=KEY)


def _check_stream(events, route):
    assert route.call_count == 2
    kinds = [e["type"] for e in events]
    assert kinds.count("message_end") == 2 and "tool_result" in kinds
    text = "".join(e["text"] for e in events if e["type"] == "content_delta")
    assert "Potato City" in text


def test_agent_stream_carries_reasoning():
    with respx.mock:
        route = respx.post(URL).mock(side_effect=reasoning_server)
        events = list(c.agent_stream(c.responses_stream, [get_capital])(_stream_req()))
    _check_stream(events, route)


def test_aagent_stream_carries_reasoning():
    async def run():
        with respx.mock:
            route = respx.post(URL).mock(side_effect=reasoning_server)
            run_ = c.aagent_stream(c.responses_astream, [get_capital])
            return [e async for e in run_(_stream_req())], route

    _check_stream(*asyncio.run(run()))
