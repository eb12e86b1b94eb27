"""Embeddings are requests: real OpenAI payloads (base64 and float) decode to the same float32
rows in input order; every middleware applies to an embedding request, through the mock and
through a respx-mocked OpenAI, sync and async; vectors round-trip exactly."""

import asyncio
import base64
import copy
import json
import logging
import time

import httpx
import numpy as np
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from toolz import pipe

import conduit as c
from conduit.cost import PRICES, call_cost
from conduit.embeddings import embedding_response, encode_rows
from conduit.providers import openai
from conduit.ratelimit import estimate_cost
from tests.providers.helpers import load, raw

URL = "https://api.openai.com/v1/embeddings"
OLLAMA_URL = "http://localhost:11434/api/embed"
KEY = "sk-test-embeddings-0123456789"
MODEL = "text-embedding-3-small"
TEXTS = ["hello", "world"]  # what the real base64 recording embedded, in this order
B64 = load("openai/embeddings_base64.json")  # real: text-embedding-3-small, base64 rows
FLOATS = load("openai/embeddings_float.json")  # real: text-embedding-ada-002, float rows


def rows_of(body):
    """The float32 rows of a real body, by their ``index``, read straight from the JSON."""
    out = {}
    for item in body["data"]:
        emb = item["embedding"]
        if isinstance(emb, str):
            out[item["index"]] = np.frombuffer(base64.b64decode(emb), dtype="<f4")
        else:
            out[item["index"]] = np.asarray(emb, dtype=np.float32)
    return np.stack([out[i] for i in sorted(out)])


def decoded(body, texts=TEXTS):
    return c.vectors(openai.decode_embeddings(c.embedding_request(MODEL, texts), body))


def as_float_body(body):
    """The float-JSON form of *body* (every row as a list of numbers), through real JSON text."""
    rows = rows_of(body)
    data = [
        {**item, "embedding": rows[item["index"]].tolist()} for item in copy.deepcopy(body["data"])
    ]
    return json.loads(json.dumps({**body, "data": data}))


def as_base64_body(body):
    """The base64 form of *body*: each row's float32 bytes (what ``encoding_format=base64`` is)."""
    rows = rows_of(body)
    data = [
        {**item, "embedding": encode_rows(rows[item["index"]])[0]}
        for item in copy.deepcopy(body["data"])
    ]
    return {**body, "data": data}


# --- decoding real payloads ------------------------------------------------------------------


def test_real_base64_payload_decodes_to_its_float32_rows():
    ctx = openai.decode_embeddings(c.embedding_request(MODEL, TEXTS), B64)
    m = c.vectors(ctx)
    assert m.dtype == np.float32 and m.shape == (2, 1536)
    assert np.array_equal(m, rows_of(B64))
    # text-embedding-3 vectors are unit length: the bytes were read as little-endian float32
    assert np.allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    assert ctx["response"]["model"] == MODEL
    assert ctx["response"]["usage"] == {"input_tokens": 2, "output_tokens": 0, "total_tokens": 2}


def test_real_float_payload_decodes_with_float32_rounding():
    m = decoded(FLOATS, ["The food was delicious and the waiter..."])
    floats = FLOATS["data"][0]["embedding"]
    assert m.dtype == np.float32 and m.shape == (1, len(floats)) == (1, 1536)
    assert np.array_equal(m[0], np.asarray(floats, dtype=np.float64).astype(np.float32))
    assert (
        c.usage(openai.decode_embeddings(c.embedding_request(MODEL, ["x"]), FLOATS))["input_tokens"]
        == FLOATS["usage"]["prompt_tokens"]
    )


@pytest.mark.parametrize(
    ("body", "texts"),
    [(B64, TEXTS), (FLOATS, ["The food was delicious and the waiter..."])],
    ids=["base64_recording", "float_recording"],
)
def test_the_base64_and_float_forms_of_a_real_payload_decode_identically(body, texts):
    as_b64, as_float = decoded(as_base64_body(body), texts), decoded(as_float_body(body), texts)
    assert as_b64.shape == as_float.shape == decoded(body, texts).shape
    assert as_b64.tobytes() == as_float.tobytes() == decoded(body, texts).tobytes()


@pytest.mark.parametrize("form", [lambda b: b, as_float_body], ids=["base64", "float"])
def test_rows_out_of_order_in_data_come_back_in_input_order(form):
    body = form(B64)
    shuffled = {**body, "data": list(reversed(body["data"]))}
    assert [d["index"] for d in shuffled["data"]] == [1, 0]
    m = decoded(shuffled)
    assert np.array_equal(m, decoded(body))
    assert np.array_equal(m[0], rows_of(B64)[0]) and not np.array_equal(m[0], m[1])


