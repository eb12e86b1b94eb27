"""Decode 1,000 embeddings of 1,536 dimensions from OpenAI's base64 JSON and from its float JSON.

Both bodies carry the same float32 matrix (unit rows, like text-embedding-3-small); the float
body writes each value as its shortest float32 repr, as OpenAI does. One run is ``json.loads``
of the body text, Conduit's ``decode_embeddings`` and ``vectors`` (the float32 matrix). The two
forms take turns; the script checks they decode to the same bytes and prints medians and ratio.

    python benchmarks/embed_decode.py [ROUNDS]
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np

import conduit as c
from conduit.embeddings import encode_rows
from conduit.providers import openai

ROWS, DIMS, MODEL = 1000, 1536, "text-embedding-3-small"


def bodies(matrix: np.ndarray) -> tuple[str, str]:
    """Return (base64 body text, float body text) of *matrix*, shaped as OpenAI sends them."""
    usage = {"prompt_tokens": ROWS * 8, "total_tokens": ROWS * 8}

    def body(rows: list[str]) -> str:
        data = ",".join(
            f'{{"object":"embedding","index":{i},"embedding":{row}}}' for i, row in enumerate(rows)
        )
        return f'{{"object":"list","data":[{data}],"model":"{MODEL}","usage":{json.dumps(usage)}}}'

    b64 = body([f'"{r}"' for r in encode_rows(matrix)])
    floats = body(["[" + ",".join(str(v) for v in row) + "]" for row in matrix])
    return b64, floats


def decode(text: str, req: c.Request) -> np.ndarray:
    return c.vectors(openai.decode_embeddings(req, json.loads(text)))


def main(rounds: int = 15) -> None:
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((ROWS, DIMS)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    b64, floats = bodies(matrix)
    req = c.embedding_request(MODEL, [f"text {i}" for i in range(ROWS)])
    assert decode(b64, req).tobytes() == decode(floats, req).tobytes() == matrix.tobytes()
    times: dict[str, list[float]] = {"base64": [], "float": []}
    for _ in range(rounds):
        for name, text in (("base64", b64), ("float", floats)):
            start = time.perf_counter()
            decode(text, req)
            times[name].append(time.perf_counter() - start)
    b, f = (statistics.median(times[k]) * 1000 for k in ("base64", "float"))
    print(
        f"embed_decode {ROWS}x{DIMS}, {rounds} rounds: base64 {b:.1f} ms "
        f"({len(b64) / 1e6:.1f} MB), float {f:.1f} ms ({len(floats) / 1e6:.1f} MB), "
        f"base64 {f / b:.1f}x faster"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
