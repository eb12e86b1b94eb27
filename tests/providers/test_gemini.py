"""Google Gemini's native API (generateContent, streamGenerateContent, batchEmbedContents).

Every recorded payload decodes to DESIGN §2 shapes; a stream collects to what the same parts
decode to as one answer, under any chunking; recorded request bodies are what encode_chat
writes for the same conversation; bodies equal the google-genai SDK's (captured on its own
httpx transport); an agent with thinking and tools completes against a server that checks
the thought signature comes back; errors map to Conduit's; and the handlers work end to end.
"""

import asyncio
import base64
import json

import httpx
import pytest
import respx
from google import genai
from google.genai import types
from hypothesis import given, settings
from hypothesis import strategies as st

import conduit as c
from conduit._data import thaw
from conduit.providers import gemini
from conduit.request import response_message
from conduit.sse import iter_sse
from conduit.streams import collect, response_events
from tests.providers.helpers import chunkings, load, raw
from tests.providers.test_fixtures import assert_design_response

BASE = "https://generativelanguage.googleapis.com/v1beta"
URL = f"{BASE}/models/gemini-2.5-flash:generateContent"
STREAM_URL = f"{BASE}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
KEY = "AIza-test-conduit-0123456789"


def fixture(name):
    return load(f"gemini/{name}")


def sse_bytes(name):
    """A stream fixture as the bytes Gemini sends: ``.sse`` files are the recorded bodies;
    ``.chunks.txt`` files hold one recorded chunk per line, framed here as Gemini frames them."""
    data = raw(f"gemini/{name}")
    if name.endswith(".sse"):
        return data
    lines = [line for line in data.decode().splitlines() if line.strip()]
    return "".join(f"data: {line}\r\n\r\n" for line in lines).encode()


def decode(name):
    return gemini.decode_chat(c.request("gemini-2.5-flash"), fixture(name))["response"]


def stream_events(chunks):
    state, events = gemini.stream_start(), []
    for sse in iter_sse(chunks if isinstance(chunks, list) else [chunks]):
        state, out = gemini.stream_step(state, sse)
        events += out
    return events + gemini.stream_end(state)


def design_block(block):
    if block["type"] == "text":
        return set(block) == {"type", "text"}
    return block["type"] == "reasoning" and set(block) <= {"type", "text", "signature"}


# --- decoding answers -------------------------------------------------------------------------

ANSWERS = [
    "generate_content_text.json",
    "generate_content_function_call.json",
    "generate_content_thinking.json",
    "response_inline_image.json",
    "safety_finish_reason_safety.json",
    "safety_prompt_feedback_block.json",
    "gemini3_text_signature.json",
    "gemini3_function_call_signature.json",
]


@pytest.mark.parametrize("name", ANSWERS)
def test_every_answer_decodes_to_design_shapes_and_round_trips(name):
    resp = decode(name)
    assert_design_response(resp)
    if not isinstance(resp["content"], str):
        assert all(design_block(b) for b in resp["content"])
    assert collect(response_events(resp)) == resp


def test_text_answer():
    body = fixture("generate_content_text.json")
    resp = decode("generate_content_text.json")
    assert resp["content"] == body["candidates"][0]["content"]["parts"][0]["text"]
    assert (resp["id"], resp["model"], resp["stop_reason"]) == (
        "SJfyaMbrNJKlqtsPvNOW8Ao",
        "gemini-2.5-flash",
        "end_turn",
    )
    # candidatesTokenCount 77 + thoughtsTokenCount 25; the total is Gemini's totalTokenCount
    assert resp["usage"] == {
        "input_tokens": 13,
        "output_tokens": 102,
        "total_tokens": 115,
        "reasoning_tokens": 25,
    }


