"""The model catalog: its file validates, lookups find models and snapshots, the readers
(with_cost, with_token_limit, budget estimates, conduit models, parameter mapping) use it, and a
user's entries win."""

import json
import logging
import pathlib
import subprocess
import sys

import pytest
from pyrsistent import pmap
from toolz import pipe

import conduit as c
from conduit import catalog, cli, registry
from conduit.cost import PRICES, call_cost, estimate_usage, price_for

FILE = pathlib.Path(catalog.__file__).with_name("models.json")

#: Conduit's prices before the catalog (cost.PRICES as it was), USD per million tokens.
OLD_PRICES = {
    "gpt-5": {"input": 1.25, "cache_read": 0.125, "output": 10.0},
    "gpt-5-mini": {"input": 0.25, "cache_read": 0.025, "output": 2.0},
    "gpt-5-nano": {"input": 0.05, "cache_read": 0.005, "output": 0.40},
    "gpt-4.1": {"input": 2.0, "cache_read": 0.50, "output": 8.0},
    "gpt-4.1-mini": {"input": 0.40, "cache_read": 0.10, "output": 1.60},
    "gpt-4.1-nano": {"input": 0.10, "cache_read": 0.025, "output": 0.40},
    "gpt-4o": {"input": 2.50, "cache_read": 1.25, "output": 10.0},
    "gpt-4o-mini": {"input": 0.15, "cache_read": 0.075, "output": 0.60},
    "o3": {"input": 2.0, "cache_read": 0.50, "output": 8.0},
    "o3-mini": {"input": 1.10, "cache_read": 0.55, "output": 4.40},
    "o4-mini": {"input": 1.10, "cache_read": 0.275, "output": 4.40},
    "text-embedding-3-small": {"input": 0.02, "output": 0.0},
    "text-embedding-3-large": {"input": 0.13, "output": 0.0},
    "claude-opus-4-5": {"input": 5.0, "cache_read": 0.50, "cache_write": 6.25, "output": 25.0},
    "claude-opus-4-1": {"input": 15.0, "cache_read": 1.50, "cache_write": 18.75, "output": 75.0},
    "claude-sonnet-4-5": {"input": 3.0, "cache_read": 0.30, "cache_write": 3.75, "output": 15.0},
    "claude-sonnet-4": {"input": 3.0, "cache_read": 0.30, "cache_write": 3.75, "output": 15.0},
    "claude-haiku-4-5": {"input": 1.0, "cache_read": 0.10, "cache_write": 1.25, "output": 5.0},
    "claude-3-5-haiku": {"input": 0.80, "cache_read": 0.08, "cache_write": 1.0, "output": 4.0},
    "llama-3.3-70b-versatile": {"input": 0.59, "output": 0.79},
    "llama-3.1-8b-instant": {"input": 0.05, "output": 0.08},
    "grok-4": {"input": 3.0, "cache_read": 0.75, "output": 15.0},
    "grok-3": {"input": 3.0, "cache_read": 0.75, "output": 15.0},
    "grok-3-mini": {"input": 0.30, "cache_read": 0.075, "output": 0.50},
}
#: Corrected against Groq's models page (old figures: 0.15 / 0.75 and 0.10 / 0.50).
CORRECTED = {
    "openai/gpt-oss-120b": {"input": 0.15, "output": 0.60},
    "openai/gpt-oss-20b": {"input": 0.075, "output": 0.30},
}
#: registry.CONTEXT_WINDOWS as it was, by a model of each family.
OLD_WINDOWS = {
    "gpt-5-mini": 400_000,
    "gpt-4.1-2025-04-14": 1_047_576,
    "gpt-4o-mini-2024-07-18": 128_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "claude-haiku-4-5-20251001": 200_000,
    "llama-3.3-70b-versatile": 131_072,
    "llama-3.1-8b-instant": 131_072,
    "grok-4-0709": 256_000,
    "grok-3-mini": 131_072,
}


@pytest.fixture
def own_catalog(monkeypatch):
    """A catalog whose user entries are undone after the test."""
    monkeypatch.setattr(catalog, "_added", [])
    monkeypatch.setattr(catalog, "_table", None)
    yield
    catalog._table = None


