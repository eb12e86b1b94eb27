"""Middleware that really works: retry, timeout, cache, cost, logging, budget, fallback, replay.

Offline by default: the mock provider plays a flaky service. With OPENAI_API_KEY set, the same
stack runs against OpenAI (gpt-4o-mini).
"""

import logging
import os
import tempfile
from pathlib import Path

from toolz import compose_left, pipe

import conduit as c


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    live = bool(os.environ.get("OPENAI_API_KEY"))
    flaky = c.mock_script(
        "Paris.",
        fail_first=2,
        error=c.RateLimitError("slow down", status_code=429, retry_after=0.1),
    )
    req = c.request(
        "gpt-4o-mini",
        [c.system("One word."), c.user("Capital of France?")],
        **({} if live else {"mock": flaky}),
    )
    call = c.openai_call if live else c.mock_call

    budget = c.Budget(max_cost=0.05, max_calls=20)
    store = c.SQLiteCache(Path(tempfile.mkdtemp()) / "cache.db")
    resilient = compose_left(
        c.with_logging,  # outermost: sees attempts, cache hits and cost
        c.with_timeout(30),  # one deadline, retries included
        c.with_retry(max_attempts=4),
        c.with_cost,
        c.with_cache(store, ttl=3600),
        c.with_budget(budget),  # always innermost: every attempt is charged
    )
    first = pipe(req, resilient, call)
    print(f"answer={c.content(first)!r} attempts={first['attempts']} cost=${first['cost']}")
    second = pipe(req, resilient, call)
    print(f"again: cache_hit={second['cache_hit']} cost=${second['cost']}")
    print("budget:", budget.report())

    down = c.request(
        "mock:primary",
        "hi",
        mock=lambda r: (
            c.ServerError("primary down")
            if r["model"] == "primary"
            else f"answered by {r['model']}"
        ),
    )
    ctx = c.call(c.with_fallback(["mock:backup"])(down))
    print("fallback:", c.content(ctx), f"(fallbacks={ctx['fallbacks']})")

    cassette = Path(tempfile.mkdtemp()) / "cassette.jsonl"
    pipe(req, c.with_replay(cassette), call)  # recorded (a real call when live)
    offline = pipe(req, c.with_replay(cassette, mode="replay"), c.mock_call)
    print("replayed offline:", c.content(offline), f"(replayed={offline['replayed']})")


if __name__ == "__main__":
    main()