def test_decoding_does_not_mutate_the_body():
    for body in (B64, as_float_body(B64), FLOATS):
        before = copy.deepcopy(body)
        decoded({**body, "data": list(reversed(body["data"]))}, TEXTS[: len(body["data"])])
        assert body == before


@pytest.mark.parametrize("texts", [TEXTS[:1], [*TEXTS, "third"]])
def test_an_answer_with_a_row_per_text_too_few_or_too_many_is_refused(texts):
    """Vectors are paired with texts by position: an answer whose rows do not match the texts
    sent is a malformed answer, never vectors silently paired with the wrong texts."""
    with pytest.raises(c.ProviderError, match=f"2 embeddings for {len(texts)} texts"):
        decoded(B64, texts)


# --- every middleware applies to embedding requests ------------------------------------------


@pytest.fixture(params=["mock", "openai"])
def wire(request):
    """Where embedding requests go: the mock, or OpenAI answering with the real recording."""
    if request.param == "mock":
        yield {"model": f"mock:{MODEL}", "route": None}
        return
    with respx.mock(assert_all_called=False) as router:
        route = router.post(URL).mock(
            side_effect=lambda r: httpx.Response(200, content=raw("openai/embeddings_base64.json"))
        )
        yield {"model": MODEL, "route": route}


@pytest.fixture(params=["sync", "async"])
def embed(request):
    if request.param == "sync":
        return c.embed
    return lambda req: asyncio.run(c.aembed(req))


def ereq(wire, texts=TEXTS, **settings):
    return c.embedding_request(wire["model"], texts, api_key=KEY, **settings)


def counter():
    """A middleware counting the exchanges that reach it (what runs below it)."""
    seen = []

    def count(req):
        seen.append(req)
        return (yield req)

    return c.with_middleware(count), seen


def sent(wire):
    return None if wire["route"] is None else wire["route"].call_count


def test_with_retry_reruns_the_embedding(wire, embed):
    failures = []

    def flaky(req):
        if not failures:
            failures.append(1)
            raise c.RateLimitError("slow down", provider="test", status_code=429)
        return (yield req)

    counted, seen = counter()
    req = pipe(ereq(wire), c.with_retry(initial_delay=0), c.with_middleware(flaky), counted)
    ctx = embed(req)
    assert ctx["attempts"] == 2 and len(seen) == 1
    assert c.vectors(ctx).shape[0] == 2
    assert sent(wire) in (None, 1)


@pytest.mark.parametrize("mode", ["sync", "async"])
@respx.mock
def test_with_retry_over_a_real_429(mode):
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(
                429,
                json={"error": {"message": "Rate limit reached", "type": "requests"}},
                headers={"retry-after": "0.01"},
            ),
            httpx.Response(200, content=raw("openai/embeddings_base64.json")),
        ]
    )
    req = pipe(c.embedding_request(MODEL, TEXTS, api_key=KEY), c.with_retry(initial_delay=0))
    ctx = c.embed(req) if mode == "sync" else asyncio.run(c.aembed(req))
    assert route.call_count == 2 and ctx["attempts"] == 2
    assert np.array_equal(c.vectors(ctx), rows_of(B64))
    for call in route.calls:
        assert json.loads(call.request.content)["input"] == TEXTS


def test_with_cache_answers_the_same_texts_without_a_call(wire, embed):
    counted, seen = counter()
    cache = c.with_cache(c.MemoryCache())
    first = embed(pipe(ereq(wire), cache, counted))
    again = embed(pipe(ereq(wire), cache, counted))
    assert (first["cache_hit"], again["cache_hit"]) == (False, True)
    assert len(seen) == 1 and sent(wire) in (None, 1)
    assert np.array_equal(c.vectors(again), c.vectors(first))
    other = embed(pipe(ereq(wire, ["hello", "there"]), cache, counted))  # the key holds `input`
    assert other["cache_hit"] is False and len(seen) == 2 and sent(wire) in (None, 2)


def test_with_cost_prices_the_embedding(wire, embed):
    ctx = embed(pipe(ereq(wire), c.with_cost))
    used = c.usage(ctx)
    assert used["input_tokens"] > 0 and used["output_tokens"] == 0
    assert ctx["cost"] == call_cost(used, PRICES[MODEL]) > 0
    assert ctx["cost"] == pytest.approx(used["input_tokens"] * 0.02 / 1_000_000)