def test_parallel_function_calls_get_stable_ids_and_the_signature():
    body = fixture("generate_content_function_call.json")
    resp = decode("generate_content_function_call.json")
    assert resp["stop_reason"] == "tool_use"  # Gemini says STOP
    assert resp["tool_calls"] == [
        {"id": "call_0", "name": "secret_retrieval_tool", "arguments": {"password": "mellon"}},
        {"id": "call_1", "name": "secret_retrieval_tool", "arguments": {"password": "radiance"}},
    ]
    signature = body["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    assert resp["content"] == [{"type": "reasoning", "text": "", "signature": signature}]
    assert c.content({"response": resp}) == ""


def test_thought_parts_become_reasoning_before_the_text():
    parts = fixture("generate_content_thinking.json")["candidates"][0]["content"]["parts"]
    resp = decode("generate_content_thinking.json")
    assert resp["content"] == [
        {"type": "reasoning", "text": parts[0]["text"]},
        {"type": "text", "text": parts[1]["text"]},
    ]
    assert resp["usage"]["reasoning_tokens"] == 1754
    assert c.content({"response": resp}).endswith("\n\n3")


def test_a_signed_text_part_keeps_its_signature_after_the_text():
    part = fixture("gemini3_text_signature.json")["candidates"][0]["content"]["parts"][0]
    resp = decode("gemini3_text_signature.json")
    assert resp["content"] == [
        {"type": "text", "text": part["text"]},
        {"type": "reasoning", "text": "", "signature": part["thoughtSignature"]},
    ]


@pytest.mark.parametrize(
    "name", ["safety_finish_reason_safety.json", "safety_prompt_feedback_block.json"]
)
def test_blocked_answers_are_content_filter(name):
    # promptFeedback.blockReason (no candidates) is the service's filter on the prompt, not
    # the model declining: content_filter, like a candidate's finishReason SAFETY
    resp = decode(name)
    assert (resp["stop_reason"], resp["content"], len(resp["tool_calls"])) == (
        "content_filter",
        "",
        0,
    )
    assert "refusal" not in resp


@pytest.mark.parametrize(
    ("finish", "reason"),
    [
        ("STOP", "end_turn"),
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "end_turn"),
    ],
)
def test_finish_reasons(finish, reason):
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": finish}]}
    assert gemini.decode_chat(c.request("m"), body)["response"]["stop_reason"] == reason


def test_cached_tokens_are_cache_reads():
    usage = gemini.decode_usage(
        {"promptTokenCount": 100, "cachedContentTokenCount": 80, "candidatesTokenCount": 5}
    )
    assert usage == {
        "input_tokens": 100,
        "output_tokens": 5,
        "total_tokens": 105,
        "cache_read_tokens": 80,
    }


def test_a_malformed_answer_is_a_provider_error():
    with pytest.raises(c.ProviderError, match="gemini"):
        gemini.decode_chat(c.request("m"), {"candidates": [{"content": {"parts": "x"}}]})


# --- streams ----------------------------------------------------------------------------------

STREAMS = [
    "stream_generate_content.sse",
    "stream_generate_content_function_call.sse",
    "stream_generate_content_thinking.sse",
    "gemini3_text_signature_stream.chunks.txt",
    "gemini3_function_call_signature_stream.chunks.txt",
    "gemini3_empty_text_signature_stream.chunks.txt",
]


def as_one_answer(name):
    """The non-streamed answer the chunks of *name* make: every part in order, the last
    chunk's finish reason, usage and ids (what a call returns for the same generation)."""
    chunks = [json.loads(sse.data) for sse in iter_sse([sse_bytes(name)])]
    parts = [p for ch in chunks for p in ch["candidates"][0]["content"].get("parts", [])]
    last = chunks[-1]
    candidate = {**last["candidates"][0], "content": {"role": "model", "parts": parts}}
    return {**last, "candidates": [candidate]}


@pytest.mark.parametrize("name", STREAMS)
def test_every_stream_collects_to_the_answer_its_parts_make(name):
    data = sse_bytes(name)
    events = stream_events(data)
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_end"
    resp = collect(events)
    assert_design_response(resp)
    assert resp == gemini.decode_chat(c.request("m"), as_one_answer(name))["response"]
    assert collect(response_events(resp)) == resp
    for cuts in ([7, 100, 1000], list(range(3, len(data), 61))):
        assert collect(stream_events(chunkings(data, cuts))) == resp


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_streams_decode_the_same_under_any_chunking(data):
    name = data.draw(st.sampled_from(STREAMS))
    body = sse_bytes(name)
    cuts = data.draw(st.lists(st.integers(1, len(body) - 1), max_size=12))
    assert collect(stream_events(chunkings(body, cuts))) == collect(stream_events(body))


@pytest.mark.parametrize(
    ("stream", "answer"),
    [
        ("stream_generate_content.sse", "generate_content_text.json"),
        ("stream_generate_content_function_call.sse", "generate_content_function_call.json"),
        ("stream_generate_content_thinking.sse", "generate_content_thinking.json"),
        ("gemini3_text_signature_stream.chunks.txt", "gemini3_text_signature.json"),
        (
            "gemini3_function_call_signature_stream.chunks.txt",
            "gemini3_function_call_signature.json",
        ),
    ],
)
def test_recorded_stream_and_call_pairs_have_the_same_shape(stream, answer):
    """Each pair is one prompt recorded twice (streamed and not): the wording, usage and
    signatures differ between the generations, the response's shape does not."""
    streamed, called = collect(stream_events(sse_bytes(stream))), decode(answer)
    assert streamed["stop_reason"] == called["stop_reason"]
    assert streamed["model"] == called["model"]
    assert [(t["id"], t["name"], t["arguments"]) for t in streamed["tool_calls"]] == [
        (t["id"], t["name"], t["arguments"]) for t in called["tool_calls"]
    ]

    def shape(resp):
        if isinstance(resp["content"], str):
            return "text"
        return sorted({(b["type"], "signature" in b) for b in resp["content"]})

    assert shape(streamed) == shape(called)