def test_every_entry_in_the_file_is_complete_and_valid():
    entries = json.loads(FILE.read_text())["models"]
    keys = set()
    for entry in entries:
        info = catalog.model_info(entry)  # raises on any malformed field
        assert entry["provider"] in registry.provider_names()
        assert info.source and info.source.startswith("https://")
        assert info.gathered and len(info.gathered) == 10  # YYYY-MM-DD
        assert isinstance(entry["verified"], bool)
        for n in (info.context_window, info.max_output):
            assert n is None or n > 0
        if info.kind == "chat":
            assert info.prices is None or (info.prices["input"] > 0 and info.prices["output"] > 0)
            assert info.max_output is None or info.max_output <= (info.context_window or 1e12)
        assert all(v >= 0 for v in (info.prices or {}).values())
        assert (info.temperature is False) == ("temperature" in info.unsupported_options)
        assert (info.provider, info.id) not in keys
        keys.add((info.provider, info.id))
    names = [n for e in map(catalog.model_info, entries) for n in e.names]
    assert len(names) == len(set(names)), "an id or alias names two models"


def test_lookup_by_id_snapshot_alias_and_provider_prefix():
    assert catalog.lookup("gpt-4o-mini").id == "gpt-4o-mini"
    assert catalog.lookup("gpt-4o-mini-2024-07-18").id == "gpt-4o-mini"
    assert catalog.lookup("gpt-4o-2024-05-13").prices["input"] == 5.0  # its own entry
    assert catalog.lookup("gpt-4o-2024-11-20").id == "gpt-4o"
    assert catalog.lookup("claude-sonnet-4-5@20250929").id == "claude-sonnet-4-5"
    assert catalog.lookup("anthropic:claude-opus-4-1-20250805").id == "claude-opus-4-1"
    assert catalog.lookup("xai:grok-4").provider == catalog.lookup("grok:grok-4").provider == "grok"
    assert catalog.lookup("groq:openai/gpt-oss-20b").provider == "groq"
    assert catalog.lookup("mock:gpt-4o-mini").id == "gpt-4o-mini"  # no mock entry: any provider
    assert catalog.lookup("gpt-5.5").id == "gpt-5.5"  # not gpt-5 by prefix
    for name in ("my-finetune", "antropic:claude-haiku-4-5", "claude", ""):
        assert catalog.lookup(name) is None


def test_cost_from_the_catalog_equals_the_old_prices():
    usage = {"input_tokens": 1_200_000, "output_tokens": 300_000, "cache_read_tokens": 200_000}
    for model, old in {**OLD_PRICES, **CORRECTED}.items():
        assert dict(PRICES[model]) == old, model
        assert call_cost(usage, price_for(model)) == call_cost(usage, old), model
    assert price_for("claude-haiku-4-5-20251001") == price_for("claude-haiku-4-5")
    assert price_for("my-finetune") is None
    req = c.request("gpt-4o-mini", "hi", mock={"content": "ok", "usage": usage})
    assert pipe(req, c.with_cost, c.mock_call)["cost"] == call_cost(
        usage, OLD_PRICES["gpt-4o-mini"]
    )


def test_context_windows_match_the_old_table():
    for model, size in OLD_WINDOWS.items():
        assert catalog.context_window(model) == size, model


def test_the_prices_override_still_replaces_the_catalog():
    usage = {"input_tokens": 1_000_000, "output_tokens": 0, "total_tokens": 1_000_000}
    req = c.request("gpt-4o-mini", "hi", mock={"content": "ok", "usage": usage})
    ctx = pipe(req, c.with_cost(prices={"gpt-4o-mini": {"input": 9.0, "output": 1.0}}), c.mock_call)
    assert ctx["cost"] == 9.0


def test_a_registered_model_wins_and_reaches_every_reader(own_catalog, capsys):
    c.register_model(
        {"provider": "openai", "id": "gpt-4o-mini", "prices": {"input": 1, "output": 2}}
    )
    info = catalog.lookup("gpt-4o-mini-2024-07-18")
    assert dict(info.prices) == {"input": 1.0, "output": 2.0}
    assert info.context_window == 128_000 and info.source  # fields not given are kept
    usage = {"input_tokens": 1_000_000, "output_tokens": 1_000_000, "total_tokens": 2_000_000}
    req = c.request("gpt-4o-mini", "hi", mock={"content": "ok", "usage": usage})
    assert pipe(req, c.with_cost, c.mock_call)["cost"] == 3.0

    new = c.register_model(
        {
            "provider": "ollama",
            "id": "tiny",
            "context_window": 3_000,
            "max_output": 500,
            "prices": {"input": 0, "output": 0},
            "capabilities": {"temperature": False},
        }
    )
    assert new.unsupported_options == ("temperature",) and catalog.models()[0] == new
    assert catalog.context_window("ollama:tiny:latest") is None  # "tiny:latest" is another name
    assert catalog.context_window("ollama:tiny") == 3_000
    assert estimate_usage(c.request("ollama:tiny", "hi", max_tokens=9_000))["output_tokens"] == 500
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "ollama\n  tiny " in out and "1.000 / 2.000" in out


