"""For the same inputs, Conduit sends the JSON body the official SDKs send (captured with respx)."""

import json
import warnings

import anthropic as anthropic_sdk
import httpx
import httpx2
import openai as openai_sdk
import pytest
import respx

import conduit as c
from tests.providers.helpers import raw

MODEL = "claude-sonnet-4-5"
OPENAI_URL = "https://api.openai.com/v1/chat/completions"
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
KEY = "sk-test-conformance"

WEATHER = {
    "name": "get_weather",
    "description": "Get the weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
CITY = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _sdk_client(fixture, stream=False):
    """An httpx2 client (the SDKs' own HTTP stack) that records what the SDK sends."""
    seen = []

    def handler(request):
        seen.append(request)
        headers = {"content-type": "text/event-stream" if stream else "application/json"}
        return httpx2.Response(200, content=raw(fixture), headers=headers)

    return httpx2.Client(transport=httpx2.MockTransport(handler)), seen


def _conduit_body(route):
    return json.loads(route.calls.last.request.content)


# --- OpenAI ----------------------------------------------------------------------------------

OPENAI_CASES = {
    "text": (
        [c.user("Hello!")],
        {"messages": [{"role": "user", "content": "Hello!"}]},
        {},
    ),
    "system_and_options": (
        [c.system("Be brief."), c.user("Hi")],
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
            "temperature": 0.2,
            "max_tokens": 50,
            "stop": ["\n"],
            "seed": 7,
            "top_p": 0.9,
        },
        {"temperature": 0.2, "max_tokens": 50, "stop": ["\n"], "seed": 7, "top_p": 0.9},
    ),
    "tools_named_choice": (
        [c.user("Weather in Paris?")],
        {
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [{"type": "function", "function": WEATHER}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        },
        {"tools": [WEATHER], "tool_choice": "get_weather"},
    ),
    "images": (
        [c.user("What is this?", c.image_url("https://example.com/cat.png"), c.image_base64(PNG))],
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    ],
                }
            ]
        },
        {},
    ),
    "tool_results": (
        [
            c.user("Weather in Paris?"),
            c.assistant(
                "", [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]
            ),
            c.tool_result("call_1", "18C and sunny"),
        ],
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
            ],
            "tools": [{"type": "function", "function": WEATHER}],
            "tool_choice": "auto",
        },
        {"tools": [WEATHER], "tool_choice": "auto"},
    ),
    "json_schema": (
        [c.user("Give me a city")],
        {
            "messages": [{"role": "user", "content": "Give me a city"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "city",
                    "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
            },
        },
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "city",
                    "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
            }
        },
    ),
}


@pytest.mark.parametrize("case", sorted(OPENAI_CASES))
@respx.mock
def test_openai_body_matches_the_sdk(case):
    messages, sdk_kwargs, conduit_opts = OPENAI_CASES[case]
    route = respx.post(OPENAI_URL).mock(
        return_value=httpx.Response(200, content=raw("openai/chat_text.json"))
    )
    http, seen = _sdk_client("openai/chat_text.json")
    sdk = openai_sdk.OpenAI(api_key=KEY, max_retries=0, http_client=http)
    sdk.chat.completions.create(model="gpt-4o-mini", **sdk_kwargs)
    c.openai_call(c.request("gpt-4o-mini", messages, api_key=KEY, **conduit_opts))
    assert str(seen[0].url) == OPENAI_URL == str(route.calls.last.request.url)
    assert _conduit_body(route) == json.loads(seen[0].content)


