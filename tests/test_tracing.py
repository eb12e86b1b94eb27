"""with_tracing: the span trees of calls, retries, caches, fallbacks, agents, tools and graphs,
read from the OpenTelemetry SDK's in-memory exporter."""

import asyncio
import gc
import json
import sys

import pytest
from toolz import pipe

import conduit as c

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

SECRET = "sk-very-secret-key"
PROMPT = "What is two plus three, exactly?"


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter):
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


def tree(exporter):
    """The finished spans as nested (name, [children]) tuples, children in start order."""
    spans = exporter.get_finished_spans()
    kids = {}
    for s in spans:
        kids.setdefault(s.parent.span_id if s.parent else None, []).append(s)

    def node(s):
        inner = sorted(kids.get(s.context.span_id, []), key=lambda x: x.start_time)
        return (s.name, [node(k) for k in inner])

    return [node(s) for s in sorted(kids.get(None, []), key=lambda x: x.start_time)]


def named(exporter, name):
    return [s for s in exporter.get_finished_spans() if s.name == name]


def add(a: int, b: int) -> int:
    "Add two numbers."
    return a + b


def busy():
    return c.ServerError("busy", status_code=503, retry_after=0.001)


def agent_request(provider, store, **tracing):
    script = c.mock_script(
        [{"tool_calls": [{"id": "call_1", "name": "add", "arguments": {"a": 2, "b": 3}}]}, "5."],
        fail_first=1,
        error=busy(),
    )
    req = c.request("mock:gpt-4o-mini", PROMPT, mock=script, api_key=SECRET, temperature=0.5)
    return pipe(
        req,
        c.with_tracing(tracer_provider=provider, **tracing),
        c.with_retry(initial_delay=0),
        c.with_cache(store),
    )


AGENT_TREE = [
    (
        "invoke_agent",
        [
            ("chat gpt-4o-mini", [("attempt 1", []), ("attempt 2", [])]),
            ("execute_tool add", []),
            ("chat gpt-4o-mini", [("attempt 1", [])]),
        ],
    )
]
CACHED_TREE = [
    ("invoke_agent", [("chat gpt-4o-mini", []), ("execute_tool add", []), ("chat gpt-4o-mini", [])])
]


def test_a_retried_cached_tool_using_agent_run(exporter, provider):
    store = c.MemoryCache()
    req = agent_request(provider, store)
    ctx = c.agent(c.mock_call, [add])(req)
    assert c.content(ctx) == "5."
    assert not [k for k in ctx if k.startswith("conduit/")]  # the observer never leaks
    assert tree(exporter) == AGENT_TREE

    agent_span = named(exporter, "invoke_agent")[0]
    assert agent_span.kind is SpanKind.INTERNAL
    assert agent_span.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent_span.attributes["conduit.iterations"] == 2

    first, second = sorted(named(exporter, "chat gpt-4o-mini"), key=lambda s: s.start_time)
    assert first.kind is SpanKind.CLIENT and first.parent.span_id == agent_span.context.span_id
    a = first.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "mock"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.request.temperature"] == 0.5
    assert a["gen_ai.response.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.finish_reasons"] == ("tool_use",)
    assert isinstance(a["gen_ai.usage.input_tokens"], int)
    assert isinstance(a["gen_ai.usage.output_tokens"], int)
    assert a["conduit.attempts"] == 2 and a["conduit.cache_hit"] is False
    assert second.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)

    failed, ok = sorted(
        (
            s
            for s in named(exporter, "attempt 1") + named(exporter, "attempt 2")
            if s.parent.span_id == first.context.span_id
        ),
        key=lambda s: s.start_time,
    )
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "conduit.errors.ServerError"
    assert failed.attributes["http.response.status_code"] == 503
    assert [e.name for e in failed.events] == ["exception"]
    assert ok.status.status_code is StatusCode.UNSET and ok.attributes["conduit.attempt"] == 2

    tool_span = named(exporter, "execute_tool add")[0]
    assert tool_span.kind is SpanKind.INTERNAL
    assert tool_span.parent.span_id == agent_span.context.span_id
    assert tool_span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool_span.attributes["gen_ai.tool.name"] == "add"
    assert tool_span.attributes["gen_ai.tool.call.id"] == "call_1"
    assert tool_span.attributes["gen_ai.tool.type"] == "function"

    exporter.clear()
    c.agent(c.mock_call, [add])(req)  # the second run: the cache answers both calls
    assert tree(exporter) == CACHED_TREE
    for span in named(exporter, "chat gpt-4o-mini"):
        assert span.attributes["conduit.cache_hit"] is True
        assert span.attributes["conduit.attempts"] == 0
        assert [e.name for e in span.events] == ["conduit.cache_hit"]
        assert "gen_ai.usage.input_tokens" not in span.attributes  # no tokens were spent


async def test_the_async_agent_makes_the_same_tree(exporter, provider):
    req = agent_request(provider, c.MemoryCache())
    ctx = await c.aagent(c.mock_acall, [add])(req)
    assert c.content(ctx) == "5."
    assert tree(exporter) == AGENT_TREE


