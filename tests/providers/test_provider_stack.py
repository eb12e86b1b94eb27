"""The whole middleware stack on every provider issue 16 adds, in one parametrized suite:
retry on the provider's own throttling answer, cache, cost, budget, fallback across providers
and replay, for calls and streams. Each provider answers with its recorded payloads through
respx (the wire bytes, as the service sends them)."""

import asyncio
import base64
import json
from urllib.parse import quote

import attrs
import httpx
import pytest
import respx
from toolz import pipe

import conduit as c
from conduit import catalog
from conduit.streams import collect
from tests.providers.helpers import raw

KEY = "sk-stack-test-key-0001"
AZURE = "https://stack-test.openai.azure.com"
HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
BEDROCK = f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{quote(HAIKU, safe='')}"
GEMINI = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"


@attrs.frozen
class Case:
    model: str  # with its prefix
    url: str  # where calls (and streams, unless stream_url) go
    body: bytes  # a recorded answer
    throttle: httpx.Response  # the provider's own "slow down" answer
    env: dict = attrs.field(factory=dict)
    stream_body: bytes = b""
    stream_type: str = "text/event-stream"
    stream_url: str = ""


def sse_of_chunks(name):
    lines = [line for line in raw(name).decode().splitlines() if line.strip()]
    return "".join(f"data: {line}\n\n" for line in [*lines, "[DONE]"]).encode()


def served_by(name, model):
    """A recorded OpenAI-wire answer with *model* as the model that served it (Together and
    Fireworks answer on OpenAI's wire; no recording of theirs was found)."""
    body = json.loads(raw(name))
    return json.dumps({**body, "model": model}).encode()


def openai_throttle(message="Rate limit reached", **headers):
    return httpx.Response(429, json={"error": {"message": message}}, headers=headers)