@respx.mock
def test_openai_stream_body_and_auth_match_the_sdk():
    route = respx.post(OPENAI_URL).mock(
        side_effect=lambda r: httpx.Response(
            200,
            content=raw("openai/stream_text.sse"),
            headers={"content-type": "text/event-stream"},
        )
    )
    http, seen = _sdk_client("openai/stream_text.sse", stream=True)
    sdk = openai_sdk.OpenAI(api_key=KEY, max_retries=0, http_client=http)
    list(
        sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    list(c.openai_stream(c.request("gpt-4o-mini", "Hi", api_key=KEY)))
    assert _conduit_body(route) == json.loads(seen[0].content)
    conduit_req = route.calls.last.request
    assert (
        conduit_req.headers["authorization"] == seen[0].headers["authorization"] == f"Bearer {KEY}"
    )


# --- Anthropic -------------------------------------------------------------------------------

ANTHROPIC_CASES = {
    "json_schema": (
        [c.user("Give me a city")],
        {
            "messages": [{"role": "user", "content": "Give me a city"}],
            "tools": [
                {
                    "name": "city",
                    "description": "Give the answer in this format.",
                    "input_schema": CITY,
                }
            ],
            "tool_choice": {"type": "tool", "name": "city"},
        },
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": CITY},
            }
        },
    ),
    "text": (
        [c.user("Hello!")],
        {"messages": [{"role": "user", "content": "Hello!"}]},
        {},
    ),
    "system_and_options": (
        [c.system("Be brief."), c.user("Hi")],
        {
            "system": "Be brief.",
            "messages": [{"role": "user", "content": "Hi"}],
            "temperature": 0.2,
            "stop_sequences": ["END"],
            "top_p": 0.9,
        },
        {"temperature": 0.2, "stop": ["END"], "top_p": 0.9},
    ),
    "tools_required": (
        [c.user("Weather in Paris?")],
        {
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [
                {
                    "name": "get_weather",
                    "description": WEATHER["description"],
                    "input_schema": WEATHER["parameters"],
                }
            ],
            "tool_choice": {"type": "any"},
        },
        {"tools": [WEATHER], "tool_choice": "required"},
    ),
    "images": (
        [c.user("What is this?", c.image_url("https://example.com/cat.png"), c.image_base64(PNG))],
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {
                            "type": "image",
                            "source": {"type": "url", "url": "https://example.com/cat.png"},
                        },
                        {
                            "type": "image",
                            "source": {"type": "base64", "data": PNG, "media_type": "image/png"},
                        },
                    ],
                }
            ]
        },
        {},
    ),
    "tool_results": (
        [
            c.user("Weather in Paris and Rome?"),
            c.assistant(
                "Checking both.",
                [
                    {"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}},
                    {"id": "toolu_2", "name": "get_weather", "arguments": {"city": "Rome"}},
                ],
            ),
            c.tool_result("toolu_1", "18C"),
            c.tool_result("toolu_2", "no data", is_error=True),
        ],
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Checking both."},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        },
                        {
                            "type": "tool_use",
                            "id": "toolu_2",
                            "name": "get_weather",
                            "input": {"city": "Rome"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "content": "no data",
                            "is_error": True,
                        },
                    ],
                },
            ],
            "tools": [
                {
                    "name": "get_weather",
                    "description": WEATHER["description"],
                    "input_schema": WEATHER["parameters"],
                }
            ],
        },
        {"tools": [WEATHER]},
    ),
    "prompt_caching": (
        [
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "Long context", "cache_control": {"type": "ephemeral"}}
                ],
            },
            c.user("Q"),
        ],
        {
            "system": [
                {"type": "text", "text": "Long context", "cache_control": {"type": "ephemeral"}}
            ],
            "messages": [{"role": "user", "content": "Q"}],
        },
        {},
    ),
}


