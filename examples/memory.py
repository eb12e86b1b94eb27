"""Memory: a long conversation windowed and summarised, then saved and continued from a file.

Windowing trims what is sent, never the question, and never the conversation you keep.

Offline by default (the mock writes the summary and the answers). With a provider configured
(OPENAI_API_KEY, ANTHROPIC_API_KEY, ... or CONDUIT_MODEL) that model does both.
"""

import tempfile
from pathlib import Path

from toolz import pipe

import conduit as c
from conduit.cli import default_model


def offline(req) -> str:
    first = req["messages"][0]
    if first["role"] == "system" and first["content"].startswith("You condense"):
        transcript = req["messages"][1]["content"].splitlines()
        facts = [ln.split(": ", 1)[1] for ln in transcript if ln.startswith("user: ")]
        return "The user said: " + "; ".join(facts)
    return f"(I remember {len(req['messages'])} messages) " + c.content(req["messages"][-1])


def main() -> None:
    live = default_model()
    model, extra = (live, {}) if live else ("mock:gpt-4o-mini", {"mock": offline})
    turns = [c.system("You are a helpful assistant. Be brief.")]
    for fact in [
        "My name is Ada.",
        "I live in Lyon.",
        "I keep bees.",
        "I like green tea.",
        "My bees make lavender honey.",
    ]:
        turns += [c.user(fact), c.assistant("Noted.")]
    turns.append(c.user("What do you know about me?"))

    print("windowed to the last 4:", [m["content"] for m in c.window(turns, 4)][1:])
    windowed = pipe(c.request(model, turns, **extra), c.with_window(4), c.call)
    print("with_window(4):", c.content(windowed))
    print(f"  the context still holds all {len(windowed['messages'])} messages")

    condense = c.with_summary(c.call, keep=2, max_messages=8)
    ctx = pipe(c.request(model, turns, **extra), condense, c.call)
    print(c.show(ctx))

    path = Path(tempfile.mkdtemp()) / "chat.json"
    c.save_conversation(ctx, path, model=model)
    saved = c.load_conversation(path)
    print(f"saved {len(saved['messages'])} messages to {path.name}; continuing from the file")
    nxt = c.call(
        c.request(saved["model"], [*saved["messages"], c.user("Where do I live?")], **extra)
    )
    print("assistant:", c.content(nxt))


if __name__ == "__main__":
    main()
