"""Per-call and per-stream overhead of Conduit against raw httpx and the official openai SDK.

All three talk to one loopback server (a separate process). The clients take turns in short
blocks of calls (in a rotating order), many blocks, so a drift of the machine's speed (this is a
shared 2-core virtual machine) hits every client alike; a long block per client, as this script
ran before 2026-12-01, let a slow stretch fall on one client and moved ratios by 0.05 between
runs. Prints, per client, the median microseconds per call, its ratio to raw httpx's median,
and the median of the block-by-block ratios (each block against raw httpx's block next to it).
"raw, no jar" is raw httpx on a client without a cookie jar, as Conduit's pooled client has
none (see conduit/providers/_http.py): Conduit's own code is the difference between it and
Conduit.
python benchmarks/provider_overhead.py [BLOCKS] [CALLS_PER_BLOCK]
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


class _NoJar(httpx.Cookies):
    """A cookie jar that keeps nothing (what Conduit's pooled clients have)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None


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


def _measure(table: dict[str, Any], blocks: int, n: int) -> dict[str, list[float]]:
    """Microseconds per call of each client, one figure per block of *n* calls."""
    times: dict[str, list[float]] = {name: [] for name in table}
    names = list(table)
    for b in range(blocks):  # each block in a rotated order: no client always follows the same
        for name in names[b % len(names) :] + names[: b % len(names)]:
            fn = table[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - start) / n * 1e6)
    return times


def main(blocks: int = 300, calls: int = 20) -> None:
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
        jarless = httpx.Client()  # raw httpx without its cookie jar, as Conduit's pooled client
        jarless._cookies = _NoJar()  # is: the stricter baseline (Conduit's own code, nothing else)
        req = c.request("bench", CHAT, base_url=base, api_key="x")

        per_call = {
            "raw httpx": lambda: raw_call(client, url),
            "raw, no jar": lambda: raw_call(jarless, url),
            "conduit": lambda: c.content(c.openai_call(req)),
            "openai SDK": lambda: (
                sdk.chat.completions.create(model="bench", messages=CHAT).choices[0].message.content
            ),
        }
        per_stream = {
            "raw httpx": lambda: raw_stream(client, url),
            "raw, no jar": lambda: raw_stream(jarless, url),
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
        for table, blocks_, n in (
            (per_call, blocks, calls),
            (per_stream, max(blocks // 3, 5), max(calls // 10, 2)),
        ):
            results = {name: fn() for name, fn in table.items()}  # warm up, and check agreement
            assert len(set(results.values())) == 1, results
            times = _measure(table, blocks_, n)
            title = "per call" if table is per_call else "500-chunk stream"
            baseline = times["raw httpx"]
            base_us = statistics.median(baseline)
            print(f"\n{title} ({blocks_} blocks x {n} calls, clients taking turns)")
            print(f"{'client':<12} {'median us':>10} {'vs raw httpx':>13} {'block by block':>15}")
            for name, ts in times.items():
                med = statistics.median(ts)
                paired = statistics.median(t / b for t, b in zip(ts, baseline, strict=True))
                print(f"{name:<12} {med:>10.0f} {med / base_us:>12.3f}x {paired:>14.3f}x")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 300,
        int(sys.argv[2]) if len(sys.argv) > 2 else 20,
    )