@pytest.mark.parametrize("case", sorted(ANTHROPIC_CASES))
@respx.mock
def test_anthropic_body_matches_the_sdk(case):
    messages, sdk_kwargs, conduit_opts = ANTHROPIC_CASES[case]
    route = respx.post(ANTHROPIC_URL).mock(
        return_value=httpx.Response(200, content=raw("anthropic/message_text.json"))
    )
    http, seen = _sdk_client("anthropic/message_text.json")
    sdk = anthropic_sdk.Anthropic(api_key=KEY, max_retries=0, http_client=http)
    kwargs = dict(sdk_kwargs)
    # anthropic 2.x takes sampling options only through extra_body
    extra = {k: kwargs.pop(k) for k in ("temperature", "top_p") if k in kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK warns about model names
        sdk.messages.create(model=MODEL, max_tokens=1024, extra_body=extra or None, **kwargs)
    c.anthropic_call(c.request(MODEL, messages, api_key=KEY, max_tokens=1024, **conduit_opts))
    assert str(seen[0].url) == ANTHROPIC_URL
    assert _conduit_body(route) == json.loads(seen[0].content)


@respx.mock
def test_anthropic_stream_body_and_headers_match_the_sdk():
    route = respx.post(ANTHROPIC_URL).mock(
        side_effect=lambda r: httpx.Response(
            200,
            content=raw("anthropic/stream_text.sse"),
            headers={"content-type": "text/event-stream"},
        )
    )
    http, seen = _sdk_client("anthropic/stream_text.sse", stream=True)
    sdk = anthropic_sdk.Anthropic(api_key=KEY, max_retries=0, http_client=http)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with sdk.messages.stream(
            model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": "Hi"}]
        ) as s:
            s.get_final_message()
    list(c.anthropic_stream(c.request(MODEL, "Hi", api_key=KEY, max_tokens=1024)))
    assert _conduit_body(route) == json.loads(seen[0].content)
    conduit_req = route.calls.last.request
    assert conduit_req.headers["content-type"] == seen[0].headers["content-type"]
    # The SDK (2.13) authenticates with a bearer token and API version 2026-10-21; Conduit keeps
    # x-api-key and 2023-06-01, the version every recorded payload it decodes was made with.
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert conduit_req.headers["x-api-key"] == KEY
    assert conduit_req.headers["anthropic-version"] == "2023-06-01"


# --- OpenAI embeddings -----------------------------------------------------------------------

OPENAI_EMBEDDINGS_URL = "https://api.openai.com/v1/embeddings"
EMBEDDING_CASES = {
    "texts": ({"input": ["hello", "world"]}, {}),
    "one_text": ({"input": ["The food was delicious and the waiter..."]}, {}),
    "dimensions": ({"input": ["hello", "world"], "dimensions": 256}, {"dimensions": 256}),
}


@pytest.mark.parametrize("case", sorted(EMBEDDING_CASES))
@respx.mock
def test_openai_embeddings_body_matches_the_sdk(case):
    sdk_kwargs, settings = EMBEDDING_CASES[case]
    texts = sdk_kwargs["input"]
    recorded = json.loads(raw("openai/embeddings_base64.json"))  # two rows: keep one per text
    answer = json.dumps({**recorded, "data": recorded["data"][: len(texts)]}).encode()
    route = respx.post(OPENAI_EMBEDDINGS_URL).mock(return_value=httpx.Response(200, content=answer))
    http, seen = _sdk_client("openai/embeddings_base64.json")
    sdk = openai_sdk.OpenAI(api_key=KEY, max_retries=0, http_client=http)
    sdk.embeddings.create(model="text-embedding-3-small", **sdk_kwargs)
    req = c.embedding_request("text-embedding-3-small", texts, api_key=KEY, **settings)
    c.openai_embed(req)
    sdk_body = json.loads(seen[0].content)
    assert sdk_body["encoding_format"] == "base64"  # the SDK asks for base64 unless told
    assert str(seen[0].url) == OPENAI_EMBEDDINGS_URL == str(route.calls.last.request.url)
    assert _conduit_body(route) == sdk_body
    assert route.calls.last.request.headers["authorization"] == seen[0].headers["authorization"]


def test_openai_embeddings_decode_like_the_sdk():
    http, _ = _sdk_client("openai/embeddings_base64.json")
    sdk = openai_sdk.OpenAI(api_key=KEY, max_retries=0, http_client=http)
    theirs = sdk.embeddings.create(model="text-embedding-3-small", input=["hello", "world"])
    with respx.mock:
        respx.post(OPENAI_EMBEDDINGS_URL).mock(
            return_value=httpx.Response(200, content=raw("openai/embeddings_base64.json"))
        )
        ours = c.openai_embed(["hello", "world"], model="text-embedding-3-small", api_key=KEY)
    assert [d.index for d in theirs.data] == [0, 1]
    assert ours.vectors.tolist() == [d.embedding for d in theirs.data]
    assert ours.usage["input_tokens"] == theirs.usage.prompt_tokens


# --- OpenAI: reasoning models, strict schemas, documents and audio (issue 15) -----------------

CITY_CLOSED = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "country": {"type": "string"}},
    "required": ["name", "country"],
    "additionalProperties": False,
}
WEATHER_CLOSED = {**WEATHER, "parameters": {**WEATHER["parameters"], "additionalProperties": False}}
PDF_BODY = json.loads(raw("openai/request_file_pdf.json"))
AUDIO_BODY = json.loads(raw("openai/request_input_audio.json"))


