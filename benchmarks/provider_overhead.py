"""Per-call and per-stream overhead of Conduit against raw httpx and the official openai SDK.

All three talk to one loopback server (a separate process), interleaved round by round, so
machine noise hits every client alike. Prints median microseconds per call and the ratio to raw
httpx.  python benchmarks/provider_overhead.py [ROUNDS] [CALLS_PER_ROUND]
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

import conduit as c

HERE = Path(__file__).parent
#: An 11-message chat: five exchanges and the question now asked.
CHAT = [
    msg
    for i in range(5)
    for msg in (
        {"role": "user", "content": f"Question {i}: what is {i} times {i + 1}?"},
        {"role": "assistant", "content": f"{i} times {i + 1} is {i * (i + 1)}."},
    )
]
CHAT.append({"role": "user", "content": "And what is 6 times 7?"})
BODY = {"model": "bench", "messages": CHAT}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raw_call(client: httpx.Client, url: str) -> str:
    r = client.post(url, json=BODY, headers={"Authorization": "Bearer x"})
    r.raise_for_status()
    return str(r.json()["choices"][0]["message"]["content"])


def raw_stream(client: httpx.Client, url: str) -> str:
    """The minimal correct consumer: SSE lines, JSON per data line, text joined."""
    out = []
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    with client.stream("POST", url, json=body, headers={"Authorization": "Bearer x"}) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunk = json.loads(line[6:])
                for choice in chunk["choices"]:
                    out.append(choice["delta"].get("content") or "")
    return "".join(out)


def main(rounds: int = 15, calls: int = 200) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "loopback_server.py"), str(port), "500"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    base = f"http://127.0.0.1:{port}/v1"
    url = base + "/chat/completions"
    try:
        import openai

        sdk = openai.OpenAI(api_key="x", base_url=base, max_retries=0)
        client = httpx.Client()
        req = c.request("bench", CHAT, base_url=base, api_key="x")

        per_call = {
            "raw httpx": lambda: raw_call(client, url),
            "conduit": lambda: c.content(c.openai_call(req)),
            "openai SDK": lambda: (
                sdk.chat.completions.create(model="bench", messages=CHAT).choices[0].message.content
            ),
        }
        per_stream = {
            "raw httpx": lambda: raw_stream(client, url),
            "conduit": lambda: c.collect(c.openai_stream(req))["content"],
            "openai SDK": lambda: "".join(
                ch.choices[0].delta.content or ""
                for ch in sdk.chat.completions.create(
                    model="bench",
                    messages=CHAT,
                    stream=True,
                    stream_options={"include_usage": True},
                )
                if ch.choices
            ),
        }
        for table, n in ((per_call, calls), (per_stream, max(calls // 20, 5))):
            results = {name: fn() for name, fn in table.items()}  # warm up, and check agreement
            assert len(set(results.values())) == 1, results
            times: dict[str, list[float]] = {name: [] for name in table}
            names = list(table)
            for r in range(rounds):  # each round in a rotated order, so no client always follows
                for name in names[r % len(names) :] + names[: r % len(names)]:  # the same one
                    fn = table[name]
                    start = time.perf_counter()
                    for _ in range(n):
                        fn()
                    times[name].append((time.perf_counter() - start) / n * 1e6)
            title = "per call" if table is per_call else "500-chunk stream"
            base_us = statistics.median(times["raw httpx"])
            print(f"\n{title} ({rounds} rounds x {n})")
            print(f"{'client':<12} {'median us':>10} {'vs raw httpx':>13}")
            for name, ts in times.items():
                med = statistics.median(ts)
                print(f"{name:<12} {med:>10.0f} {med / base_us:>12.2f}x")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 15,
        int(sys.argv[2]) if len(sys.argv) > 2 else 200,
    )
