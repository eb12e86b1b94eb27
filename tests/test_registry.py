"""One provider registry: every reader agrees with it, and the provider is chosen once, at the
bottom of the stack, from the wire request's model."""

import json

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st
from toolz import pipe

import conduit as c
from conduit import catalog, registry
from conduit.cost import price_for
from conduit.exchange import route, wire_of
from tests.providers.helpers import raw

KEY = "sk-test-registry"


@pytest.mark.parametrize(
    ("model", "provider", "bare"),
    [
        ("anthropic:claude-haiku-4-5", "anthropic", "claude-haiku-4-5"),
        ("xai:grok-4", "grok", "grok-4"),
        ("grok:grok-4", "grok", "grok-4"),
        ("ollama:llama3.2:3b", "ollama", "llama3.2:3b"),
        ("ft:gpt-4o-mini:org::abc123", "openai", "ft:gpt-4o-mini:org::abc123"),
        ("llama3:8b", "openai", "llama3:8b"),
        ("gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("meta-llama/Llama-3-8b:free", "openai", "meta-llama/Llama-3-8b:free"),
    ],
)
def test_model_names_split_on_known_prefixes_only(model, provider, bare):
    info, name = registry.split_model(model)
    assert (info.name, name) == (provider, bare)


@pytest.mark.parametrize(
    ("model", "suggestion"),
    [("antropic:claude-haiku-4-5", "anthropic"), ("opnai:gpt-4o", "openai"), ("olama:x", "ollama")],
)
def test_a_misspelt_provider_is_an_error_with_a_did_you_mean(model, suggestion):
    with pytest.raises(c.ValidationError, match=f"did you mean '{suggestion}'"):
        registry.split_model(model)


@respx.mock
def test_a_misspelt_provider_fails_before_any_network_call():
    route_ = respx.post("https://api.openai.com/v1/chat/completions")
    with pytest.raises(c.ValidationError, match="did you mean 'anthropic'") as caught:
        c.call(c.request("antropic:claude-haiku-4-5", "hi", api_key=KEY))
    assert not route_.called and "no API key" not in str(caught.value)


def test_every_registry_entry_has_a_wire_and_a_handler_set():
    for info in registry.PROVIDERS:
        assert wire_of(info.name).name == info.name
        for kind in ("call", "acall", "stream", "astream"):
            assert callable(getattr(c, f"{info.name}_{kind}"))
        assert hasattr(c, f"{info.name}_embed") == info.embeddings
        for prefix in info.prefixes:
            assert registry.lookup(prefix) is info


def test_readers_agree_with_the_registry():
    """Cost and the context windows strip exactly the registry's prefixes."""
    assert price_for("xai:grok-4") == price_for("grok-4") is not None
    assert price_for("anthropic:claude-haiku-4-5") == price_for("claude-haiku-4-5")
    assert catalog.context_window("anthropic:claude-haiku-4-5") == 200_000
    assert registry.bare_model("ft:gpt-4o-mini:org::id") == "ft:gpt-4o-mini:org::id"


@given(st.sampled_from(registry.PROVIDERS), st.text(min_size=1, max_size=20))
def test_a_prefixed_name_round_trips(info, model):
    for prefix in info.prefixes:
        found, bare = registry.split_model(f"{prefix}:{model}")
        assert found is info and bare == model


def test_the_provider_is_chosen_at_the_bottom_from_the_wire_request():
    """Middleware sees the caller's model string; only the exchange strips the prefix."""
    seen = []

    def spy(req):
        seen.append(req["model"])
        return (yield req)

    script = c.mock_script("ok")
    ctx = pipe(c.request("mock:any", "hi", mock=script), c.with_middleware(spy), c.call)
    assert seen == ["mock:any"] and script.calls[0]["model"] == "any"
    assert ctx["model"] == "mock:any"
    wire, sent = route("openai", c.request("ollama:llama3.2:3b"))
    assert (wire.name, sent["model"]) == ("ollama", "llama3.2:3b")


@respx.mock
def test_a_fallback_leaves_the_provider_it_started_with():
    """openai_call with a fallback to Anthropic: the second exchange goes to Anthropic."""
    openai_route = respx.post("https://api.openai.com/v1/chat/completions").mock(
        return_value=httpx.Response(503, json={"error": {"message": "busy"}})
    )
    anthropic_route = respx.post("https://api.anthropic.com/v1/messages").mock(
        return_value=httpx.Response(200, content=raw("anthropic/message_text.json"))
    )
    req = c.request("gpt-4o-mini", "hi", api_key=KEY)
    ctx = pipe(req, c.with_fallback(["anthropic:claude-haiku-4-5"]), c.openai_call)
    assert openai_route.called and anthropic_route.called and ctx["fallbacks"] == 1
    sent = json.loads(anthropic_route.calls.last.request.content)
    assert sent["model"] == "claude-haiku-4-5" and ctx["model"] == "gpt-4o-mini"
    assert anthropic_route.calls.last.request.headers["x-api-key"] == KEY


def test_the_mock_is_scripted_by_a_plain_set_too():
    """req.set("mock", ...) scripts the mock like request(..., mock=...)."""
    req = c.request("m", "hi").set("mock", "scripted")
    assert c.content(c.mock_call(req)) == "scripted"
    ctx = c.mock_call({"model": "m", "messages": [{"role": "user", "content": "hi"}], "mock": "x"})
    assert c.content(ctx) == "x" and c.content(c.mock_call(c.reply(ctx, "again"))) == "x"


@respx.mock
@pytest.mark.parametrize("name", [info.name for info in registry.PROVIDERS])
def test_every_wire_returns_the_request_it_was_given_plus_a_response(name):
    """The Wire contract the no-middleware fast path relies on (conduit.exchange._bare)."""
    from conduit._drive import run_effects

    answers = {
        "anthropic": "anthropic/message_text.json",
        "responses": "openai_responses/response_output_text.json",
        "gemini": "gemini/generate_content_text.json",
        "bedrock": "bedrock/converse_text.json",
    }
    body = raw(answers.get(name, "openai/chat_text.json"))
    respx.route(method="POST").mock(return_value=httpx.Response(200, content=body))
    wire = wire_of(name)
    req = c.request("some-model", "hi", api_key=KEY, base_url="http://127.0.0.1:9/v1")
    out = run_effects(name, wire.call(req))
    assert set(out) == {*req, "response"} and all(out[k] == req[k] for k in req)
    if wire.embed is not None:
        emb = c.embedding_request("some-model", ["a"], api_key=KEY, base_url="http://127.0.0.1:9")
        data = {"data": [{"index": 0, "embedding": [0.5]}], "embeddings": [[0.5]]}
        if name == "gemini":  # batchEmbedContents: {"embeddings": [{"values": [...]}]}
            data = {"embeddings": [{"values": [0.5]}]}
        respx.route(method="POST").mock(return_value=httpx.Response(200, json=data))
        out = run_effects(name, wire.embed(emb))
        assert set(out) == {*emb, "response"} and all(out[k] == emb[k] for k in emb)


@pytest.mark.parametrize("model", ["ANTHROPIC:claude", "OpenAI:gpt-4o", "Anthropic:claude"])
def test_a_provider_in_the_wrong_case_is_caught_too(model):
    with pytest.raises(c.ValidationError, match="did you mean"):
        registry.split_model(model)


def test_a_provider_without_a_model_says_what_to_write():
    with pytest.raises(c.ValidationError, match=r"'ollama:llama3\.2'"):
        registry.split_model("ollama:")


def test_the_old_embed_form_still_works_and_a_chat_request_is_refused():
    emb = c.mock_embed("mock-embed", ["a", "b"])  # 0.1's (model, texts)
    assert emb.vectors.shape == (2, 16)
    with pytest.raises(c.ValidationError, match="not an embedding request"):
        c.mock_embed(c.request("mock:e", "hi"))


def test_an_agent_keeps_the_callers_tools():
    def now() -> str:
        "The time."
        return "noon"

    script = c.mock_script([{"tool_calls": [{"name": "now"}]}, "It is noon."])
    ctx = c.agent(c.mock_call, [now])(c.request("m", "time?", mock=script))
    assert "tools" not in ctx and c.content(ctx) == "It is noon."
    assert script.calls[0]["tools"][0]["name"] == "now"  # the loop's tools went on the wire


WIRE_OK = {
    "anthropic": "anthropic/message_text.json",
    "responses": "openai_responses/response_output_text.json",
    "gemini": "gemini/generate_content_text.json",
    "bedrock": "bedrock/converse_text.json",
}
SENDERS = [i.name for i in registry.PROVIDERS if i.name != "mock"]


def _wire_request(name):
    info = registry.lookup(name)
    extra = {"base_url": "https://r.openai.azure.com"} if name == "azure" else {}
    extra |= {"region": "eu-west-1"} if name == "bedrock" else {}
    history = [c.system("S"), c.user("old question"), c.assistant("old answer"), c.user("Weather?")]
    return c.request(f"{name}:{info.default_model}", history, api_key=KEY, **extra)


@respx.mock
@pytest.mark.parametrize("name", SENDERS)
def test_wire_is_what_the_call_then_sends(name, monkeypatch):
    """c.wire, after the middleware's inbound changes, equals the request the call sends."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDWIRETEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wire-test-secret-key")
    req = pipe(_wire_request(name), c.with_window(2), c.with_retry)
    shown = c.wire(req)
    route = respx.post(shown["url"]).mock(
        return_value=httpx.Response(200, content=raw(WIRE_OK.get(name, "openai/chat_text.json")))
    )
    c.call(req)
    sent = route.calls.last.request
    assert str(sent.url) == shown["url"] and sent.method == shown["method"]
    assert json.loads(sent.content) == shown["body"]
    assert "old question" not in json.dumps(shown["body"])  # the window applied on the way in
    for header, value in shown["headers"].items():
        if value not in ("***", "(signed when sent)"):
            assert sent.headers[header] == value
    assert KEY not in json.dumps(shown) and "wire-test-secret-key" not in json.dumps(shown)


@pytest.mark.parametrize("name", SENDERS)
def test_wire_needs_no_credential(name, monkeypatch):
    for info in registry.PROVIDERS:
        for var in filter(None, (info.env_key, *info.requires)):
            monkeypatch.delenv(var, raising=False)
    req = _wire_request(name).discard("api_key")
    shown = c.wire(req)
    assert shown["provider"] == name and "Weather?" in json.dumps(shown["body"])
    assert shown == c.wire(req)  # pure: the same request, the same wire request
    with pytest.raises(c.ValidationError, match="no wire request to show"):
        c.wire(c.request("mock:x", "hi"))


EMBED_OK = {
    "gemini": "gemini/batch_embed_contents.json",
    "ollama": "ollama/native_embed.json",
}
EMBEDDERS = [i.name for i in registry.PROVIDERS if i.embeddings and i.name != "mock"]


@respx.mock
@pytest.mark.parametrize("name", EMBEDDERS)
def test_wire_of_an_embedding_request_is_what_embed_then_sends(name):
    """c.wire shows an embedding request's own URL and body, not a chat call's."""
    extra = {"base_url": "https://r.openai.azure.com"} if name == "azure" else {}
    answer = raw(EMBED_OK.get(name, "openai/embeddings_float.json"))
    rows = json.loads(answer).get("data") or json.loads(answer)["embeddings"]
    texts = ["first text", "second"][: len(rows)]  # a text per row the recording holds
    req = c.embedding_request(f"{name}:emb-model", texts, api_key=KEY, **extra)
    shown = c.wire(req)
    assert "messages" not in shown["body"] and "contents" not in shown["body"]
    route = respx.post(shown["url"]).mock(return_value=httpx.Response(200, content=answer))
    c.embed(req)
    sent = route.calls.last.request
    assert str(sent.url) == shown["url"] and json.loads(sent.content) == shown["body"]
    assert texts[-1] in json.dumps(shown["body"]) and KEY not in json.dumps(shown)


def test_wire_of_an_embedding_request_to_a_chat_only_provider_says_so():
    with pytest.raises(c.ValidationError, match="anthropic has no embeddings"):
        c.wire(c.embedding_request("anthropic:claude-haiku-4-5", ["a"], api_key=KEY))


def test_a_cache_hit_sends_nothing():
    cache = c.MemoryCache()
    req = pipe(c.request("mock:x", "hi", mock="cached answer"), c.with_cache(cache))
    c.call(req)
    shown = c.wire(req)
    assert shown["cache_hit"] and c.content(shown["response"]) == "cached answer"


WIRES = [
    (info.name, kind)
    for info in registry.PROVIDERS
    if info.name != "mock"
    for kind in ("chat", "stream", "embeddings")
    if kind != "embeddings" or info.embeddings
]


@pytest.mark.parametrize(("name", "kind"), WIRES)
def test_a_base_urls_query_goes_after_the_path_on_every_wire(name, kind, monkeypatch):
    """A gateway's ``?team=blue`` (or a key in the query) is sent at the end of the URL, after
    the path the provider adds, whatever that path holds (Gemini's ``?alt=sse``)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    base = "https://gw.example/root?team=blue&key=sk-in-the-query"
    if kind == "embeddings":
        req = c.embedding_request(f"{name}:some-model", ["a"], base_url=base, api_key="sk-x")
    else:
        req = c.request(f"{name}:some-model", "hi", base_url=base, api_key="sk-x")
    url = c.wire(req, stream=kind == "stream")["url"]
    head, _, query = url.partition("?")
    assert head.startswith("https://gw.example/root/") and "team" not in head, url
    assert query.endswith("team=blue&key=***") and url.count("?") == 1, url
    assert "sk-in-the-query" not in repr(req) + url
