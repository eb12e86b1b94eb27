"""Quickstart: build a request, add middleware, call a provider, continue the conversation.

Offline by default (the mock provider plays the model). With a provider configured
(OPENAI_API_KEY, ANTHROPIC_API_KEY, ... or CONDUIT_MODEL=provider:model) the same pipeline runs
against it through c.call / c.stream.
"""

from toolz import pipe

import conduit as c
from conduit.cli import default_model


def shout(req):
    """A user's own middleware: upper-case the answer on the way out."""
    ctx = yield req
    return ctx.set("response", ctx["response"].set("content", c.content(ctx).upper()))


def main() -> None:
    live = default_model()
    script = c.mock_script(["Hello! How can I help?", "Conduit threads one immutable map."])
    extra = {} if live else {"mock": script}
    model = live or "mock:gpt-4o-mini"
    req = c.request(model, [c.system("Be brief."), c.user("Hello!")], **extra)

    ctx = pipe(req, c.with_middleware(shout), c.with_cost, c.call)
    print("assistant:", c.content(ctx))
    print("usage:    ", dict(c.usage(ctx)), "cost:", ctx["cost"])
    print(c.show(ctx))

    ctx = c.call(c.reply(ctx, "What is Conduit, in one line?"))
    print("assistant:", c.content(ctx))

    print("streamed: ", end="")
    say = c.request(
        model, "Say: streaming works token by token", **({} if live else {"mock": None})
    )
    for event in c.stream(say):
        if event["type"] == "content_delta":
            print(event["text"], end="", flush=True)
    print()
    if not live:
        print("turns the mock saw:", len(script.calls))


if __name__ == "__main__":
    main()
