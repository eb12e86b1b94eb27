"""1,000 chat requests at concurrency 100 against one loopback server: Conduit's ``batch`` beside
the official SDK's ``AsyncOpenAI`` (a semaphore of 100 and ``gather``).

Each run is its own process, so peak memory (max RSS) compares like with like; runs alternate.

    python benchmarks/batch_bench.py [ROUNDS]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
N, CONCURRENCY = 1000, 100

WORKER = """
import asyncio, json, resource, sys, time
mode, base = sys.argv[1], sys.argv[2]
N, CONCURRENCY = int(sys.argv[3]), int(sys.argv[4])

async def sdk():
    import openai
    client = openai.AsyncOpenAI(api_key="x", base_url=base, max_retries=0)
    gate = asyncio.Semaphore(CONCURRENCY)
    async def one(i):
        async with gate:
            r = await client.chat.completions.create(
                model="bench", messages=[{"role": "user", "content": f"q{i}"}])
            return r.choices[0].message.content
    out = await asyncio.gather(*(one(i) for i in range(N)))
    await client.close()
    return out

def conduit():
    import conduit as c
    reqs = [c.request("bench", f"q{i}", base_url=base, api_key="x") for i in range(N)]
    out = c.batch(c.openai_acall, reqs, concurrency=CONCURRENCY, progress=False)
    return [c.content(x) for x in out]

start = time.perf_counter()
out = asyncio.run(sdk()) if mode == "sdk" else conduit()
elapsed = time.perf_counter() - start
assert len(out) == N and all(x == "Hello there!" for x in out)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "maxrss_mb": peak}))
"""


def main(rounds: int = 3) -> None:
    sys.path.insert(0, str(HERE))
    from provider_overhead import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "loopback_server.py"), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    base = f"http://127.0.0.1:{port}/v1"
    results: dict[str, list[dict[str, float]]] = {"conduit": [], "sdk": []}
    try:
        for _ in range(rounds):
            for mode in results:
                out = subprocess.run(
                    [sys.executable, "-c", WORKER, mode, base, str(N), str(CONCURRENCY)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results[mode].append(json.loads(out.stdout))
    finally:
        server.terminate()
        server.wait()
    print(f"{N} requests, concurrency {CONCURRENCY}, median of {rounds} runs")
    print(f"{'client':<22} {'req/s':>8} {'peak RSS MB':>12}")
    for mode, label in (("sdk", "openai AsyncOpenAI"), ("conduit", "conduit batch")):
        secs = statistics.median(r["seconds"] for r in results[mode])
        rss = statistics.median(r["maxrss_mb"] for r in results[mode])
        print(f"{label:<22} {N / secs:>8.0f} {rss:>12.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
