"""Provider batch APIs through ``c.batch``, against the loopback stand-ins of tests/batchserver.py:
1,000 requests in input order with per-item failures, a run killed mid-poll that resumes the
same batch, the checkpoint's contents, failed and expired batches, and keys kept out of both."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import conduit as c
from conduit.batch_api import custom_id, provider_batch
from conduit.cost import call_cost, price_for
from tests.batchserver import BatchServer

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "providers"
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}


@pytest.fixture
def server():
    s = BatchServer()
    yield s
    s.close()


def requests(server, provider, n, key=None):
    def text(i):
        return f"question {i}" + (" fail" if i % 97 == 5 else "")

    return [
        c.request(MODELS[provider], text(i), base_url=server.url, api_key=key or server.key)
        for i in range(n)
    ]


def fast(provider, **options):
    return provider_batch(provider, poll=0.005, max_poll=0.01, **options)


def lines(path):
    return [json.loads(x) for x in Path(path).read_text().splitlines()]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_thousand_requests_come_back_in_input_order(server, provider, tmp_path):
    statuses = []
    reqs = requests(server, provider, 1000)
    out = c.batch(
        fast(provider, on_status=statuses.append), reqs, checkpoint=tmp_path / "run.jsonl"
    )
    assert len(out) == 1000 and server.created[provider] == 1
    for i, ctx in enumerate(out):
        if i % 97 == 5:
            assert ctx["error"]["type"] == "BadRequestError"
            assert "refused on purpose" in ctx["error"]["message"]
        else:
            assert c.content(ctx) == f"answer to question {i}"
            assert ctx["messages"] == reqs[i]["messages"]  # the caller's request, as any call
    assert statuses[-1]["done"] == 1000 and statuses[-1]["total"] == 1000
    assert statuses[-1]["status"] in ("completed", "ended")
    assert server.polls[provider] >= 3  # it waited through the states


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_cost_is_half_the_catalog_price(server, provider):
    ctx = c.batch(fast(provider), requests(server, provider, 1), progress=False)[0]
    usage = ctx["response"]["usage"]
    full = call_cost(usage, price_for(MODELS[provider]))
    assert ctx["cost"] == pytest.approx(full / 2)


def test_the_checkpoint_records_the_batch_before_its_items(server, tmp_path):
    path = tmp_path / "run.jsonl"
    reqs = requests(server, "openai", 10)
    c.batch(fast("openai"), reqs, checkpoint=path)
    found = lines(path)
    submitted, *items, collected = found
    assert submitted["batch"]["event"] == "submitted"
    assert submitted["batch"]["batch_id"].startswith("batch_")
    assert submitted["batch"]["input_file_id"].startswith("file-")
    keys = [c.cache_key(r) for r in reqs]
    assert submitted["batch"]["custom_ids"] == [custom_id(i, k) for i, k in enumerate(keys)]
    assert sorted(e["index"] for e in items) == list(range(10))
    assert all(e["key"] == keys[e["index"]] for e in items)
    assert collected["batch"] == {
        "event": "collected",
        "provider": "openai",
        "batch_id": submitted["batch"]["batch_id"],
        "status": "completed",
    }
    assert server.key not in path.read_text()
    again = c.batch(fast("openai"), reqs, checkpoint=path)  # only the failed item runs again
    assert server.created["openai"] == 2
    assert [c.content(r) for r in again[:3]] == [f"answer to question {i}" for i in range(3)]
    assert len(lines(path)) == len(found) + 3  # submitted, the failed item again, collected


def test_mixed_providers_split_into_one_batch_each(server):
    reqs = [
        c.request(m, f"q{i}", base_url=server.url, api_key=server.key)
        for i, m in enumerate(["gpt-4o-mini", "anthropic:claude-haiku-4-5", "gpt-4o-mini"])
    ]
    reqs.append(c.request("gemini:gemini-2.5-flash", "q3", api_key="g-key-12345678"))
    out = c.batch(c.provider_batch(poll=0.005, max_poll=0.01), reqs, progress=False)
    assert [c.content(r) for r in out[:3]] == ["answer to q0", "answer to q1", "answer to q2"]
    assert out[1]["model"] == "anthropic:claude-haiku-4-5"
    assert out[3]["error"]["type"] == "ValidationError"
    assert "gemini has no batch API" in out[3]["error"]["message"]
    assert server.created == {"openai": 1, "anthropic": 1}


SCRIPT = """
import sys
import conduit as c
from conduit.cost import call_cost, price_for
from conduit.batch_api import provider_batch
url, key, provider, model, path = sys.argv[1:]
reqs = [c.request(model, f"question {i}", base_url=url, api_key=key) for i in range(300)]
c.batch(provider_batch(provider, poll=0.005, max_poll=0.01), reqs, progress=False, checkpoint=path)
print("finished")
"""


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_run_killed_mid_poll_resumes_the_same_batch(server, provider, tmp_path):
    path = tmp_path / "run.jsonl"
    server.hold = 10**9  # in progress until the test says otherwise
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    err = (tmp_path / "err").open("w")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(SCRIPT),
            server.url,
            server.key,
            provider,
            MODELS[provider],
            str(path),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    try:
        deadline = time.monotonic() + 15
        while not (server.created[provider] == 1 and server.polls[provider] >= 2):
            assert child.poll() is None, (tmp_path / "err").read_text()
            assert time.monotonic() < deadline, "the child never polled"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        err.close()
    (recorded,) = lines(path)
    assert recorded["batch"]["event"] == "submitted" and len(recorded["batch"]["custom_ids"]) == 300

    server.hold = 1
    reqs = [
        c.request(MODELS[provider], f"question {i}", base_url=server.url, api_key=server.key)
        for i in range(300)
    ]
    out = c.batch(fast(provider), reqs, progress=False, checkpoint=path)
    assert server.created[provider] == 1  # resumed, not submitted again
    assert [c.content(r) for r in out] == [f"answer to question {i}" for i in range(300)]
    assert lines(path)[-1]["batch"]["event"] == "collected"


def test_a_failed_batch_fails_each_item_clearly(server, tmp_path):
    server.outcome = "failed"
    path = tmp_path / "run.jsonl"
    out = c.batch(fast("openai"), requests(server, "openai", 5), checkpoint=path)
    for ctx in out:
        assert ctx["error"]["type"] == "ProviderError"
        message = ctx["error"]["message"]
        assert "openai batch batch_" in message and "failed before running any request" in message
        assert "the model does not exist" in message
        assert ctx["error"]["data"]["batch_status"] == "failed"
    assert lines(path)[-1]["batch"]["status"] == "failed"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_expired_batch_keeps_what_ran_and_names_what_did_not(server, provider):
    server.outcome = "expired"
    out = c.batch(fast(provider), requests(server, provider, 10), progress=False)
    assert [c.content(r) for r in out[:5]] == [f"answer to question {i}" for i in range(5)]
    for ctx in out[5:]:
        assert ctx["error"]["type"] == "ProviderError"
        assert "expired" in ctx["error"]["message"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_wrong_key_is_masked_in_errors_and_the_checkpoint(server, provider, tmp_path):
    wrong = "sk-wrong-key-9876543210zyxwvu"
    path = tmp_path / "run.jsonl"
    out = c.batch(fast(provider), requests(server, provider, 3, key=wrong), checkpoint=path)
    for ctx in out:
        assert ctx["error"]["type"] == "AuthenticationError"
        assert wrong not in json.dumps(c.thaw(ctx["error"]))
    assert wrong not in path.read_text() and server.created[provider] == 0


def test_a_batch_that_does_not_end_in_time_says_how_to_keep_waiting(server, tmp_path):
    server.hold = 10**9
    path = tmp_path / "run.jsonl"
    out = c.batch(
        fast("anthropic", timeout=0.05), requests(server, "anthropic", 2), checkpoint=path
    )
    assert "rerun with the same checkpoint" in out[0]["error"]["message"]
    server.hold = 0
    again = c.batch(fast("anthropic"), requests(server, "anthropic", 2), checkpoint=path)
    assert [c.content(r) for r in again] == ["answer to question 0", "answer to question 1"]
    assert server.created["anthropic"] == 1


def test_failed_polls_are_waited_out_up_to_five_in_a_row(server):
    server.flaky = 4
    out = c.batch(fast("openai"), requests(server, "openai", 2), progress=False)
    assert [c.content(r) for r in out] == ["answer to question 0", "answer to question 1"]
    server.flaky = 5
    out = c.batch(fast("openai"), requests(server, "openai", 2), progress=False)
    assert out[0]["error"]["type"] == "ServerError"


def test_the_handler_alone_runs_a_batch_of_one(server):
    ctx = fast("openai")(requests(server, "openai", 1)[0])
    assert c.content(ctx) == "answer to question 0"
    with pytest.raises(c.AuthenticationError):
        fast("openai")(requests(server, "openai", 1, key="sk-nope-0000000000")[0])


def test_the_stand_ins_speak_the_documented_formats():
    """The stand-ins' objects have the fields of the providers' own examples (fixtures)."""
    s = BatchServer()
    try:
        s.hold = 0
        reqs = [c.request("gpt-4o-mini", "hi", base_url=s.url, api_key=s.key)]
        c.batch(fast("openai"), reqs, progress=False)
        ours = next(iter(s.batches.values()))["object"]
        theirs = json.loads((FIXTURES / "openai" / "batch_object.json").read_text())
        assert set(theirs) - {"metadata"} <= set(ours) | {
            "in_progress_at",
            "expires_at",
            "finalizing_at",
            "completed_at",
            "failed_at",
            "expired_at",
            "cancelling_at",
            "cancelled_at",
        }
        line = json.loads((FIXTURES / "openai" / "batch_output_line.json").read_text())
        assert c.content(c.providers.openai.decode_chat(reqs[0], line["response"]["body"]))
        theirs = json.loads((FIXTURES / "anthropic" / "message_batch.json").read_text())
        for result in (FIXTURES / "anthropic" / "batch_results.jsonl").read_text().splitlines():
            message = json.loads(result)["result"]["message"]
            assert c.content(c.providers.anthropic.decode_chat(reqs[0], message))
        c.batch(fast("anthropic"), [reqs[0].set("model", "claude-haiku-4-5")], progress=False)
        ours = next(b["object"] for b in s.batches.values() if b["object"].get("type"))
        assert set(theirs) - {"archived_at"} <= set(ours)
    finally:
        s.close()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_gateways_query_goes_on_every_batch_request(server, provider, tmp_path):
    """A base URL with a query (a gateway's team, or its key) reaches every endpoint of the
    batch API with it, after the path: the upload, the create, each poll and the results."""
    reqs = [
        c.request(MODELS[provider], f"q{i}", base_url=f"{server.url}?team=blue", api_key=server.key)
        for i in range(3)
    ]
    out = c.batch(fast(provider), reqs, checkpoint=tmp_path / "run.jsonl", progress=False)
    assert [c.content(ctx) for ctx in out] == [f"answer to q{i}" for i in range(3)]
    assert len(server.queries) >= 4 and set(server.queries) == {"team=blue"}, server.queries
