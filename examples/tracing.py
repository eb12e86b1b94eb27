"""Trace a retried, cached, tool-using agent run and print its span tree, offline.

The spans go to an in-memory exporter; in production give ``with_tracing`` nothing and set up
the SDK with an OTLP exporter instead (docs/tracing.md).
"""

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from toolz import pipe

import conduit as c

SHOWN = (
    "gen_ai.request.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.tool.call.id",
    "conduit.cache_hit",
    "error.type",
)


def add(a: int, b: int) -> int:
    "Add two numbers."
    return a + b


def print_tree(spans):
    children = {}
    for span in spans:
        children.setdefault(span.parent.span_id if span.parent else None, []).append(span)

    def show(span, depth):
        found = {k: span.attributes[k] for k in SHOWN if k in span.attributes}
        fields = " ".join(f"{k}={v}" for k, v in found.items())
        print(
            f"{'  ' * depth}{span.name} [{span.kind.name}, {span.status.status_code.name}] {fields}"
        )
        for child in sorted(children.get(span.context.span_id, []), key=lambda s: s.start_time):
            show(child, depth + 1)

    for root in sorted(children.get(None, []), key=lambda s: s.start_time):
        show(root, 0)


def main():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    script = c.mock_script(
        [{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}, "2 + 3 is 5."],
        fail_first=1,
        error=c.ServerError("busy", status_code=503, retry_after=0.001),
    )
    req = pipe(
        c.request("mock:gpt-4o-mini", "What is 2 + 3?", mock=script),
        c.with_tracing(tracer_provider=provider),
        c.with_retry(initial_delay=0),
        c.with_cache(c.MemoryCache()),
    )
    run = c.agent(c.mock_call, [add])
    for label in ("first run (a 503, then a retry)", "second run (the cache answers)"):
        exporter.clear()
        print(f"{label}: {c.content(run(req))}")
        print_tree(exporter.get_finished_spans())
        print()


if __name__ == "__main__":
    main()