def test_the_streaming_agent_makes_the_same_tree(exporter, provider):
    req = agent_request(provider, c.MemoryCache())
    events = list(c.agent_stream(c.mock_stream, [add])(req))
    assert any(e["type"] == "tool_result" for e in events)
    assert tree(exporter) == AGENT_TREE


async def test_the_async_streaming_agent_makes_the_same_tree(exporter, provider):
    req = agent_request(provider, c.MemoryCache())
    events = [e async for e in c.aagent_stream(c.mock_astream, [add])(req)]
    assert any(e["type"] == "tool_result" for e in events)
    assert tree(exporter) == AGENT_TREE


@pytest.mark.parametrize("kind", ["call", "acall", "stream", "astream"])
def test_calls_async_calls_and_streams_make_one_call_span(exporter, provider, kind):
    req = pipe(
        c.request("mock:m", "hello there", mock="general kenobi", max_tokens=7),
        c.with_tracing(tracer_provider=provider),
    )
    if kind == "call":
        c.mock_call(req)
    elif kind == "acall":
        asyncio.run(c.mock_acall(req))
    elif kind == "stream":
        list(c.mock_stream(req))
    else:

        async def drain():
            return [e async for e in c.mock_astream(req)]

        asyncio.run(drain())
    assert tree(exporter) == [("chat m", [("attempt 1", [])])]
    span = named(exporter, "chat m")[0]
    assert span.attributes["gen_ai.request.max_tokens"] == 7
    assert span.attributes["gen_ai.usage.output_tokens"] > 0
    assert span.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)


def test_an_abandoned_stream_ends_its_spans(exporter, provider):
    req = pipe(c.request("mock:m", "one two three four"), c.with_tracing(tracer_provider=provider))
    events = c.mock_stream(req)
    next(events)
    assert exporter.get_finished_spans() == ()  # still streaming
    events.close()
    assert tree(exporter) == [("chat m", [("attempt 1", [])])]
    assert named(exporter, "chat m")[0].attributes["conduit.abandoned"] is True


async def test_an_abandoned_async_stream_ends_its_spans(exporter, provider):
    req = pipe(c.request("mock:m", "one two three four"), c.with_tracing(tracer_provider=provider))
    events = c.mock_astream(req)
    await events.__anext__()
    await events.aclose()
    del events
    gc.collect()
    for _ in range(10):  # the loop finalizes the abandoned inner generators on its next turns
        await asyncio.sleep(0)
    assert tree(exporter) == [("chat m", [("attempt 1", [])])]


def test_a_failed_call_records_the_error(exporter, provider):
    req = pipe(
        c.request("mock:m", "hi", mock=c.AuthenticationError("bad key", status_code=401)),
        c.with_tracing(tracer_provider=provider),
        c.with_retry,
    )
    with pytest.raises(c.AuthenticationError):
        c.mock_call(req)
    assert tree(exporter) == [("chat m", [("attempt 1", [])])]
    for span in exporter.get_finished_spans():
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "conduit.errors.AuthenticationError"
        assert span.attributes["http.response.status_code"] == 401


def test_a_fallback_says_which_model_answered(exporter, provider):
    req = pipe(
        c.request("mock:primary", "hi", mock=lambda r: busy() if r["model"] == "primary" else "ok"),
        c.with_tracing(tracer_provider=provider),
        c.with_fallback(["mock:backup"]),
    )
    assert c.content(c.mock_call(req)) == "ok"
    assert tree(exporter) == [("chat primary", [("attempt 1", []), ("attempt 2", [])])]
    call = named(exporter, "chat primary")[0]
    assert call.attributes["conduit.answered_by"] == "mock:backup"
    assert call.attributes["conduit.fallbacks"] == 1
    assert call.attributes["gen_ai.response.model"] == "backup"
    models = [s.attributes["gen_ai.request.model"] for s in named(exporter, "attempt 2")]
    assert models == ["backup"]


def test_a_graph_makes_a_span_per_node_run_with_its_calls_inside(exporter, provider):
    traced = c.with_tracing(tracer_provider=provider)

    def ask(state):
        ctx = c.mock_call(pipe(c.request("mock:m", f"draft {state['n']}"), traced))
        return {"n": state["n"] + 1, "last": c.content(ctx)}

    g = traced(c.graph({"draft": ask}, {"draft": lambda s: c.END if s["n"] >= 2 else "draft"}))
    assert c.run_graph(g, {"n": 0})["state"]["last"] == "draft 1"
    expected = [("node draft", [("chat m", [("attempt 1", [])])])] * 2
    assert tree(exporter) == expected
    exporter.clear()
    assert asyncio.run(c.arun_graph(g, {"n": 0}))["state"]["n"] == 2
    assert tree(exporter) == expected
    assert named(exporter, "node draft")[0].attributes["conduit.graph.node"] == "draft"