def test_thinking_stream_reasoning_then_text():
    events = stream_events(sse_bytes("stream_generate_content_thinking.sse"))
    kinds = [e["type"] for e in events]
    assert kinds.count("reasoning_delta") == 4
    assert kinds.index("content_delta") > max(
        i for i, k in enumerate(kinds) if k == "reasoning_delta"
    )
    resp = collect(events)
    assert [b["type"] for b in resp["content"]] == ["reasoning", "text"]
    assert resp["usage"]["reasoning_tokens"] == 1947


def test_streamed_function_calls_arrive_as_tool_call_events():
    events = stream_events(sse_bytes("stream_generate_content_function_call.sse"))
    starts = [e for e in events if e["type"] == "tool_call_start"]
    assert [(e["index"], e["id"], e["name"]) for e in starts] == [
        (0, "call_0", "secret_retrieval_tool"),
        (1, "call_1", "secret_retrieval_tool"),
    ]
    assert [e["type"] for e in events].count("tool_call_end") == 2
    signed = [e for e in events if e.get("signature")]
    assert len(signed) == 1 and signed[0]["type"] == "reasoning_delta"


def test_the_trailing_empty_signed_part_is_kept():
    events = stream_events(sse_bytes("gemini3_empty_text_signature_stream.chunks.txt"))
    resp = collect(events)
    assert c.content({"response": resp}) == "4"
    assert resp["content"][1]["signature"].startswith("EpcCCpQC")


def test_a_stream_cut_before_its_finish_reason_is_a_connection_error():
    first = sse_bytes("stream_generate_content.sse").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    with pytest.raises(c.ConnectionError, match="finishReason"):
        stream_events(first)


def test_an_error_inside_a_stream_is_mapped():
    chunk = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    with pytest.raises(c.ServerError) as info:
        stream_events(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
    assert c.is_retryable(info.value) and info.value.status_code == 503


# --- encoding: recorded requests --------------------------------------------------------------


def b64(text):
    """Signatures and inline data are bytes on the wire: the SDK writes them URL-safe, the API
    answers in standard base64; either decodes to the same bytes (protobuf JSON reads both)."""
    return base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "==")


