"""Classify many inputs with bounded concurrency, a progress bar and a resumable checkpoint.

Offline by default (the mock answers, with a small delay). Run it twice: the second run reads
the checkpoint and does nothing again. With OPENAI_API_KEY set it classifies with gpt-4o-mini.
"""

import os
import tempfile
from pathlib import Path

from toolz import pipe

import conduit as c

REVIEWS = [
    f"Review {i}: " + ("great, works well" if i % 3 else "it broke after a day") for i in range(40)
]


def main() -> None:
    live = bool(os.environ.get("OPENAI_API_KEY"))
    mock = c.mock_script(
        lambda r: "negative" if "broke" in r["messages"][-1]["content"] else "positive", delay=0.02
    )
    requests = [
        pipe(
            c.request(
                "gpt-4o-mini",
                [c.system("Answer positive or negative."), c.user(text)],
                max_tokens=3,
                **({} if live else {"mock": mock}),
            ),
            c.with_retry,
            c.with_cost,
        )
        for text in REVIEWS
    ]
    checkpoint = Path(tempfile.gettempdir()) / "conduit-example-batch.jsonl"
    call = c.openai_acall if live else c.mock_call
    results = c.batch(call, requests, concurrency=8, progress=True, checkpoint=checkpoint)
    labels = [c.content(r).strip().lower() if "response" in r else "error" for r in results]
    print({label: labels.count(label) for label in sorted(set(labels))})
    print(f"checkpoint: {checkpoint} (rerun to resume; delete it to start over)")


if __name__ == "__main__":
    main()