def test_a_failing_node_and_a_failing_tool_are_errors(exporter, provider):
    def broken(state):
        raise RuntimeError("no")

    g = c.with_tracing(c.graph({"x": broken}, {"x": c.END}), tracer_provider=provider)
    with pytest.raises(RuntimeError):
        c.run_graph(g, {})
    span = named(exporter, "node x")[0]
    assert span.status.status_code is StatusCode.ERROR and span.attributes["error.type"]

    def explode() -> str:
        "Fail."
        raise ValueError("tool broke")

    exporter.clear()
    script = c.mock_script([{"tool_calls": [{"name": "explode"}, {"name": "nope"}]}, "sorry"])
    req = pipe(c.request("mock:m", "go", mock=script), c.with_tracing(tracer_provider=provider))
    c.agent(c.mock_call, [explode])(req)
    bad = named(exporter, "execute_tool explode")[0]
    assert bad.status.status_code is StatusCode.ERROR
    assert bad.attributes["error.type"] == "ValueError"
    unknown = named(exporter, "execute_tool nope")[0]
    assert unknown.attributes["error.type"] == "invalid_tool_call"


def all_text(exporter):
    parts = []
    for s in exporter.get_finished_spans():
        parts += [str(v) for v in s.attributes.values()]
        parts += [str(v) for e in s.events if e.name != "exception" for v in e.attributes.values()]
    return "\n".join(parts)


def test_contents_are_not_recorded_by_default(exporter, provider):
    c.agent(c.mock_call, [add])(agent_request(provider, c.MemoryCache()))
    text = all_text(exporter)
    assert PROMPT not in text and "5." not in text and SECRET not in text
    assert not [
        k
        for s in exporter.get_finished_spans()
        for k in s.attributes
        if k in ("gen_ai.input.messages", "gen_ai.output.messages")
        or (k.startswith("gen_ai.tool.call.") and k != "gen_ai.tool.call.id")
    ]


def test_contents_are_recorded_when_asked_never_the_key(exporter, provider):
    req = agent_request(provider, c.MemoryCache(), capture_content=True)
    c.agent(c.mock_call, [add])(req)
    assert SECRET not in all_text(exporter)
    first, second = sorted(named(exporter, "chat gpt-4o-mini"), key=lambda s: s.start_time)
    sent = json.loads(first.attributes["gen_ai.input.messages"])
    assert sent == [{"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]
    asked = json.loads(first.attributes["gen_ai.output.messages"])
    assert asked[0]["parts"][0] == {
        "type": "tool_call",
        "id": "call_1",
        "name": "add",
        "arguments": {"a": 2, "b": 3},
    }
    history = json.loads(second.attributes["gen_ai.input.messages"])
    assert history[-1] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "call_1", "result": "5"}],
    }
    answer = json.loads(second.attributes["gen_ai.output.messages"])
    assert answer == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "5."}],
            "finish_reason": "end_turn",
        }
    ]
    tool_span = named(exporter, "execute_tool add")[0]
    assert json.loads(tool_span.attributes["gen_ai.tool.call.arguments"]) == {"a": 2, "b": 3}
    assert tool_span.attributes["gen_ai.tool.call.result"] == "5"


def test_the_global_provider_is_the_default(exporter, provider, monkeypatch):
    from opentelemetry import trace

    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    c.mock_call(pipe(c.request("mock:m", "hi"), c.with_tracing))
    assert tree(exporter) == [("chat m", [("attempt 1", [])])]


def test_a_call_nests_under_the_current_span(exporter, provider):
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("handle request"):
        c.mock_call(pipe(c.request("mock:m", "hi"), c.with_tracing(tracer_provider=provider)))
    assert tree(exporter) == [("handle request", [("chat m", [("attempt 1", [])])])]


def test_a_wire_preview_exports_nothing(exporter, provider):
    req = pipe(
        c.request("openai:gpt-4o", "hi", api_key=SECRET), c.with_tracing(tracer_provider=provider)
    )
    assert c.wire(req)["url"].endswith("/chat/completions")
    assert exporter.get_finished_spans() == ()


def test_options_are_checked_where_written():
    with pytest.raises(c.ValidationError, match="capture_contents"):
        c.with_tracing(capture_contents=True)
    with pytest.raises(c.ValidationError, match="True or False"):
        c.with_tracing(capture_content="yes")
    with pytest.raises(c.ValidationError, match="TracerProvider"):
        c.with_tracing(tracer_provider="console")


def test_without_the_extra_it_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # `import opentelemetry` now fails
    for use in (
        lambda: c.with_tracing(c.request("m", "hi")),
        lambda: c.with_tracing(capture_content=True),
        lambda: c.with_tracing(),
    ):
        with pytest.raises(c.ValidationError, match=r'pip install "conduit-llm\[tracing\]"'):
            use()


def test_no_tracing_costs_nothing_on_the_request():
    req = c.request("m", "hi")
    assert "middleware" not in req  # the call path's fast branch is untouched
    assert c.mock_call(req)["response"]["content"] == "hi"
