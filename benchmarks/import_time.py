"""Import time of `conduit` beside its peers, measured in this run with `python -X importtime`.

Prints the median cumulative import time (ms) over N fresh interpreters for each module, and
the ratio of each peer to conduit. Peers missing from the environment are skipped.

    python benchmarks/import_time.py [N]
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys

MODULES = ["conduit", "httpx", "openai", "anthropic"]


def import_ms(module: str) -> float:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    for line in reversed(out.splitlines()):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1000.0
    raise RuntimeError(f"no importtime line for {module}")


def main(n: int) -> None:
    results = {}
    for _ in range(n):  # interleaved, so machine noise hits every module alike
        for module in MODULES:
            if importlib.util.find_spec(module) is not None:
                results.setdefault(module, []).append(import_ms(module))
    base = statistics.median(results["conduit"])
    print(f"{'module':<10} {'median ms':>10} {'vs conduit':>11}")
    for module, times in results.items():
        med = statistics.median(times)
        print(f"{module:<10} {med:>10.1f} {med / base:>10.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
