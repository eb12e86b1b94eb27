"""The built-in middleware end to end: through the mock and through real HTTP (respx)."""

import asyncio
import json
import logging

import httpx
import pytest
import respx
from toolz import compose_left, pipe

import conduit as c
from tests.providers.helpers import raw

KEY = "sk-never-log-me-0123456789"
OPENAI = "https://api.openai.com/v1/chat/completions"


def test_retry_reruns_the_cache_lookup_and_the_call_inside_it():
    script = c.mock_script(
        "finally", fail_first=2, error=c.ServerError("busy", status_code=503, retry_after=0.01)
    )
    store = c.MemoryCache()
    req = c.request("m", "hi", mock=script)
    ctx = pipe(req, c.with_retry, c.with_cache(store), c.mock_call)
    assert (ctx["attempts"], ctx["cache_hit"], len(script.calls)) == (3, False, 3)
    again = pipe(req, c.with_retry, c.with_cache(store), c.mock_call)
    assert (again["attempts"], again["cache_hit"], len(script.calls)) == (1, True, 3)
    assert c.content(again) == "finally"


@respx.mock
def test_cache_hit_skips_the_network_and_is_not_billed():
    route = respx.post(OPENAI).mock(
        return_value=httpx.Response(200, content=raw("openai/chat_text.json"))
    )
    store = c.MemoryCache()
    stack = compose_left(c.with_cost, c.with_cache(store))
    req = c.request("gpt-4o", "What is 4200 + 42?", api_key=KEY)
    first = pipe(req, stack, c.openai_call)
    second = pipe(req, stack, c.openai_call)
    assert route.call_count == 1
    assert first["cost"] == pytest.approx((16 * 2.5 + 12 * 10.0) / 1e6)
    assert second["cost"] == 0.0 and second["cache_hit"] is True
    assert second["response"] == first["response"]


def test_only_successful_responses_are_cached():
    store = c.MemoryCache()
    req = c.request("m", "hi", mock=c.mock_script(["ok"], fail_first=1))
    with pytest.raises(c.ServerError):
        pipe(req, c.with_cache(store), c.mock_call)
    assert len(store) == 0
    assert pipe(req, c.with_cache(store), c.mock_call)["cache_hit"] is False
    assert len(store) == 1


def test_ttl_expires_entries():
    now = [0.0]
    store = c.MemoryCache(clock=lambda: now[0])
    script = c.mock_script("fresh")
    req = c.request("m", "hi", mock=script)
    run = lambda: pipe(req, c.with_cache(store, ttl=10), c.mock_call)["cache_hit"]  # noqa: E731
    assert [run(), run()] == [False, True]
    now[0] = 11.0
    assert run() is False and len(script.calls) == 2


def test_lru_evicts_the_least_recently_used():
    store = c.MemoryCache(maxsize=2)
    for text in ("a", "b", "a", "c"):
        pipe(c.request("m", text), c.with_cache(store), c.mock_call)
    hits = [pipe(c.request("m", t), c.with_cache(store), c.mock_call)["cache_hit"] for t in "acb"]
    assert hits == [True, True, False]


def test_sqlite_cache_persists_across_instances(tmp_path):
    path = tmp_path / "cache.db"
    script = c.mock_script("stored on disk")
    req = c.request("m", "hi", mock=script)
    first = c.SQLiteCache(path)
    pipe(req, c.with_cache(first), c.mock_call)
    first.close()
    second = c.SQLiteCache(path)
    ctx = pipe(req, c.with_cache(second), c.mock_call)
    assert ctx["cache_hit"] is True and c.content(ctx) == "stored on disk"
    assert len(script.calls) == 1
    assert path.stat().st_size > 0


def test_sqlite_ttl(tmp_path):
    now = [1000.0]
    store = c.SQLiteCache(tmp_path / "c.db", clock=lambda: now[0])
    req = c.request("m", "hi")
    pipe(req, c.with_cache(store, ttl=5), c.mock_call)
    assert pipe(req, c.with_cache(store, ttl=5), c.mock_call)["cache_hit"] is True
    now[0] += 6
    assert pipe(req, c.with_cache(store, ttl=5), c.mock_call)["cache_hit"] is False


def test_streams_replay_from_the_cache():
    store = c.MemoryCache()
    script = c.mock_script("cached words stream back")
    req = c.request("m", "hi", mock=script)
    called = pipe(req, c.with_cache(store), c.mock_call)
    events = list(pipe(req, c.with_cache(store), c.mock_stream))
    assert c.collect(events)["content"] == c.content(called)
    assert [e["type"] for e in events][:2] == ["message_start", "content_delta"]
    assert len(script.calls) == 1


def test_a_stream_fills_the_cache_for_later_calls():
    store = c.MemoryCache()
    script = c.mock_script("streamed first")
    req = c.request("m", "hi", mock=script)
    list(pipe(req, c.with_cache(store), c.mock_stream))
    assert pipe(req, c.with_cache(store), c.mock_call)["cache_hit"] is True
    assert len(script.calls) == 1


async def test_async_cache_and_cost():
    store = c.MemoryCache()
    usage = {"input_tokens": 100, "output_tokens": 10, "total_tokens": 110}
    req = pipe(
        c.request("gpt-4o-mini", "hi", mock={"content": "x", "usage": usage}),
        c.with_cost,
        c.with_cache(store),
    )
    first, second = await c.mock_acall(req), await c.mock_acall(req)
    assert first["cost"] > 0 and second["cost"] == 0.0


