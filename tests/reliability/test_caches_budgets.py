"""Caches and budgets under faults and concurrency, against real stores and real processes.

Tenants never share cache entries; a Redis server stopped mid-test and a SQLite file with a
corrupt row are misses with one warning; twenty processes opening new SQLite files at once all
succeed; identical concurrent calls make one provider call (threads and asyncio); a budget
holds under 1000 concurrent calls, on 8 threads, and across processes through Redis; an
in-process budget refuses to be pickled; numbers are checked where stores and limiters are made.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import os
import pickle
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from toolz import pipe

import conduit as c
from conduit.cache import SQLiteCache, cache_key, tenant_cache_key
from conduit.cost import estimate_call_cost
from conduit.ratelimit import RateLimiter
from conduit.redis_backend import RedisBudget, RedisCache, RedisRateLimiter

ROOT = Path(__file__).resolve().parents[2]
USAGE = {"input_tokens": 5, "output_tokens": 100, "total_tokens": 105}
PER_CALL = (5 * 2.5 + 100 * 10.0) / 1e6  # USAGE at gpt-4o's prices: $0.0010125


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and "cache store" in r.msg]


def _run(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    """A redis-server of this test's own, to stop and start again."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.binary, self.port = binary, _port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen([self.binary, *args], stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def own_redis():
    server = _Server()
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.stop()


# --- tenants ---------------------------------------------------------------------------------


def test_tenants_never_share_an_entry_and_the_key_never_reaches_the_store(tmp_path, monkeypatch):
    store = SQLiteCache(tmp_path / "cache.db")
    answers = c.mock_script(lambda req: f"for {req['api_key'].value[-1]}")
    cached = c.with_cache(store)
    ask = lambda key: c.mock_call(pipe(c.request("m", "hi", mock=answers, api_key=key), cached))  # noqa: E731
    a, b = "sk-tenant-A-" + "x" * 24, "sk-tenant-B-" + "y" * 24
    assert c.content(ask(a)) == "for x" and c.content(ask(b)) == "for y"  # B is a miss
    assert ask(a)["cache_hit"] and ask(b)["cache_hit"] and len(answers.calls) == 2
    store.close()
    raw = (tmp_path / "cache.db").read_bytes()
    assert a.encode() not in raw and b.encode() not in raw

    # replay cassettes are keyed without the tenant: recorded with one key, replayed with another
    req = c.request("m", "hi", api_key=a)
    assert cache_key(req) == cache_key(req.set("api_key", c.request("m", api_key=b)["api_key"]))
    # credential headers and the environment's provider keys name tenants too
    first = tenant_cache_key(req.set("headers", c.freeze({"Authorization": "Bearer 1"})), {})
    assert first != tenant_cache_key(
        req.set("headers", c.freeze({"Authorization": "Bearer 2"})), {}
    )
    bare = c.request("m", "hi")
    assert tenant_cache_key(bare, {"OPENAI_API_KEY": "sk-1"}) != tenant_cache_key(
        bare, {"OPENAI_API_KEY": "sk-2"}
    )
    assert tenant_cache_key(bare, {}) == cache_key(bare)  # no credentials: a local server shares
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-env-1")
    script = c.mock_script("from the environment")
    env_req = pipe(c.request("m", "env", mock=script), c.with_cache(c.MemoryCache()))
    c.mock_call(env_req)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-env-2")
    assert c.mock_call(env_req)["cache_hit"] is False and len(script.calls) == 2


# --- back-end faults -------------------------------------------------------------------------


def test_a_redis_outage_is_a_miss_with_one_warning_and_the_cache_comes_back(own_redis, caplog):
    store = RedisCache(own_redis.url)
    script = c.mock_script("fresh")
    req = pipe(c.request("m", "hi", mock=script, api_key="sk-r"), c.with_cache(store))
    c.mock_call(req)
    assert c.mock_call(req)["cache_hit"] is True and len(script.calls) == 1
    own_redis.stop()
    with caplog.at_level(logging.WARNING, logger="conduit"):
        for _ in range(5):
            ctx = c.mock_call(req)
            assert ctx["cache_hit"] is False and c.content(ctx) == "fresh"
        assert c.content(asyncio.run(c.mock_acall(req))) == "fresh"
    assert len(script.calls) == 7
    assert len(_warnings(caplog)) == 1  # reads and writes failed 12 times: one warning
    own_redis.start()
    c.mock_call(req)
    assert c.mock_call(req)["cache_hit"] is True and len(script.calls) == 8
    # an entry that is not JSON (or not a response) is a miss too, then overwritten
    store.redis.set(store.prefix + tenant_cache_key(req, os.environ), b"\xff\x00garbage")
    assert c.mock_call(req)["cache_hit"] is False
    assert c.mock_call(req)["cache_hit"] is True and len(script.calls) == 9