def test_a_model_file_named_in_the_environment_is_read(own_catalog, tmp_path, monkeypatch):
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "models": [
                    {"provider": "anthropic", "id": "claude-haiku-4-5", "context_window": 1_000},
                    {"provider": "groq", "id": "my-groq", "prices": {"input": 1, "output": 1}},
                ]
            }
        )
    )
    monkeypatch.setenv("CONDUIT_MODELS", str(path))
    assert catalog.context_window("claude-haiku-4-5-20251001") == 1_000
    assert catalog.lookup("claude-haiku-4-5").prices["output"] == 5.0
    assert price_for("groq:my-groq")["input"] == 1.0
    c.register_model({"provider": "groq", "id": "my-groq", "prices": {"input": 2, "output": 2}})
    assert price_for("my-groq")["input"] == 2.0  # code wins over the file


def test_bad_entries_are_refused_where_they_are_made(own_catalog):
    for entry, words in [
        ({"provider": "antropic", "id": "x"}, "did you mean 'anthropic'"),
        ({"provider": "openai", "id": "x", "context_window": -5}, "context_window"),
        ({"provider": "openai", "id": "x", "prices": {"input": 1}}, "needs 'input' and 'output'"),
        ({"provider": "openai", "id": "x", "capabilities": {"vison": True}}, "'vision'"),
        ({"provider": "openai", "id": "x", "max_tokens_param": "max_output"}, "max_tokens_param"),
        ({"provider": "openai"}, "id must be"),
    ]:
        with pytest.raises(c.ValidationError, match=words):
            c.register_model(entry)
    assert catalog.lookup("x") is None


def test_parameter_mapping_for_reasoning_models(caplog, monkeypatch):
    monkeypatch.setattr(catalog, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="conduit"):
        options = catalog.wire_options(
            "openai:o4-mini-2025-04-16", pmap({"max_tokens": 100, "temperature": 0.3, "top_p": 1})
        )
    assert options == pmap({"max_completion_tokens": 100})
    assert len(caplog.records) == 1 and "temperature, top_p" in caplog.records[0].getMessage()
    caplog.clear()
    plain = pmap({"max_tokens": 100, "temperature": 0.3})
    assert catalog.wire_options("gpt-4.1", plain) is plain and not caplog.records
    assert catalog.wire_options("my-finetune", plain) is plain
    assert catalog.drop_unsupported("anthropic:claude-sonnet-5", {"top_k": 5, "stop": ["x"]}) == {
        "stop": ["x"]
    }
    assert catalog.lookup("gpt-5").max_tokens_param == "max_completion_tokens"
    assert catalog.lookup("gpt-5-chat-latest").temperature is True


def test_with_token_limit_and_the_estimates_read_the_catalog():
    assert (
        estimate_usage(c.request("gpt-4o-2024-05-13", "hi", max_tokens=10_000))["output_tokens"]
        == 4_096
    )
    assert estimate_usage(c.request("gpt-4o", "hi"))["output_tokens"] == 256
    long = [c.user("x" * 4_000_000)]
    with pytest.raises(c.ValidationError, match="context window"):
        pipe(c.request("my-finetune", long), c.with_token_limit, c.mock_call)
    script = c.mock_script("ok")
    pipe(
        c.request("claude-haiku-4-5", [*long, c.user("q")], mock=script),
        c.with_token_limit,
        c.mock_call,
    )
    assert script.calls[0]["messages"][-1]["content"] == "q"


def test_conduit_models_lists_the_catalog(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for info in catalog.models():
        assert f"  {info.id} " in out
    assert "claude-sonnet-4-5" in out and "200,000" in out and "reasoning" in out
    assert "(unverified)" in out


def test_import_conduit_does_not_read_the_catalog():
    code = "import conduit, conduit.catalog as k; print(k._table is None)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