def test_logging_records_fields_for_calls_cache_hits_and_streams(caplog):
    store = c.MemoryCache()
    req = pipe(
        c.request("gpt-4o-mini", "hi", api_key=KEY),
        c.with_logging,
        c.with_cost,
        c.with_cache(store),
    )
    with caplog.at_level(logging.INFO, logger="conduit"):
        c.mock_call(req)
        c.mock_call(req)
        list(
            c.mock_stream(
                c.request("m", "streamed", api_key=KEY).set("middleware", req["middleware"])
            )
        )
    records = [r for r in caplog.records if hasattr(r, "conduit")]  # not the pricing warning
    assert len(records) == 3
    fields = [r.conduit for r in records]
    assert [f["cache_hit"] for f in fields] == [False, True, False]
    assert fields[1]["cost"] == 0.0 and fields[0]["output_tokens"] == 1
    assert all(f["latency_ms"] >= 0 for f in fields)
    assert "model=gpt-4o-mini" in records[0].getMessage()


@respx.mock
def test_logs_and_errors_never_contain_the_api_key(caplog):
    respx.post(OPENAI).mock(
        return_value=httpx.Response(401, content=raw("openai/error_401_invalid_api_key.json"))
    )
    req = pipe(c.request("gpt-4o", "hi", api_key=KEY), c.with_logging, c.with_retry)
    with caplog.at_level(logging.DEBUG), pytest.raises(c.AuthenticationError) as exc:
        c.openai_call(req)
    warning = next(r for r in caplog.records if r.name == "conduit")
    assert warning.levelno == logging.WARNING
    assert (
        warning.conduit["error"] == "AuthenticationError" and warning.conduit["status_code"] == 401
    )
    everything = (
        caplog.text
        + str(exc.value)
        + repr(exc.value.data)
        + json.dumps([r.conduit for r in caplog.records if hasattr(r, "conduit")], default=str)
    )
    assert KEY not in everything


def test_fallback_switches_provider_for_real():
    failing = c.request("mock:primary", "hi", mock=c.ServerError("primary down", status_code=503))
    with respx.mock:
        route = respx.post(OPENAI).mock(
            return_value=httpx.Response(200, content=raw("openai/chat_text.json"))
        )
        ctx = c.call(
            pipe(failing.set("api_key", c.Secret(KEY)), c.with_fallback(["openai:gpt-4o"]))
        )
    assert ctx["fallbacks"] == 1 and c.content(ctx) == "\\(4200 + 42 = 4242\\)."
    assert json.loads(route.calls.last.request.content)["model"] == "gpt-4o"


async def test_fallback_async_and_stream():
    req = c.request(
        "mock:a", "hi", mock=lambda r: c.ServerError("down") if r["model"] == "a" else "b ok"
    )
    fb = c.with_fallback(["mock:b"])
    assert c.content(await c.acall(fb(req))) == "b ok"
    assert c.collect(c.stream(fb(req)))["content"] == "b ok"
    assert c.collect([e async for e in c.astream(fb(req))])["content"] == "b ok"


def test_with_star_validation_messages():
    with pytest.raises(c.ValidationError, match=r"with_timeout\(seconds=\.\.\.\) must be a finite"):
        c.with_timeout(0)
    with pytest.raises(c.ValidationError, match="with_fallback needs a list of models"):
        c.with_fallback("gpt-4o")
    with pytest.raises(c.ValidationError, match=r"with_fallback needs .*c.with_fallback\(\["):
        pipe(c.request("m"), c.with_fallback)
    with pytest.raises(c.ValidationError, match="with_retry has no option 'max_retries'"):
        c.with_retry(max_retries=5)


def test_bare_timeout_gives_the_call_a_minute():
    req = pipe(c.request("m", "hi"), c.with_timeout)
    assert req["middleware"][0].options["seconds"] == 60.0
    assert c.content(c.mock_call(req)) == "hi"


def test_timeout_through_the_mock_sync_and_async():
    req = c.request("m", "hi", mock=c.mock_script("late", delay=0.5))
    with pytest.raises(c.TimeoutError):
        pipe(req, c.with_timeout(0.05), c.mock_call)
    with pytest.raises(c.TimeoutError):
        asyncio.run(c.mock_acall(c.with_timeout(0.05)(req)))
    with pytest.raises(c.TimeoutError):
        list(pipe(req, c.with_timeout(0.05), c.mock_stream))


CACHED_SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}


def test_a_cache_recorded_outside_a_schema_and_retrieval_sits_inside_them():
    """Recorded first (outermost), a cache still keys the request the model sees and answers
    inside with_schema and with_retrieval: a hit is parsed and has its sources, and a plain
    answer cached for the same words is not served to a request asking for a schema."""
    embed = c.hash_embedder(64)
    docs = c.add_documents(c.memory_store(), [c.document("Cats purr.", id="d")], embed)
    ask = compose_left(
        c.with_cache(c.MemoryCache()),
        c.with_retrieval(c.retriever(embed, docs, k=1)),
        c.with_schema(CACHED_SCHEMA),
    )
    script = c.mock_script(['{"a": "1"}'])
    first, again = (
        c.mock_call(ask(c.request("m", "Do cats purr?", mock=script))) for _ in range(2)
    )
    assert len(script.calls) == 1 and (first["cache_hit"], again["cache_hit"]) == (False, True)
    assert again["parsed"] == first["parsed"] == {"a": "1"}
    assert [s["document"]["id"] for s in again["sources"]] == ["d"]
    assert again["sources"] == first["sources"]
    assert again["messages"] == first["messages"] == [c.user("Do cats purr?")]
    store = c.MemoryCache()
    c.mock_call(pipe(c.request("m", "Name a colour", mock="Blue."), c.with_cache(store)))
    typed = c.mock_call(
        pipe(
            c.request("m", "Name a colour", mock='{"a": "blue"}'),
            c.with_cache(store),
            c.with_schema(CACHED_SCHEMA),
        )
    )
    assert typed["cache_hit"] is False and typed["parsed"] == {"a": "blue"}