CASES = {
    "azure": Case(
        "azure:gpt-4o",
        f"{AZURE}/openai/v1/chat/completions",
        raw("azure/chat_completion.json"),
        openai_throttle(
            "Requests to the ChatCompletions_Create Operation have exceeded the token rate limit",
            **{"retry-after": "0"},
        ),
        {"AZURE_OPENAI_API_KEY": KEY, "AZURE_OPENAI_ENDPOINT": AZURE},
        raw("openai/stream_text.sse"),
    ),
    "gemini": Case(
        "gemini:gemini-2.5-flash",
        f"{GEMINI}:generateContent",
        raw("gemini/generate_content_text.json"),
        # Google's documented 429: RESOURCE_EXHAUSTED with a RetryInfo delay, read as the wait
        httpx.Response(
            429,
            json={
                "error": {
                    "code": 429,
                    "status": "RESOURCE_EXHAUSTED",
                    "message": "Resource has been exhausted (e.g. check quota).",
                    "details": [
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.01s"}
                    ],
                }
            },
        ),
        {"GEMINI_API_KEY": KEY},
        raw("gemini/stream_generate_content.sse"),
        stream_url=f"{GEMINI}:streamGenerateContent?alt=sse",
    ),
    "responses": Case(
        "responses:gpt-4o",
        "https://api.openai.com/v1/responses",
        raw("openai_responses/response_output_text.json"),
        openai_throttle("Rate limit reached for gpt-4o", **{"retry-after-ms": "10"}),
        {"OPENAI_API_KEY": KEY},
        raw("openai_responses/stream_output_text.sse"),
    ),
    "bedrock": Case(
        f"bedrock:{HAIKU}",
        f"{BEDROCK}/converse",
        raw("bedrock/converse_text.json"),
        httpx.Response(
            429,
            json={"message": "Too many requests, please wait before trying again."},
            headers={"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/"},
        ),
        {
            "AWS_ACCESS_KEY_ID": "AKIDSTACKTEST",
            "AWS_SECRET_ACCESS_KEY": KEY,
            "AWS_REGION": "us-east-1",
        },
        base64.b64decode(raw("bedrock/converse_stream_text.eventstream.b64")),
        stream_type="application/vnd.amazon.eventstream",
        stream_url=f"{BEDROCK}/converse-stream",
    ),
    "mistral": Case(
        "mistral:mistral-small-latest",
        "https://api.mistral.ai/v1/chat/completions",
        raw("mistral/chat_text.json"),
        httpx.Response(429, json={"message": "Requests rate limit exceeded"}),
        {"MISTRAL_API_KEY": KEY},
        sse_of_chunks("mistral/stream_text.chunks.txt"),
    ),
    "deepseek": Case(
        "deepseek:deepseek-chat",
        "https://api.deepseek.com/chat/completions",
        raw("deepseek/chat_text.json"),
        httpx.Response(503, json={"error": {"message": "Server overloaded"}}),
        {"DEEPSEEK_API_KEY": KEY},
        sse_of_chunks("deepseek/stream_tool_call.chunks.txt"),
    ),
    "openrouter": Case(
        "openrouter:openai/gpt-4o-mini",
        "https://openrouter.ai/api/v1/chat/completions",
        raw("openrouter/chat_text.json"),
        httpx.Response(429, content=raw("openrouter/error_429.json")),
        {"OPENROUTER_API_KEY": KEY},
        raw("openrouter/stream_text.sse"),
    ),
    "together": Case(
        "together:meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "https://api.together.xyz/v1/chat/completions",
        served_by("openai/chat_text.json", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        openai_throttle(),
        {"TOGETHER_API_KEY": KEY},
        raw("openai/stream_text.sse"),
    ),
    "fireworks": Case(
        "fireworks:accounts/fireworks/models/llama-v3p3-70b-instruct",
        "https://api.fireworks.ai/inference/v1/chat/completions",
        served_by("openai/chat_text.json", "accounts/fireworks/models/llama-v3p3-70b-instruct"),
        openai_throttle(),
        {"FIREWORKS_API_KEY": KEY},
        raw("openai/stream_text.sse"),
    ),
}

NAMES = sorted(CASES)


@pytest.fixture
def case(request, monkeypatch):
    chosen = CASES[request.param]
    for var, value in chosen.env.items():
        monkeypatch.setenv(var, value)
    with respx.mock(assert_all_called=False) as mocked:
        yield chosen, mocked


def ok(case):
    return httpx.Response(200, content=case.body, headers={"content-type": "application/json"})


def streamed(case):
    return httpx.Response(200, content=case.stream_body, headers={"content-type": case.stream_type})


@pytest.mark.parametrize("case", NAMES, indirect=True)
def test_retry_rides_out_the_provider_s_throttling(case):
    case, mocked = case
    route = mocked.post(case.url).mock(side_effect=[case.throttle, ok(case)])
    ctx = pipe(c.request(case.model, "hi"), c.with_retry(initial_delay=0.001), c.call)
    assert ctx["attempts"] == 2 and route.call_count == 2 and c.content(ctx)
    route.mock(side_effect=[case.throttle, ok(case)])
    actx = asyncio.run(c.acall(c.with_retry(initial_delay=0.001)(c.request(case.model, "hi"))))
    assert actx["attempts"] == 2 and c.content(actx) == c.content(ctx)


def test_a_throttled_gemini_call_waits_as_long_as_its_body_says():
    err = c.error_from_response("gemini", 429, {}, CASES["gemini"].throttle.content)
    assert isinstance(err, c.RateLimitError) and err.retry_after == 0.01


@pytest.mark.parametrize("case", NAMES, indirect=True)
def test_a_stream_is_retried_too(case):
    case, mocked = case
    url = case.stream_url or case.url
    mocked.post(url).mock(side_effect=[case.throttle, streamed(case)])
    events = list(c.stream(c.with_retry(initial_delay=0.001)(c.request(case.model, "hi"))))
    resp = collect(events)
    assert resp["stop_reason"] in c.response.STOP_REASONS
    assert c.content(resp) or resp["tool_calls"]


@pytest.mark.parametrize("case", NAMES, indirect=True)
def test_cache_cost_and_budget(case):
    case, mocked = case
    route = mocked.post(case.url).mock(return_value=ok(case))
    cache, budget = c.MemoryCache(), c.with_budget(max_calls=2)
    stack = (c.with_cost, budget, c.with_cache(cache))
    first = pipe(c.request(case.model, "hi"), *stack, c.call)
    again = pipe(c.request(case.model, "hi"), *stack, c.call)
    assert route.call_count == 1 and again["cache_hit"] and c.content(again) == c.content(first)
    assert again["cost"] == 0.0
    usage = first["response"]["usage"]
    prices = catalog.lookup(case.model).prices
    cached = usage.get("cache_read_tokens") or 0
    expected = (
        (usage["input_tokens"] - cached) * prices["input"]
        + cached * prices.get("cache_read", prices["input"])
        + usage["output_tokens"] * prices["output"]
    ) / 1e6
    assert first["cost"] == pytest.approx(expected)
    pipe(c.request(case.model, "other"), *stack, c.call)
    with pytest.raises(c.BudgetExceededError):
        pipe(c.request(case.model, "third"), *stack, c.call)
    assert route.call_count == 2  # the refused call never reached the wire


@pytest.mark.parametrize("case", NAMES, indirect=True)
def test_fallback_crosses_providers_both_ways(case, monkeypatch):
    case, mocked = case
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    down = httpx.Response(503, json={"error": {"message": "unavailable"}})
    mine = mocked.post(case.url).mock(return_value=down)
    anthropic = mocked.post("https://api.anthropic.com/v1/messages").mock(
        return_value=httpx.Response(200, content=raw("anthropic/message_text.json"))
    )
    ctx = pipe(c.request(case.model, "hi"), c.with_fallback(["anthropic:claude-haiku-4-5"]), c.call)
    assert mine.called and anthropic.called and ctx["fallbacks"] == 1
    assert ctx["model"] == case.model  # the caller's model string stays
    anthropic.mock(
        return_value=httpx.Response(
            529,
            json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )
    )
    mine.mock(return_value=ok(case))
    haiku = c.request("anthropic:claude-haiku-4-5", "hi")
    back = pipe(haiku, c.with_fallback([case.model]), c.call)
    assert back["fallbacks"] == 1 and c.content(back) == c.content(
        c.call(c.request(case.model, "hi"))
    )
    sent, bare = mine.calls.last.request, case.model.partition(":")[2]
    in_path = f"/{bare}:" in sent.url.path or f"/model/{bare}/" in sent.url.path
    assert json.loads(sent.content).get("model") == bare or in_path


@pytest.mark.parametrize("case", NAMES, indirect=True)
def test_replay_records_then_answers_offline(case, tmp_path):
    case, mocked = case
    cassette = tmp_path / "calls.jsonl"
    route = mocked.post(case.url).mock(return_value=ok(case))
    live = pipe(c.request(case.model, "hi"), c.with_replay(cassette), c.call)
    assert live["replayed"] is False and route.call_count == 1
    route.mock(side_effect=httpx.ConnectError("offline"))
    again = pipe(c.request(case.model, "hi"), c.with_replay(cassette, mode="replay"), c.call)
    assert again["replayed"] is True and c.content(again) == c.content(live)
    assert KEY not in cassette.read_text()  # no credential in the file