def _pdf_messages():
    parts = PDF_BODY["messages"][0]["content"]
    data = parts[1]["file"]["file_data"].split(",", 1)[1]
    return [c.user(parts[0]["text"], c.document_base64(data))]


def _audio_messages():
    parts = AUDIO_BODY["messages"][0]["content"]
    return [c.user(parts[0]["text"], c.input_audio(parts[1]["input_audio"]["data"], "mp3"))]


OPENAI_ISSUE_15_CASES = {
    # case: (model, Conduit messages, SDK keywords, Conduit options)
    "reasoning_effort_o_series": (
        "o3-mini",
        [c.user("Think hard")],
        {
            "messages": [{"role": "user", "content": "Think hard"}],
            "reasoning_effort": "high",
            "max_completion_tokens": 100,
        },
        {"reasoning_effort": "high", "max_tokens": 100},
    ),
    "max_completion_tokens_gpt_5": (
        "gpt-5-mini",
        [c.user("Hi")],
        {"messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 50},
        {"max_tokens": 50},
    ),
    "strict_json_schema": (
        "gpt-4o-mini",
        [c.user("Give me a city")],
        {
            "messages": [{"role": "user", "content": "Give me a city"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": CITY_CLOSED, "strict": True},
            },
        },
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": CITY_CLOSED},
            }
        },
    ),
    "strict_tools": (
        "gpt-4o-mini",
        [c.user("Weather in Paris?")],
        {
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [{"type": "function", "function": {**WEATHER_CLOSED, "strict": True}}],
        },
        {"tools": [WEATHER_CLOSED]},
    ),
    "strict_tool_opted_out": (
        "gpt-4o-mini",
        [c.user("Weather in Paris?")],
        {
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [{"type": "function", "function": {**WEATHER_CLOSED, "strict": False}}],
        },
        {"tools": [{**WEATHER_CLOSED, "strict": False}]},
    ),
    "file_pdf": (
        PDF_BODY["model"],
        _pdf_messages(),
        {"messages": PDF_BODY["messages"]},
        {},
    ),
    "input_audio": (
        AUDIO_BODY["model"],
        _audio_messages(),
        {"messages": AUDIO_BODY["messages"]},
        {},
    ),
}


@pytest.mark.parametrize("case", sorted(OPENAI_ISSUE_15_CASES))
@respx.mock
def test_openai_issue_15_bodies_match_the_sdk(case):
    model, messages, sdk_kwargs, conduit_opts = OPENAI_ISSUE_15_CASES[case]
    route = respx.post(OPENAI_URL).mock(
        return_value=httpx.Response(200, content=raw("openai/chat_text.json"))
    )
    http, seen = _sdk_client("openai/chat_text.json")
    sdk = openai_sdk.OpenAI(api_key=KEY, max_retries=0, http_client=http)
    sdk.chat.completions.create(model=model, **sdk_kwargs)
    c.openai_call(c.request(model, messages, api_key=KEY, **conduit_opts))
    assert _conduit_body(route) == json.loads(seen[0].content)


def test_openai_recorded_document_and_audio_bodies_are_the_sdks():
    """The recorded file and input_audio requests are what the SDK sends for them, unchanged."""
    for body in (PDF_BODY, AUDIO_BODY):
        http, seen = _sdk_client("openai/chat_text.json")
        sdk = openai_sdk.OpenAI(api_key=KEY, max_retries=0, http_client=http)
        sdk.chat.completions.create(**body)
        assert json.loads(seen[0].content) == body


@respx.mock
def test_openai_decodes_refusals_and_reasoning_tokens_like_the_sdk():
    for name in ("openai/chat_refusal.json", "openai/chat_reasoning_tokens.json"):
        http, _ = _sdk_client(name)
        sdk = openai_sdk.OpenAI(api_key=KEY, max_retries=0, http_client=http)
        theirs = sdk.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "x"}]
        )
        respx.post(OPENAI_URL).mock(return_value=httpx.Response(200, content=raw(name)))
        ours = c.openai_call(c.request("gpt-5", "x", api_key=KEY))["response"]
        assert ours.get("refusal") == theirs.choices[0].message.refusal
        details = theirs.usage.completion_tokens_details
        assert ours["usage"].get("reasoning_tokens") == (details.reasoning_tokens or None)
