"""Wall time of `conduit index FOLDER` run by two checkouts of Conduit, interleaved.

Each run is a fresh interpreter importing the checkout's own `conduit` package, indexing the same
FOLDER from scratch (`--rebuild`, the hash embedder) into a temporary store. Prints each
checkout's median, the files and chunks it indexed, and NEW / BASE.

    git clone -q /work/main /tmp/idx-base            # before the change (at that commit)
    git clone -q /work/main /tmp/idx-new             # after it
    python benchmarks/index_time.py /tmp/idx-base /tmp/idx-new /tmp/idx-base 5
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = "import sys; sys.path.insert(0, sys.argv.pop(1)); from conduit.cli import main; exit(main())"


def index_once(checkout: str, folder: str, scratch: Path) -> tuple[float, str]:
    store = scratch / "index.npz"
    argv = [sys.executable, "-c", RUN, checkout, "index", folder, "-o", str(store), "--rebuild"]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=scratch, check=True)
    return time.perf_counter() - start, done.stdout.strip()


def main(base: str, new: str, folder: str, n: int) -> None:
    times: dict[str, list[float]] = {base: [], new: []}
    wrote: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):  # interleaved, alternating who goes first
            for checkout in (base, new) if i % 2 == 0 else (new, base):
                seconds, line = index_once(checkout, folder, Path(tmp))
                times[checkout].append(seconds)
                wrote[checkout] = line
    for label, checkout in (("base", base), ("new", new)):
        runs = ", ".join(f"{t:.2f}" for t in times[checkout])
        print(f"{label:<5} {statistics.median(times[checkout]):.2f} s median ({runs})")
        print(f"      {wrote[checkout]}")
    ratio = statistics.median(times[new]) / statistics.median(times[base])
    print(f"new / base: {ratio:.2f}x")


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    main(
        args[0],
        args[1],
        args[2] if len(args) > 2 else args[0],
        int(args[3]) if len(args) > 3 else 5,
    )