def test_a_corrupt_sqlite_row_or_page_is_a_miss_and_a_garbage_file_names_its_path(tmp_path, caplog):
    path = tmp_path / "cache.db"
    store = SQLiteCache(path)
    script = c.mock_script("fresh")
    req = pipe(c.request("m", "hi", mock=script), c.with_cache(store))
    c.mock_call(req)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE conduit_cache SET value = ?", (b"\xff\xfe\x00 not json",))
    with caplog.at_level(logging.WARNING, logger="conduit"):
        assert c.mock_call(req)["cache_hit"] is False  # a miss, then the row is rewritten
        assert c.mock_call(req)["cache_hit"] is True
    assert len(script.calls) == 2 and len(_warnings(caplog)) == 1
    store.close()

    size = path.stat().st_size
    with path.open("r+b") as f:  # every page but the header's overwritten: reads and writes fail
        f.seek(4096)
        f.write(os.urandom(size - 4096))
    broken = SQLiteCache(path)
    req = pipe(c.request("m", "hi", mock=script), c.with_cache(broken))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="conduit"):
        assert [c.mock_call(req)["cache_hit"] for _ in range(3)] == [False] * 3
    assert len(script.calls) == 5 and len(_warnings(caplog)) == 1
    broken.close()

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(8192))
    with pytest.raises(c.ConduitError, match=r"garbage\.db cannot be opened as a SQLite cache"):
        SQLiteCache(garbage)


# --- concurrent first opens ------------------------------------------------------------------


def test_a_new_sqlite_file_opens_while_another_connection_is_writing_it(tmp_path):
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # what a process creating the file holds for a moment
    threading.Timer(0.3, other.execute, ("COMMIT",)).start()
    store = SQLiteCache(path)  # switching to WAL gets no busy wait from SQLite: it must retry
    store.set("k", {"usage": {}}, None)
    assert store.get("k") == {"usage": {}}
    store.close()
    other.close()


OPENER = """
import sys, time
from conduit.cache import SQLiteCache
folder, start = sys.argv[1], float(sys.argv[2])
failures = []
for round in range(5):
    while time.time() < start + round * 0.4:
        time.sleep(0.0005)
    try:
        SQLiteCache(f"{folder}/cache{round}.db").close()
    except Exception as exc:
        failures.append(repr(exc))
print(len(failures), failures)
"""


