"""Quickstart: build a request, add middleware, call a provider, continue the conversation.

Runs offline on the mock provider. Set OPENAI_API_KEY to run the same pipeline against OpenAI
once the provider modules land (see docs/SPEC.md).
"""

from toolz import pipe

import conduit as c


def shout(req):
    """A user's own middleware: upper-case the answer on the way out."""
    ctx = yield req
    return ctx.set("response", ctx["response"].set("content", c.content(ctx).upper()))


def main() -> None:
    script = c.mock_script(["Hello! How can I help?", "Conduit threads one immutable map."])
    req = c.request("gpt-4o-mini", [c.system("Be brief."), c.user("Hello!")], mock=script)

    ctx = pipe(req, c.with_middleware(shout), c.mock_call)
    print("assistant:", c.content(ctx))
    print("usage:    ", dict(c.usage(ctx)))

    ctx = c.mock_call(c.reply(ctx, "What is Conduit?"))
    print("assistant:", c.content(ctx))

    print("streamed: ", end="")
    for event in c.mock_stream(c.request("m", "streaming works token by token")):
        if event["type"] == "content_delta":
            print(event["text"], end="", flush=True)
    print()
    print("turns the mock saw:", len(script.calls))


if __name__ == "__main__":
    main()