def same_bytes(value):
    if isinstance(value, dict):
        return {
            k: b64(v) if k in ("thoughtSignature", "data") else same_bytes(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [same_bytes(v) for v in value]
    return value


SECRET_TOOL = {
    "name": "secret_retrieval_tool",
    "description": "A tool that requires a password to retrieve a secret.",
    "parameters": {
        "type": "object",
        "properties": {"password": {"title": "Password", "type": "string"}},
        "required": ["password"],
    },
}


def test_tool_results_turn_reproduces_the_recorded_request():
    recorded = fixture("request_function_response.json")
    question = recorded["contents"][0]["parts"][0]["text"]
    req = c.request(
        "gemini-2.5-flash",
        [c.system("Use parallel tool calling."), c.user(question)],
        tools=[SECRET_TOOL],
    )
    ctx = gemini.decode_chat(req, fixture("generate_content_function_call.json"))
    answers = ["Welcome to Moria!", "Life before Death"]
    results = [c.tool_result(t["id"], a) for t, a in zip(c.tool_calls(ctx), answers, strict=True)]
    body = gemini.encode_chat(
        ctx.set("messages", ctx["messages"].extend([response_message(ctx["response"]), *results]))
    )
    assert same_bytes(body["contents"]) == same_bytes(recorded["contents"])
    assert body["systemInstruction"] == recorded["systemInstruction"]
    # SDK 1.31 converted its pydantic model to Gemini's OpenAPI Schema under "parameters";
    # Conduit sends the JSON Schema it holds under "parametersJsonSchema", as SDK 3.6 does
    declared = body["tools"][0]["functionDeclarations"][0]
    recorded_decl = recorded["tools"][0]["functionDeclarations"][0]
    assert declared["name"] == recorded_decl["name"]
    assert declared["description"] == recorded_decl["description"]
    assert declared["parametersJsonSchema"] == SECRET_TOOL["parameters"]


def test_system_tools_and_forced_choice_reproduce_the_recorded_request():
    recorded = fixture("request_system_tools.json")
    decl = recorded["tools"][0]["functionDeclarations"][0]
    tool = {
        "name": decl["name"],
        "description": decl["description"],
        "parameters": {
            "type": "object",
            "properties": {"output": {"title": "Output", "type": "integer"}},
            "required": ["output"],
        },
    }
    req = c.request(
        "gemini-2.5-flash",
        [
            c.system(recorded["systemInstruction"]["parts"][0]["text"]),
            c.user(recorded["contents"][0]["parts"][0]["text"]),
        ],
        tools=[tool],
        tool_choice=decl["name"],
    )
    body = gemini.encode_chat(req)
    assert body["contents"] == recorded["contents"]
    assert body["systemInstruction"] == recorded["systemInstruction"]
    assert body["toolConfig"] == recorded["toolConfig"]


def test_inline_image_reproduces_the_recorded_request():
    recorded = fixture("request_inline_image.json")
    text, image = recorded["contents"][0]["parts"]
    inline = image["inlineData"]
    req = c.request("m", [c.user(text["text"], c.image_base64(inline["data"], inline["mimeType"]))])
    assert gemini.encode_chat(req) == recorded


def test_embeddings_reproduce_the_recorded_request():
    recorded = fixture("request_batch_embed_contents.json")
    req = c.embedding_request("gemini-embedding-2", ["First text", "Second text"], dimensions=768)
    assert gemini.encode_embeddings(req) == recorded


def test_embeddings_decode():
    body = fixture("batch_embed_contents.json")
    ctx = gemini.decode_embeddings(c.embedding_request("gemini-embedding-2", ["a", "b"]), body)
    matrix = c.vectors(ctx)
    assert matrix.shape == (2, 768)
    assert matrix[0, 0] == pytest.approx(body["embeddings"][0]["values"][0])
    with pytest.raises(c.ProviderError, match="2 embeddings for 3 texts"):
        gemini.decode_embeddings(c.embedding_request("m", ["a", "b", "c"]), body)


# --- encoding: choices ------------------------------------------------------------------------


def test_signatures_go_back_where_gemini_checks_them():
    thought = {"type": "reasoning", "text": "Plan.", "signature": "c2ln"}
    call = {"id": "call_0", "name": "f", "arguments": {}}
    with_calls = c.assistant([thought, c.text_block("Checking.")], [call, {**call, "id": "call_1"}])
    _, contents = gemini.encode_contents([c.user("q"), with_calls])
    assert contents[1]["parts"] == [
        {"text": "Plan.", "thought": True},
        {"text": "Checking."},
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"},
        {"functionCall": {"name": "f", "args": {}}},
    ]
    text_only = c.assistant(
        [c.text_block("4"), {"type": "reasoning", "text": "", "signature": "s"}]
    )
    _, contents = gemini.encode_contents([c.user("q"), text_only])
    assert contents[1]["parts"] == [{"text": "4", "thoughtSignature": "s"}]


def test_function_ids_gemini_gave_go_back():
    body = {
        "candidates": [
            {
                "content": {"parts": [{"functionCall": {"id": "fc-9", "name": "f", "args": {}}}]},
                "finishReason": "STOP",
            }
        ]
    }
    ctx = gemini.decode_chat(c.request("m", "q"), body)
    assert c.tool_calls(ctx)[0]["id"] == "fc-9"
    turns = [response_message(ctx["response"]), c.tool_result("fc-9", "ok")]
    _, contents = gemini.encode_contents(ctx["messages"].extend(turns))
    assert contents[1]["parts"][0]["functionCall"]["id"] == "fc-9"
    assert contents[2]["parts"][0]["functionResponse"] == {
        "name": "f",
        "id": "fc-9",
        "response": {"output": "ok"},
    }


def test_a_tool_result_names_the_nearest_call_with_its_id_and_errors_are_errors():
    first = c.assistant("", [{"id": "call_0", "name": "old", "arguments": {}}])
    second = c.assistant("", [{"id": "call_0", "name": "new", "arguments": {}}])
    msgs = [c.user("q"), first, c.tool_result("call_0", "a"), second]
    _, contents = gemini.encode_contents([*msgs, c.tool_result("call_0", "boom", is_error=True)])
    assert contents[-1]["parts"] == [
        {"functionResponse": {"name": "new", "response": {"error": "boom"}}}
    ]


def test_a_tool_result_without_its_call_is_refused_before_any_request():
    with pytest.raises(c.ValidationError, match="call_7"):
        gemini.encode_contents([c.user("q"), c.tool_result("call_7", "x")])


def test_documents_audio_and_urls():
    pdf = c.document_base64("JVBERi0=")
    parts = gemini.encode_contents(
        [
            c.user(
                "Read",
                pdf,
                c.document_url("https://example.com/a.pdf"),
                c.image_url("https://example.com/cat.png"),
                c.input_audio("UklGRg==", "wav"),
            )
        ]
    )[1][0]["parts"]
    assert parts[1:] == [
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {"fileData": {"fileUri": "https://example.com/a.pdf", "mimeType": "application/pdf"}},
        {"fileData": {"fileUri": "https://example.com/cat.png", "mimeType": "image/png"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
    ]


def test_options_map_to_generation_config_and_unsupported_ones_warn(caplog):
    body = gemini.encode_chat(
        c.request(
            "m",
            "q",
            temperature=0.2,
            max_tokens=10,
            stop="END",
            seed=1,
            response_modalities=["TEXT"],
            safety_settings=[{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
            parallel_tool_calls=False,
            reasoning_effort="low",
        )
    )
    assert body["generationConfig"] == {
        "temperature": 0.2,
        "maxOutputTokens": 10,
        "stopSequences": ["END"],
        "seed": 1,
        "responseModalities": ["TEXT"],
        "thinkingConfig": {"thinkingLevel": "LOW"},
    }
    assert body["safetySettings"][0]["threshold"] == "BLOCK_NONE"
    assert "parallel_tool_calls" in caplog.text


# --- the google-genai SDK's bodies ------------------------------------------------------------

WEATHER = {
    "name": "get_weather",
    "description": "Get the weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"]}},
        "required": ["city"],
    },
}
CITY = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
OPAQUE = {"parametersJsonSchema", "responseJsonSchema", "args", "response"}  # values, not fields


def proto(value, opaque=False):
    """*value* with protobuf field names in lowerCamelCase: the SDK writes some nested fields
    in snake_case (``thinking_budget``, ``mime_type``), which protobuf JSON reads the same."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            name = k if opaque else gemini._camel(k)
            out[name] = proto(v, opaque or name in OPAQUE)
        return out
    if isinstance(value, list):
        return [proto(v, opaque) for v in value]
    return value


def sdk_body(call, stream=False):
    seen = []

    def handler(request):
        seen.append(request)
        if stream:
            return httpx.Response(200, content=sse_bytes("stream_generate_content.sse"))
        return httpx.Response(200, content=raw("gemini/generate_content_text.json"))

    options = types.HttpOptions(
        api_version="v1beta", httpx_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    call(genai.Client(api_key=KEY, http_options=options))
    assert seen[-1].headers["x-goog-api-key"] == KEY
    body = proto(json.loads(seen[-1].content))
    if body.get("generationConfig") == {}:  # the SDK sends an empty one when it has a config
        del body["generationConfig"]  # object but no generation setting: it means nothing
    return str(seen[-1].url), same_bytes(body)


def conduit_body(req, stream=False):
    return gemini._url(BASE, req, stream), same_bytes(gemini.encode_chat(req, stream))


def _tool_turns():
    return [
        c.user("Weather in Paris?"),
        c.assistant("", [{"id": "call_0", "name": "get_weather", "arguments": {"city": "Paris"}}]),
        c.tool_result("call_0", "18C and sunny"),
    ]


def _sdk_tool_turns():
    return [
        types.Content(role="user", parts=[types.Part.from_text(text="Weather in Paris?")]),
        types.Content(
            role="model",
            parts=[types.Part.from_function_call(name="get_weather", args={"city": "Paris"})],
        ),
        types.Content(
            role="user",
            parts=[
                types.Part.from_function_response(
                    name="get_weather", response={"output": "18C and sunny"}
                )
            ],
        ),
    ]


SDK_TOOLS = [
    types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name=WEATHER["name"],
                description=WEATHER["description"],
                parameters_json_schema=WEATHER["parameters"],
            )
        ]
    )
]
MODEL = "gemini-2.5-flash"
SDK_CASES = {
    "text": (
        c.request(MODEL, "Hello!"),
        lambda cl: cl.models.generate_content(model=MODEL, contents="Hello!"),
    ),
    "system_and_options": (
        c.request(
            MODEL,
            [c.system("Be brief."), c.user("Hi")],
            temperature=0.2,
            top_p=0.9,
            top_k=3,
            max_tokens=50,
            stop=["\n"],
            seed=7,
        ),
        lambda cl: cl.models.generate_content(
            model=MODEL,
            contents="Hi",
            config=types.GenerateContentConfig(
                system_instruction="Be brief.",
                temperature=0.2,
                top_p=0.9,
                top_k=3,
                max_output_tokens=50,
                stop_sequences=["\n"],
                seed=7,
            ),
        ),
    ),
    "tools_named_choice": (
        c.request(MODEL, "Weather in Paris?", tools=[WEATHER], tool_choice="get_weather"),
        lambda cl: cl.models.generate_content(
            model=MODEL,
            contents="Weather in Paris?",
            config=types.GenerateContentConfig(
                tools=SDK_TOOLS,
                tool_config=types.ToolConfig(
                    function_calling_config=types.FunctionCallingConfig(
                        mode="ANY", allowed_function_names=["get_weather"]
                    )
                ),
                automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            ),
        ),
    ),
    "tool_results": (
        c.request(MODEL, _tool_turns(), tools=[WEATHER], tool_choice="auto"),
        lambda cl: cl.models.generate_content(
            model=MODEL,
            contents=_sdk_tool_turns(),
            config=types.GenerateContentConfig(
                tools=SDK_TOOLS,
                tool_config=types.ToolConfig(
                    function_calling_config=types.FunctionCallingConfig(mode="AUTO")
                ),
                automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            ),
        ),
    ),
    "images_and_documents": (
        c.request(
            MODEL,
            [
                c.user(
                    "What is this?",
                    c.image_base64(PNG),
                    c.image_url("https://example.com/cat.png"),
                    c.document_base64("JVBERi0xLjQK"),
                )
            ],
        ),
        lambda cl: cl.models.generate_content(
            model=MODEL,
            contents=[
                types.Content(
                    role="user",
                    parts=[
                        types.Part.from_text(text="What is this?"),
                        types.Part.from_bytes(data=base64.b64decode(PNG), mime_type="image/png"),
                        types.Part.from_uri(
                            file_uri="https://example.com/cat.png", mime_type="image/png"
                        ),
                        types.Part.from_bytes(
                            data=base64.b64decode("JVBERi0xLjQK"), mime_type="application/pdf"
                        ),
                    ],
                )
            ],
        ),
    ),
    "json_schema": (
        c.request(
            MODEL,
            "Give me a city",
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": CITY},
            },
        ),
        lambda cl: cl.models.generate_content(
            model=MODEL,
            contents="Give me a city",
            config=types.GenerateContentConfig(
                response_mime_type="application/json", response_json_schema=CITY
            ),
        ),
    ),
    "thinking_budget": (
        c.request(MODEL, "Think", thinking={"type": "enabled", "budget_tokens": 1024}),
        lambda cl: cl.models.generate_content(
            model=MODEL,
            contents="Think",
            config=types.GenerateContentConfig(
                thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024)
            ),
        ),
    ),
    "thinking_level": (
        c.request(MODEL, "Think", reasoning_effort="high"),
        lambda cl: cl.models.generate_content(
            model=MODEL,
            contents="Think",
            config=types.GenerateContentConfig(
                thinking_config=types.ThinkingConfig(thinking_level="high")
            ),
        ),
    ),
    "thinking_off": (
        c.request(MODEL, "Quick", thinking=False),
        lambda cl: cl.models.generate_content(
            model=MODEL,
            contents="Quick",
            config=types.GenerateContentConfig(
                thinking_config=types.ThinkingConfig(thinking_budget=0)
            ),
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(SDK_CASES))
def test_bodies_equal_the_sdk(case):
    req, call = SDK_CASES[case]
    assert conduit_body(req) == sdk_body(call)


def test_signed_function_call_turn_equals_the_sdk():
    signature = fixture("generate_content_function_call.json")["candidates"][0]["content"]["parts"][
        0
    ]["thoughtSignature"]
    ctx = gemini.decode_chat(
        c.request(MODEL, "Secrets?"), fixture("generate_content_function_call.json")
    )
    turns = [
        response_message(ctx["response"]),
        c.tool_result("call_0", "a"),
        c.tool_result("call_1", "b"),
    ]
    req = ctx.set("messages", ctx["messages"].extend(turns))
    fc = [
        types.Part(
            function_call=types.FunctionCall(
                name="secret_retrieval_tool", args={"password": "mellon"}
            ),
            thought_signature=base64.b64decode(signature),
        ),
        types.Part.from_function_call(name="secret_retrieval_tool", args={"password": "radiance"}),
    ]
    fr = [
        types.Part.from_function_response(name="secret_retrieval_tool", response={"output": x})
        for x in ("a", "b")
    ]
    contents = [
        types.Content(role="user", parts=[types.Part.from_text(text="Secrets?")]),
        types.Content(role="model", parts=fc),
        types.Content(role="user", parts=fr),
    ]
    assert conduit_body(req) == sdk_body(
        lambda cl: cl.models.generate_content(model=MODEL, contents=contents)
    )


def test_stream_url_and_body_equal_the_sdk():
    def call(cl):
        for _ in cl.models.generate_content_stream(model=MODEL, contents="Hello!"):
            pass

    assert conduit_body(c.request(MODEL, "Hello!"), stream=True) == sdk_body(call, stream=True)


def test_embeddings_equal_the_sdk_but_for_the_content_role():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"embeddings": [{"values": [0.5]}, {"values": [0.25]}]})

    options = types.HttpOptions(
        api_version="v1beta", httpx_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    genai.Client(api_key=KEY, http_options=options).models.embed_content(
        model="gemini-embedding-001",
        contents=["a", "b"],
        config=types.EmbedContentConfig(output_dimensionality=8, task_type="RETRIEVAL_QUERY"),
    )
    sdk = proto(json.loads(seen[-1].content))
    for item in sdk["requests"]:
        assert item["content"].pop("role") == "user"  # Google's REST examples send no role
    req = c.embedding_request(
        "gemini-embedding-001", ["a", "b"], dimensions=8, task_type="RETRIEVAL_QUERY"
    )
    assert gemini.encode_embeddings(req) == sdk
    assert str(seen[-1].url) == gemini._embed_url(BASE, req)


# --- an agent with thinking and tools, against a server that checks signatures ----------------

FIRST = fixture("gemini3_function_call_signature.json")
SECOND = fixture("gemini3_text_signature.json")
GEMINI3_URL = f"{BASE}/models/gemini-3-pro-preview"


def weather(location: str) -> str:
    """Return the weather at *location*."""
    return f"Sunny in {location}"


def signature_server(request):
    """Answer as Gemini 3 does: a turn after a function call must send the call back with the
    thoughtSignature it came with, on the first functionCall part."""
    body = json.loads(request.content)
    contents = body["contents"]
    if len(contents) == 1:
        return httpx.Response(200, json=FIRST)
    expected = FIRST["candidates"][0]["content"]["parts"][0]
    sent = contents[1]["parts"][0]
    if sent.get("thoughtSignature") != expected["thoughtSignature"]:
        return httpx.Response(
            400,
            json={
                "error": {
                    "code": 400,
                    "message": "Function call is missing a thought_signature in functionCall "
                    "parts.",
                    "status": "INVALID_ARGUMENT",
                }
            },
        )
    assert contents[2]["parts"][0]["functionResponse"] == {
        "name": "weather",
        "response": {"output": "Sunny in San Francisco"},
    }
    return httpx.Response(200, json=SECOND)


def _agent_req():
    return c.request(
        "gemini:gemini-3-pro-preview", "Weather in SF?", api_key=KEY, reasoning_effort="high"
    )


def _check(ctx, route):
    assert route.call_count == 2
    assert c.content(ctx).startswith("There are **3**")
    assert ctx["tool_calls_made"][0]["name"] == "weather"


def test_the_server_rejects_a_call_turn_without_its_signature():
    ctx = gemini.decode_chat(c.request("gemini-3-pro-preview", "q"), FIRST)
    bare = c.assistant("", c.tool_calls(ctx))
    req = _agent_req().set("messages", ctx["messages"].extend([bare, c.tool_result("call_0", "x")]))
    with respx.mock:
        respx.post(f"{GEMINI3_URL}:generateContent").mock(side_effect=signature_server)
        with pytest.raises(c.BadRequestError, match="thought_signature"):
            c.call(req)


def test_agent_with_thinking_and_tools():
    with respx.mock:
        route = respx.post(f"{GEMINI3_URL}:generateContent").mock(side_effect=signature_server)
        ctx = c.agent(c.call, [weather])(_agent_req())
    _check(ctx, route)


def test_aagent_with_thinking_and_tools():
    async def run():
        with respx.mock:
            route = respx.post(f"{GEMINI3_URL}:generateContent").mock(side_effect=signature_server)
            return await c.aagent(c.acall, [weather])(_agent_req()), route

    ctx, route = asyncio.run(run())
    _check(ctx, route)


# --- errors and keys --------------------------------------------------------------------------


def _error(status, code, message):
    return httpx.Response(
        status, json={"error": {"code": status, "message": message, "status": code}}
    )


@pytest.mark.parametrize(
    ("status", "code", "cls", "retryable"),
    [
        (429, "RESOURCE_EXHAUSTED", c.RateLimitError, True),
        (503, "UNAVAILABLE", c.ServerError, True),
        (500, "INTERNAL", c.ServerError, True),
        (400, "INVALID_ARGUMENT", c.BadRequestError, False),
        (403, "PERMISSION_DENIED", c.PermissionDeniedError, False),
        (404, "NOT_FOUND", c.NotFoundError, False),
    ],
)
def test_http_errors_map_to_conduit_errors(status, code, cls, retryable):
    with respx.mock:
        respx.post(URL).mock(return_value=_error(status, code, f"{code} happened"))
        with pytest.raises(cls) as info:
            c.call(c.request("gemini:gemini-2.5-flash", "hi", api_key=KEY))
    assert c.is_retryable(info.value) is retryable
    assert info.value.status_code == status and info.value.provider == "gemini"
    assert f"{code} happened" in str(info.value)


def test_recorded_400_bodies_are_bad_requests():
    for body in fixture("errors_400_live.json").values():
        if isinstance(body, dict):
            with respx.mock:
                respx.post(URL).mock(return_value=httpx.Response(400, json=body))
                with pytest.raises(c.BadRequestError, match=body["error"]["message"][:20]):
                    c.call(c.request("gemini:gemini-2.5-flash", "hi", api_key=KEY))


def test_with_retry_retries_a_503():
    answers = iter(
        [
            _error(503, "UNAVAILABLE", "overloaded"),
            httpx.Response(200, content=raw("gemini/generate_content_text.json")),
        ]
    )
    with respx.mock:
        route = respx.post(URL).mock(side_effect=lambda r: next(answers))
        req = c.with_retry(initial_delay=0.001)(
            c.request("gemini:gemini-2.5-flash", "hi", api_key=KEY)
        )
        ctx = c.call(req)
    assert route.call_count == 2 and "4242" in c.content(ctx)


def test_keys(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    req = c.request("gemini:gemini-2.5-flash", "hi")
    with pytest.raises(c.AuthenticationError, match="GEMINI_API_KEY"):
        c.call(req)
    ok = httpx.Response(200, content=raw("gemini/generate_content_text.json"))
    with respx.mock:
        route = respx.post(URL).mock(return_value=ok)
        monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
        c.call(req)
        assert route.calls.last.request.headers["x-goog-api-key"] == "google-key"
        monkeypatch.setenv("GEMINI_API_KEY", "gemini-key")  # the registry's variable wins
        c.call(req)
        assert route.calls.last.request.headers["x-goog-api-key"] == "gemini-key"
        c.call(req.set("api_key", "request-key"))  # and the request's key wins over both
        assert route.calls.last.request.headers["x-goog-api-key"] == "request-key"
        assert "authorization" not in route.calls.last.request.headers


def test_a_key_echoed_in_an_error_is_masked(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    with respx.mock:
        respx.post(URL).mock(return_value=_error(400, "INVALID_ARGUMENT", f"API key {KEY} bad"))
        with pytest.raises(c.BadRequestError) as info:
            c.call(c.request("gemini:gemini-2.5-flash", "hi"))
    assert KEY not in str(info.value) and KEY not in json.dumps(thaw(info.value.body))


# --- end to end -------------------------------------------------------------------------------


def test_call_end_to_end():
    with respx.mock:
        route = respx.post(URL).mock(
            return_value=httpx.Response(200, content=raw("gemini/generate_content_text.json"))
        )
        ctx = c.call(c.request("gemini:gemini-2.5-flash", "What is 4200 + 42?", api_key=KEY))
    sent = route.calls.last.request
    assert sent.headers["x-goog-api-key"] == KEY
    assert json.loads(sent.content) == {
        "contents": [{"role": "user", "parts": [{"text": "What is 4200 + 42?"}]}]
    }
    assert "4242" in c.content(ctx) and c.usage(ctx)["total_tokens"] == 115


def test_stream_end_to_end_sync_and_async():
    data = sse_bytes("stream_generate_content_thinking.sse")
    req = c.request("google:gemini-2.5-flash", "primes?", api_key=KEY, thinking=True)
    expected = collect(stream_events(data))
    ok = httpx.Response(200, content=data, headers={"content-type": "text/event-stream"})
    with respx.mock:
        route = respx.post(STREAM_URL).mock(return_value=ok)
        events = list(c.stream(req))
        assert json.loads(route.calls.last.request.content)["generationConfig"] == {
            "thinkingConfig": {"includeThoughts": True}
        }

        async def run():
            return [e async for e in c.astream(req)]

        aevents = asyncio.run(run())
    assert collect(events) == expected == collect(aevents)


def test_gemini_embed_end_to_end():
    url = f"{BASE}/models/gemini-embedding-001:batchEmbedContents"
    body = fixture("batch_embed_contents.json")
    with respx.mock:
        route = respx.post(url).mock(return_value=httpx.Response(200, json=body))
        ctx = c.gemini_embed(c.embedding_request("gemini-embedding-001", ["a", "b"], api_key=KEY))
    assert c.vectors(ctx).shape == (2, 768)
    assert json.loads(route.calls.last.request.content)["requests"][1] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "b"}]},
    }
