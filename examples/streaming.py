"""Streaming: print tokens as they arrive, sync and async, with middleware around the stream.

Offline by default (the mock streams with a small delay between chunks so you can watch it).
With a provider configured (OPENAI_API_KEY, ANTHROPIC_API_KEY, ... or CONDUIT_MODEL) it streams
from that provider.
"""

import asyncio

from toolz import pipe

import conduit as c
from conduit.cli import default_model

TEXT = "Maps flow through middleware, and every token arrives as an event you can print."


def request(prompt: str):
    live = default_model()
    if live:
        return c.request(live, prompt)
    return c.request("mock:gpt-4o-mini", prompt, mock=c.mock_script(TEXT, chunk_delay=0.01))


def main() -> None:
    cache = c.MemoryCache()
    req = pipe(request("Explain Conduit in one sentence."), c.with_cost, c.with_cache(cache))
    events = []
    for event in c.stream(req):  # the stream shell parses SSE incrementally
        events.append(event)
        if event["type"] == "content_delta":
            print(event["text"], end="", flush=True)
    print()
    answer = c.collect(events)
    print("stop:", answer["stop_reason"], "| usage:", dict(answer["usage"]))

    replayed = list(c.stream(req))  # a cache hit replays the same events, without a call
    text = "".join(e.get("text", "") for e in replayed)
    print("from the cache:", text == c.content(answer))

    async def in_async() -> str:
        parts = []
        async for event in c.astream(request("And asynchronously?")):
            if event["type"] == "content_delta":
                parts.append(event["text"])
        return "".join(parts)

    print("async:", asyncio.run(in_async()))


if __name__ == "__main__":
    main()