def test_with_budget_counts_embedding_calls(wire, embed):
    capped = c.with_budget(max_calls=1)
    first = embed(pipe(ereq(wire), capped))
    assert first["budget"]["calls"] == 1
    with pytest.raises(c.BudgetExceededError, match="calls"):
        embed(pipe(ereq(wire), capped))
    assert sent(wire) in (None, 1)  # refused before the request went out


class SpyLimiter:
    def __init__(self):
        self.acquired, self.settled = [], []

    def acquire(self, requests, tokens):
        self.acquired.append((requests, tokens))
        return 0.0

    def settle(self, tokens):
        self.settled.append(tokens)


def test_with_rate_limit_reserves_the_texts_and_settles_the_usage(wire, embed):
    spy = SpyLimiter()
    req = ereq(wire, ["a somewhat longer text to embed", "short"])
    ctx = embed(pipe(req, c.with_rate_limit(spy)))
    estimate = estimate_cost(req)
    assert spy.acquired == [(1, estimate)] and 0 < estimate < 256  # the texts, no output budget
    assert spy.settled == [c.usage(ctx)["total_tokens"] - estimate]


def test_with_rate_limit_paces_embedding_calls(wire, embed):
    limit = c.with_rate_limit(c.RateLimiter(requests_per_minute=1200, burst=1))  # 20 a second
    start = time.monotonic()
    for _ in range(4):
        embed(pipe(ereq(wire), limit))
    assert time.monotonic() - start >= 0.14  # 3 waits of 0.05 s
    assert sent(wire) in (None, 4)


def test_with_timeout_bounds_the_http_embedding():
    seen = []

    def answer(request):
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, content=raw("openai/embeddings_base64.json"))

    with respx.mock:
        respx.post(URL).mock(side_effect=answer)
        c.embed(pipe(c.embedding_request(MODEL, TEXTS, api_key=KEY), c.with_timeout(0.5)))
        asyncio.run(
            c.aembed(pipe(c.embedding_request(MODEL, TEXTS, api_key=KEY), c.with_timeout(0.5)))
        )
    for timeouts in seen:  # the transport is given what is left of the deadline, not its default
        assert all(0 < t <= 0.5 for t in timeouts.values())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_with_timeout_bounds_the_mock_embedding(mode):
    req = pipe(
        c.embedding_request(f"mock:{MODEL}", TEXTS, mock=c.mock_script(delay=5)),
        c.with_timeout(0.05),
    )
    start = time.monotonic()
    with pytest.raises(c.TimeoutError):
        c.embed(req) if mode == "sync" else asyncio.run(c.aembed(req))
    assert time.monotonic() - start < 2  # the deadline, not the script's whole delay (5 s)


def test_the_mock_script_fails_embeddings_as_scripted():
    script = c.mock_script(fail_first=1)
    req = c.embedding_request(f"mock:{MODEL}", TEXTS, mock=script)
    ctx = c.embed(pipe(req, c.with_retry(initial_delay=0)))
    assert ctx["attempts"] == 2 and len(script.calls) == 2


def test_with_replay_records_then_replays_offline(tmp_path, embed):
    cassette = tmp_path / "embeddings.jsonl"
    req = c.embedding_request(MODEL, TEXTS, api_key=KEY)
    with respx.mock:
        route = respx.post(URL).mock(
            return_value=httpx.Response(200, content=raw("openai/embeddings_base64.json"))
        )
        live = embed(pipe(req, c.with_replay(cassette, mode="record")))
    assert route.call_count == 1 and live["replayed"] is False
    with respx.mock(assert_all_mocked=True):  # no route: any HTTP request would fail
        offline = embed(pipe(req, c.with_replay(cassette, mode="replay")))
    assert offline["replayed"] is True
    assert np.array_equal(c.vectors(offline), rows_of(B64))
    assert offline["response"] == live["response"]
    assert KEY not in cassette.read_text()


def test_with_replay_through_the_mock(tmp_path, embed):
    counted, seen = counter()
    replay = c.with_replay(tmp_path / "mock.jsonl")
    req = c.embedding_request(f"mock:{MODEL}", TEXTS)
    live = embed(pipe(req, replay, counted))
    offline = embed(pipe(req, replay, counted))
    assert (live["replayed"], offline["replayed"], len(seen)) == (False, True, 1)
    assert np.array_equal(c.vectors(offline), c.vectors(live))


