"""batch: order, bounded concurrency, recorded failures, progress, checkpoints that survive a
SIGKILL, and the same pipes on a real Dask cluster."""

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from toolz import pipe

import conduit as c
from conduit.batching import Progress, load_checkpoint


def tracking_script(delay=0.02):
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def answer(req):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(delay)
        with lock:
            state["now"] -= 1
        return "answer to " + req["messages"][-1]["content"]

    return c.mock_script(answer), state


def test_results_in_input_order_with_bounded_concurrency():
    script, state = tracking_script()
    reqs = [c.request("m", f"q{i}", mock=script) for i in range(30)]
    out = c.batch(c.mock_call, reqs, concurrency=5, progress=False)
    assert [c.content(ctx) for ctx in out] == [f"answer to q{i}" for i in range(30)]
    assert 2 <= state["peak"] <= 5


async def test_async_handlers_are_awaited_and_bounded():
    script = c.mock_script("ok", delay=0.2)
    reqs = [c.request("m", f"q{i}", mock=script) for i in range(20)]
    start = time.monotonic()
    out = await c.abatch(c.mock_acall, reqs, concurrency=10, progress=False)
    assert len(out) == 20 and all(c.content(x) == "ok" for x in out)
    assert time.monotonic() - start < 2  # 2 waves of 0.2 s, not 20 (4 s)


def test_failures_are_recorded_not_raised():
    reqs = [
        c.request("m", "fine"),
        c.request("m", "bad", mock=c.RateLimitError("slow", status_code=429)),
        c.request("m", "also fine"),
    ]
    out = c.batch(c.mock_call, reqs, progress=False)
    assert c.content(out[0]) == "fine" and c.content(out[2]) == "also fine"
    assert "response" not in out[1]
    assert out[1]["error"]["type"] == "RateLimitError"
    assert out[1]["error"]["data"]["status_code"] == 429


def test_progress_callback_and_bar():
    seen = []
    c.batch(
        c.mock_call,
        [c.request("m", str(i)) for i in range(4)],
        concurrency=1,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    stream = io.StringIO()
    bar = Progress(4, stream=stream)
    bar.errors = 1
    bar(4, 4)
    assert "[" + "#" * 30 + "] 4/4" in stream.getvalue() and "1 failed" in stream.getvalue()
    log = io.StringIO()  # not a terminal: the first item, then a line per tenth of the work
    bar = Progress(1000, stream=log)
    for done in range(1, 1001):
        bar(done, 1000)
    lines = log.getvalue().splitlines()
    assert len(lines) == 11 and lines[-1].startswith("[" + "#" * 30 + "] 1000/1000")
    assert "\r" not in log.getvalue()

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    bar = Progress(3, stream=screen)
    for done in (1, 2, 3):
        bar(done, 3)
    assert screen.getvalue().count("\r") == 3 and screen.getvalue().endswith("left\n")
    with pytest.raises(c.ValidationError, match="progress is True, False, None"):
        c.batch(c.mock_call, [], progress="yes")
    with pytest.raises(c.ValidationError, match="concurrency must be at least 1"):
        c.batch(c.mock_call, [], concurrency=0)


def test_checkpoint_resumes_and_skips_finished_items(tmp_path):
    path = tmp_path / "run.jsonl"
    reqs = [c.request("m", f"q{i}") for i in range(6)]
    first = c.batch(c.mock_call, reqs[:3], checkpoint=path, progress=False)
    with path.open("a") as f:
        f.write('{"index": 4, "key": "torn')  # a crash mid-write
    script = c.mock_script(lambda r: "later " + r["messages"][-1]["content"])
    rerun = [r.set("mock", script) for r in reqs]
    out = c.batch(c.mock_call, rerun, checkpoint=path, progress=False)
    assert [c.content(x) for x in out] == ["q0", "q1", "q2", "later q3", "later q4", "later q5"]
    assert len(script.calls) == 3  # only the unfinished items ran
    assert sorted(load_checkpoint(path)) == list(range(6))
    assert first[0]["response"] == out[0]["response"]


def test_a_changed_request_is_not_taken_from_the_checkpoint(tmp_path):
    path = tmp_path / "run.jsonl"
    c.batch(c.mock_call, [c.request("m", "old question")], checkpoint=path, progress=False)
    out = c.batch(c.mock_call, [c.request("m", "new question")], checkpoint=path, progress=False)
    assert c.content(out[0]) == "new question"


KILLED_RUN = textwrap.dedent("""
    import sys, time
    import conduit as c
    path, n = sys.argv[1], int(sys.argv[2])
    script = c.mock_script(lambda r: "done " + r["messages"][-1]["content"], delay=0.1)
    reqs = [c.request("m", f"item {i}", mock=script) for i in range(n)]
    c.batch(c.mock_call, reqs, concurrency=4, checkpoint=path, progress=False)
    print("finished", len(script.calls), flush=True)
""")


def test_sigkill_midway_then_rerun_gives_exactly_one_result_per_input(tmp_path):
    path, n = tmp_path / "killed.jsonl", 60
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(path), str(n)], stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= 12:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    before = load_checkpoint(path)
    assert 12 <= len(before) < n  # killed midway
    rerun = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(path), str(n)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    ran = int(rerun.stdout.split()[-1])
    assert ran == n - len(before)  # nothing finished was done twice
    lines = [
        json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")
    ]
    indexes = [e["index"] for e in lines]
    assert sorted(set(indexes)) == list(range(n))  # nothing lost
    done = load_checkpoint(path)
    assert all(done[i]["response"]["content"] == f"done item {i}" for i in range(n))


def test_requests_and_handlers_pickle():
    req = pipe(
        c.request("gpt-4o-mini", "hi", base_url="http://127.0.0.1:9/v1", api_key="sk-x"),
        c.with_retry,
        c.with_cost,
        c.with_timeout(5),
    )
    assert pickle.loads(pickle.dumps(req)) == req
    for handler in (c.openai_call, c.anthropic_acall, c.mock_call, c.call, c.batch):
        assert pickle.loads(pickle.dumps(handler)) is handler


DASK_BODY = {"model": "bench"}


def test_the_same_pipe_on_a_dask_cluster_matches_a_local_run(tmp_path):
    distributed = pytest.importorskip("distributed")
    import dask.bag as db

    from tests.conftest import _free_port

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "benchmarks/loopback_server.py", str(port), "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == "ready"
        base = f"http://127.0.0.1:{port}/v1"
        reqs = [
            pipe(
                c.request("bench", f"question {i}", base_url=base, api_key="sk-local"),
                c.with_retry,
                c.with_cost,
            )
            for i in range(12)
        ]
        local = [c.content(ctx) for ctx in map(c.openai_call, reqs)]
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            remote = (
                db.from_sequence(reqs, npartitions=4).map(c.openai_call).map(c.content).compute()
            )
            pids = set(client.run(os.getpid).values())
        assert remote == local and len(pids) == 2 and os.getpid() not in pids
    finally:
        server.terminate()
        server.wait(10)
        server.stdout.close()