def test_twenty_processes_opening_new_sqlite_files_at_once_all_succeed(tmp_path):
    start = time.time() + 3  # after every process has imported conduit
    procs = [_run(OPENER, str(tmp_path), str(start)) for _ in range(20)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    assert [out.split(" ", 1)[0] for out, _ in outs] == ["0"] * 20, outs
    for n in range(5):
        with sqlite3.connect(tmp_path / f"cache{n}.db") as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


# --- single flight ---------------------------------------------------------------------------


def test_fifty_identical_calls_on_threads_share_one_provider_call():
    script = c.mock_script("x", delay=0.2)
    req = pipe(c.request("m", "hi", mock=script, api_key="sk-1"), c.with_cache(c.MemoryCache()))
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        out = list(pool.map(lambda _: c.mock_call(req), range(50)))
    assert len(script.calls) == 1
    assert [c.content(ctx) for ctx in out] == ["x"] * 50
    assert sorted(ctx["cache_hit"] for ctx in out) == [False] + [True] * 49


def test_fifty_identical_asyncio_calls_share_one_provider_call_but_tenants_do_not():
    script = c.mock_script("y", delay=0.2)
    cached = c.with_cache(c.MemoryCache())
    reqs = [
        pipe(c.request("m", "hi", mock=script, api_key=f"sk-{i % 2}"), cached) for i in range(50)
    ]

    async def main():
        return await asyncio.gather(*(c.mock_acall(r) for r in reqs))

    out = asyncio.run(main())
    assert len(script.calls) == 2  # one per tenant
    assert [c.content(ctx) for ctx in out] == ["y"] * 50


def test_the_leaders_error_reaches_every_waiter_and_a_cancelled_leader_frees_them():
    boom = c.ServerError("down", status_code=503)
    script = c.mock_script("z", fail_first=1, error=boom, delay=0.2)
    req = pipe(c.request("m", "err", mock=script), c.with_cache(c.MemoryCache()))

    async def together():
        return await asyncio.gather(*(c.mock_acall(req) for _ in range(20)), return_exceptions=True)

    out = asyncio.run(together())
    assert len(script.calls) == 1 and all(isinstance(e, c.ServerError) for e in out)
    assert c.content(c.mock_call(req)) == "z"  # nothing failed was stored: the next call calls

    slow = c.mock_script("late", delay=0.3)
    req = pipe(c.request("m", "cancel", mock=slow), c.with_cache(c.MemoryCache()))

    async def cancel_the_leader():
        leader = asyncio.ensure_future(c.mock_acall(req))
        await asyncio.sleep(0.05)
        waiter = asyncio.ensure_future(c.mock_acall(req))
        await asyncio.sleep(0.05)
        leader.cancel()
        return await asyncio.wait_for(waiter, 2)

    assert c.content(asyncio.run(cancel_the_leader())) == "late"  # it called on its own
    assert len(slow.calls) == 2


# --- budgets ---------------------------------------------------------------------------------


def _budgeted(budget, *, delay=0.05, model="gpt-4o"):
    script = c.mock_script({"content": "ok", "usage": USAGE}, delay=delay)
    return script, pipe(c.request(model, "hi", mock=script, max_tokens=100), c.with_budget(budget))


@pytest.mark.parametrize("limit", [{"max_cost": 0.02}, {"max_tokens": 2000}])
def test_a_budget_holds_under_1000_concurrent_calls(limit):
    budget = c.Budget(**limit)
    script, req = _budgeted(budget)

    async def main():
        return await asyncio.gather(
            *(c.mock_acall(req) for _ in range(1000)), return_exceptions=True
        )

    out = asyncio.run(main())
    refused = [e for e in out if isinstance(e, c.BudgetExceededError)]
    assert len(refused) + len(script.calls) == 1000 and len(script.calls) >= 15
    if "max_cost" in limit:
        assert budget.spent["cost"] <= 0.02 + PER_CALL  # before: $1.01 (all 1000 admitted)
    else:
        assert budget.spent["tokens"] <= 2000 + USAGE["total_tokens"]
    assert budget.in_flight == 0 and budget.reserved == {"cost": 0.0, "tokens": 0}


def test_a_budget_holds_on_eight_threads_and_settles_the_real_usage():
    budget = c.Budget(max_cost=0.02)
    script, req = _budgeted(budget, delay=0.02)
    out = c.batch(c.mock_call, [req] * 200, concurrency=8, progress=False)
    assert budget.spent["cost"] <= 0.02 + PER_CALL
    assert sum("response" in ctx for ctx in out) == len(script.calls) >= 15
    # settling refunds the estimate: max_tokens=2000 reserves $0.02, 20x what a call uses, yet
    # one after another the calls go on while what was really spent is under the limit
    roomy = c.Budget(max_cost=0.005)
    script, req = _budgeted(roomy, delay=0)
    req = req.set("options", req["options"].set("max_tokens", 2000))
    assert estimate_call_cost(req) > 0.005
    for _ in range(5):
        c.mock_call(req)
    with pytest.raises(c.BudgetExceededError):
        c.mock_call(req)
    assert len(script.calls) == 5


def test_failed_and_cancelled_calls_release_their_reservations():
    budget = c.Budget(max_cost=0.0015, max_calls=100)
    boom = c.mock_script(c.ServerError("down", status_code=503))
    failing = pipe(c.request("gpt-4o", "hi", mock=boom, max_tokens=100), c.with_budget(budget))
    for _ in range(3):
        with pytest.raises(c.ServerError):
            c.mock_call(failing)
    slow = c.mock_script("late", delay=5)
    hanging = pipe(c.request("gpt-4o", "hi", mock=slow, max_tokens=100), c.with_budget(budget))

    async def cancelled():
        task = asyncio.ensure_future(c.mock_acall(hanging))
        await asyncio.sleep(0.05)
        assert budget.in_flight == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert budget.in_flight == 0 and budget.reserved == {"cost": 0.0, "tokens": 0}
    assert budget.spent == {"cost": 0.0, "tokens": 0, "calls": 4}  # failed calls still count
    _, ok = _budgeted(budget, delay=0)
    assert c.content(c.mock_call(ok)) == "ok"


def test_an_in_process_budget_refuses_to_be_pickled():
    budget = c.Budget(max_calls=5)
    with pytest.raises(c.ConduitError, match=r"cannot be pickled.*RedisBudget"):
        pickle.dumps(budget)
    with pytest.raises(c.ConduitError, match="RedisBudget"):
        pickle.dumps(pipe(c.request("m", "hi"), c.with_budget(budget)))


WORKER = """
import asyncio, pickle, sys
import conduit as c
req = pickle.loads(bytes.fromhex(sys.stdin.read()))

async def main():
    return await asyncio.gather(*(c.mock_acall(req) for _ in range(100)), return_exceptions=True)

out = asyncio.run(main())
print(sum(not isinstance(x, Exception) for x in out))
"""


def test_a_redis_budget_is_one_budget_for_every_process(redis_url):
    budget = RedisBudget(redis_url, name="test-processes", max_cost=0.02, lease=30)
    budget.reset()
    _, req = _budgeted(budget, delay=0.05)
    shipped = pickle.dumps(req).hex()  # the budget travels as its URL and settings
    procs = [_run(WORKER) for _ in range(4)]
    outs = [p.communicate(shipped, timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    answered = sum(int(out) for out, _ in outs)
    spent = budget.spent
    assert 15 <= answered == spent["calls"] and spent["cost"] <= 0.02 + PER_CALL
    assert spent["cost"] == pytest.approx(answered * PER_CALL)


def test_a_redis_budget_reservation_left_by_a_dead_process_expires(redis_url):
    budget = RedisBudget(redis_url, name="test-lease", max_calls=3, max_cost=1.0, lease=0.3)
    budget.reset()
    big = {"input_tokens": 10, "output_tokens": 100_000, "total_tokens": 100_010}
    budget.reserve("gpt-4o", big)  # $1.00 held, never settled: its process "died"
    with pytest.raises(c.BudgetExceededError, match=r"cost.*1 calls in flight"):
        budget.reserve("gpt-4o", big)
    time.sleep(0.4)
    hold = budget.reserve("gpt-4o", big)  # the dead hold expired
    budget.settle(hold, "gpt-4o", USAGE)
    assert budget.spent == {"cost": pytest.approx(PER_CALL), "tokens": 105, "calls": 2}
    assert pickle.loads(pickle.dumps(budget)).limits == budget.limits


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: c.MemoryCache(maxsize=-1), r"MemoryCache\(maxsize=...\) must be a whole number"),
        (lambda: c.MemoryCache(maxsize=2.5), r"MemoryCache\(maxsize=...\)"),
        (lambda: RateLimiter(requests_per_minute=-60), r"RateLimiter\(requests_per_minute="),
        (lambda: RateLimiter(tokens_per_minute=math.nan), r"RateLimiter\(tokens_per_minute="),
        (lambda: c.with_rate_limit(requests_per_minute=-60), r"requests_per_minute=...\)"),
        (lambda: c.Budget(max_cost=math.nan), r"Budget\(max_cost=...\) must be a finite"),
        (lambda: c.Budget(max_calls=-1), r"Budget\(max_calls=...\) must be a whole number"),
        (
            lambda: RedisRateLimiter("redis://127.0.0.1:1/0", requests_per_minute=math.inf),
            r"RedisRateLimiter\(requests_per_minute=...\)",
        ),
        (lambda: RedisBudget("redis://127.0.0.1:1/0", max_tokens=-5), r"RedisBudget\(max_tokens"),
        (lambda: RedisBudget("redis://127.0.0.1:1/0", max_calls=3, lease=0), r"lease=...\)"),
    ],
)
def test_numbers_are_checked_where_stores_limiters_and_budgets_are_made(make, message):
    with pytest.raises(c.ValidationError, match=message):
        make()


@pytest.mark.parametrize(
    "variable",
    ["GOOGLE_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK"],
)
def test_every_credential_variable_of_every_provider_names_a_tenant(variable):
    """Gemini's second key name and AWS's keys and profiles choose who is billed, as a key does."""
    bare = c.request("bedrock:m", "hi")
    one, two = tenant_cache_key(bare, {variable: "one"}), tenant_cache_key(bare, {variable: "two"})
    assert one != two and cache_key(bare) not in (one, two)
    assert "one" not in one  # a digest: the value itself is never in the key
