"""Rate limits in one process, and one budget shared by two processes through a real Redis."""

import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from toolz import pipe

import conduit as c
from conduit.ratelimit import RateLimiter, estimate_cost, rate_limit_flow, reserve
from tests.conftest import _free_port  # noqa: F401  (keeps the helper importable)


def test_reserve_queues_callers_fairly():
    tokens, last = 1.0, 0.0
    waits = []
    for _ in range(4):  # four callers at the same instant, 2 per second, burst 1
        tokens, wait = reserve(tokens, last, 0.0, 1, 2.0, 1.0)
        last = 0.0
        waits.append(wait)
    assert waits == [0.0, 0.5, 1.0, 1.5]


def test_rate_limiter_with_a_fake_clock():
    now = [0.0]
    limiter = RateLimiter(requests_per_minute=60, burst=2, clock=lambda: now[0])
    assert [limiter.acquire(1, 0) for _ in range(3)] == [0.0, 0.0, 1.0]
    now[0] = 10.0
    assert limiter.acquire(1, 0) == 0.0


def test_token_budget_and_settling():
    now = [0.0]
    limiter = RateLimiter(tokens_per_minute=600, clock=lambda: now[0])
    assert limiter.acquire(1, 600) == 0.0
    assert limiter.acquire(1, 10) == pytest.approx(1.0)  # 10 tokens at 10/s
    limiter.settle(-20)  # the calls used 20 fewer tokens than estimated: refunded
    assert limiter.acquire(1, 5) == 0.0


def test_flow_reserves_then_sleeps_then_settles():
    from conduit._drive import Effect

    class Spy:
        def __init__(self):
            self.settled = None

        def acquire(self, requests, tokens):
            return 0.25

        def settle(self, tokens):
            self.settled = tokens

    spy = Spy()
    req = c.request("m", "hello", max_tokens=50)
    flow = rate_limit_flow(req, limiter=spy)
    reservation = next(flow)
    assert isinstance(reservation, Effect) and reservation.run() == 0.25
    sent = flow.send(0.25)
    assert sent["conduit/sleep"] == 0.25
    ctx = c.mock_call(c.request("m", "hello", mock="ok"))
    settle = flow.send(ctx)
    settle.run()
    assert spy.settled == c.usage(ctx)["total_tokens"] - estimate_cost(req)


def test_with_rate_limit_paces_real_calls():
    limit = c.with_rate_limit(requests_per_minute=1200, burst=1)  # 20 a second
    start = time.monotonic()
    for _ in range(6):
        pipe(c.request("m", "hi"), limit, c.mock_call)
    assert time.monotonic() - start >= 0.24  # 5 waits of 0.05 s


async def test_async_rate_limit():
    limit = c.with_rate_limit(requests_per_minute=1200, burst=1)
    start = time.monotonic()
    import asyncio

    await asyncio.gather(*(c.mock_acall(pipe(c.request("m", "hi"), limit)) for _ in range(6)))
    assert time.monotonic() - start >= 0.24


def test_bad_limits_are_clear_errors():
    with pytest.raises(c.ValidationError, match="requests_per_minute and/or tokens_per_minute"):
        c.with_rate_limit(burst=2)
    with pytest.raises(c.ValidationError, match="requests_per_minute"):
        c.with_rate_limit(requests_per_minute=float("nan"))


def test_bare_rate_limit_uses_the_process_limiter(monkeypatch):
    import conduit.ratelimit

    spy = c.RateLimiter(requests_per_minute=6000)
    seen = []
    monkeypatch.setattr(spy, "acquire", lambda n, tokens: seen.append((n, tokens)) or 0.0)
    monkeypatch.setattr(conduit.ratelimit, "DEFAULT_LIMITER", spy)
    req = pipe(c.request("m", "hi"), c.with_rate_limit)
    assert c.content(c.mock_call(req)) == "hi" and seen and seen[0][0] == 1


# --- Redis --------------------------------------------------------------------------------

WORKER = textwrap.dedent("""
    import sys, time
    from toolz import pipe
    import conduit as c
    url, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    limit = c.with_rate_limit(c.RedisRateLimiter(url, requests_per_minute=1200, burst=1, name=name))
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(n):
        pipe(c.request("m", "hi"), limit, c.mock_call)
    print(time.monotonic(), flush=True)
""")


def _race(url, names, n=10):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, name, str(n)],
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for name in names
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    start = time.monotonic()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    ends = [float(p.stdout.readline()) for p in procs]
    for p in procs:
        p.stdin.close()
        p.stdout.close()
        p.wait(30)
    return max(ends) - start


def test_two_processes_share_one_redis_budget(redis_url):
    shared = uuid.uuid4().hex
    together = _race(redis_url, [shared, shared])  # 20 calls from one budget of 20/s
    apart = _race(redis_url, [uuid.uuid4().hex, uuid.uuid4().hex])  # two budgets
    assert together >= 0.9  # (20 - 1) / 20 s at the least
    assert apart < together  # the shared budget is what slowed them down


def test_redis_rate_limiter_tokens_and_settle(redis_url):
    limiter = c.RedisRateLimiter(redis_url, tokens_per_minute=600, name=uuid.uuid4().hex)
    assert limiter.acquire(1, 600) == 0.0
    assert limiter.acquire(1, 60) == pytest.approx(6.0, abs=0.1)
    limiter.settle(-1000)
    assert limiter.acquire(1, 1) == 0.0


def test_redis_cache_shared_and_expiring(redis_url):
    store = c.RedisCache(redis_url, prefix=f"t{uuid.uuid4().hex}:")
    script = c.mock_script("from redis")
    req = c.request("m", "hi", mock=script)
    assert pipe(req, c.with_cache(store, ttl=0.3), c.mock_call)["cache_hit"] is False
    other = c.RedisCache(redis_url, prefix=store.prefix)  # another client, same data
    hit = pipe(req, c.with_cache(other, ttl=0.3), c.mock_call)
    assert hit["cache_hit"] is True and c.content(hit) == "from redis"
    time.sleep(0.4)
    assert pipe(req, c.with_cache(other, ttl=0.3), c.mock_call)["cache_hit"] is False
    assert len(script.calls) == 2


def test_redis_backends_travel_to_other_processes_by_url(redis_url):
    import pickle

    limiter = c.RedisRateLimiter(redis_url, requests_per_minute=60, burst=1, name=uuid.uuid4().hex)
    cache = c.RedisCache(redis_url, prefix="p:")
    req = pipe(c.request("m", "hi"), c.with_rate_limit(limiter), c.with_cache(cache))
    back = pickle.loads(pickle.dumps(req))
    copy = back["middleware"][0].options["limiter"]
    assert copy.name == limiter.name and copy.limits == limiter.limits
    assert limiter.acquire(1, 0) == 0.0
    assert copy.acquire(1, 0) > 0.5  # the same budget: the copy waits its turn
    assert pipe(c.request("m", "hi"), c.with_cache(cache), c.mock_call)["cache_hit"] is False
    assert c.mock_call(back)["cache_hit"] is True
    import redis as redis_lib

    with pytest.raises(c.ConduitError, match="build it from a URL"):
        pickle.dumps(c.RedisCache(redis_lib.Redis.from_url(redis_url)))