def test_with_logging_logs_the_embedding_and_never_the_key(wire, embed, caplog):
    with caplog.at_level(logging.INFO, logger="conduit"):
        ctx = embed(pipe(ereq(wire), c.with_logging))
    lines = [r.getMessage() for r in caplog.records if r.name == "conduit"]
    assert len(lines) == 1
    assert f"model={MODEL}" in lines[0]
    assert f"input_tokens={c.usage(ctx)['input_tokens']}" in lines[0]
    assert all(KEY not in r.getMessage() and KEY not in str(r.__dict__) for r in caplog.records)


# --- handlers, shortcut, dispatch ------------------------------------------------------------


def test_vectors_is_a_read_only_float32_matrix():
    ctx = c.embed(c.embedding_request("mock:any", ["a", "b", "c"]))
    m = c.vectors(ctx)
    assert m.dtype == np.float32 and m.shape == (3, 16) and not m.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        m[0, 0] = 1.0
    assert np.allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("mode", ["sync", "async"])
@respx.mock
def test_the_openai_embed_shortcut_returns_embeddings(mode):
    route = respx.post(URL).mock(
        return_value=httpx.Response(200, content=raw("openai/embeddings_base64.json"))
    )
    if mode == "sync":
        out = c.openai_embed(["a", "b"], model=MODEL, api_key=KEY)
    else:
        out = asyncio.run(c.openai_aembed(["a", "b"], model=MODEL, api_key=KEY))
    assert isinstance(out, c.Embeddings)
    assert out.model == MODEL and out.usage["input_tokens"] == 2
    assert np.array_equal(out.vectors, rows_of(B64)) and not out.vectors.flags.writeable
    sent_req = route.calls.last.request
    assert json.loads(sent_req.content) == {
        "model": MODEL,
        "input": ["a", "b"],
        "encoding_format": "base64",
    }
    assert sent_req.headers["authorization"] == f"Bearer {KEY}"


@respx.mock
def test_embed_routes_an_ollama_model_to_api_embed(monkeypatch):
    monkeypatch.delenv("OLLAMA_BASE_URL", raising=False)
    route = respx.post(OLLAMA_URL).mock(
        return_value=httpx.Response(200, content=raw("ollama/native_embed.json"))
    )
    ctx = c.embed(c.embedding_request("ollama:all-minilm", ["hi"]))
    assert route.call_count == 1
    assert json.loads(route.calls.last.request.content) == {"model": "all-minilm", "input": ["hi"]}
    expected = np.asarray(load("ollama/native_embed.json")["embeddings"], dtype=np.float32)
    assert np.array_equal(c.vectors(ctx), expected) and c.vectors(ctx).shape == (1, 10)


# --- properties ------------------------------------------------------------------------------

matrices = hnp.arrays(
    dtype="<f4",
    shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
    elements=st.floats(width=32, allow_nan=False),
)


@given(matrices)
def test_vectors_round_trip_a_float32_matrix_exactly(m):
    before = m.copy()
    usage = {"input_tokens": 1, "output_tokens": 0, "total_tokens": 1}
    out = c.vectors({"model": "m", "response": embedding_response("m", encode_rows(m), usage)})
    assert out.shape == m.shape and out.dtype == np.float32
    assert out.tobytes() == m.tobytes()  # bit for bit: -0.0 and infinities included
    assert np.array_equal(m, before) and m.flags.writeable


@given(
    hnp.arrays(
        dtype="<f4",
        shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
        elements=st.floats(width=32, allow_nan=False, allow_infinity=False),
    ),
    st.randoms(use_true_random=False),
)
def test_base64_and_float_json_of_one_matrix_decode_identically(m, rnd):
    order = list(range(len(m)))
    rnd.shuffle(order)
    b64 = {"data": [{"index": i, "embedding": encode_rows(m[i])[0]} for i in order]}
    floats = json.loads(
        json.dumps({"data": [{"index": i, "embedding": m[i].tolist()} for i in order]})
    )
    bodies = (copy.deepcopy(b64), copy.deepcopy(floats))
    texts = ["t"] * len(m)
    a, b = decoded(b64, texts), decoded(floats, texts)
    assert a.tobytes() == b.tobytes() == m.tobytes()
    assert (b64, floats) == bodies


def test_rows_that_are_not_base64_float32_say_so():
    ctx = c.mock_embed(c.embedding_request("mock:any", ["a", "b"]))
    for rows in (["not base64!!", "AAAA"], ["AAAAAAAA", "AAAA"], ["AAA=", "AAA="]):
        bad = ctx.set("response", ctx["response"].set("embeddings", rows))
        with pytest.raises(c.ValidationError, match="re-run the embed call"):
            c.vectors(bad)
    assert c.vectors(ctx).shape == (2, 16)
