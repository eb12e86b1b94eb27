"""Record once, replay forever: with_replay turns real exchanges into offline tests.

Run it with a key set (OPENAI_API_KEY, ... or CONDUIT_MODEL) to record the real answers into a
cassette file; without one, a mock stands in as the "live" model. The second pass replays from the
file with no network and no key, which is how your own test suite can use it.
"""

import tempfile
from pathlib import Path

from toolz import pipe

import conduit as c
from conduit.cli import default_model

QUESTIONS = ["Name a prime number.", "Name a colour.", "Name a planet."]


def main() -> None:
    live = default_model()
    model = live or "mock:gpt-4o-mini"
    stand_in = c.mock_script(["Seven.", "Teal.", "Neptune."])
    cassette = Path(tempfile.mkdtemp()) / "cassette.jsonl"

    print("recording to", cassette.name)
    for q in QUESTIONS:
        req = c.request(model, q, **({} if live else {"mock": stand_in}))
        ctx = pipe(req, c.with_replay(cassette, mode="record"), c.call)
        print(f"  {q} -> {c.content(ctx)}")

    print("replaying (no network, no key):")
    for q in QUESTIONS:
        req = c.request(
            model, q, mock=c.ServerError("the network must not be used", status_code=503)
        )
        ctx = pipe(req, c.with_replay(cassette, mode="replay"), c.call)
        print(f"  {q} -> {c.content(ctx)} (replayed={ctx['replayed']})")

    try:
        pipe(
            c.request(model, "Something never recorded"),
            c.with_replay(cassette, mode="replay"),
            c.call,
        )
    except c.ConduitError as err:
        print("an unrecorded request fails clearly:", str(err)[:90], "...")


if __name__ == "__main__":
    main()
