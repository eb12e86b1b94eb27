"""Configuring the built-in ``with_*``: bare defaults, mistakes caught when built, built once."""

import math
import pickle
import re

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from toolz import pipe

import conduit as c
import conduit.budget
import conduit.cache
import conduit.cost
import conduit.fallback
import conduit.log
import conduit.rag.retrieve
import conduit.ratelimit
import conduit.replay
import conduit.retry
import conduit.structured
import conduit.timeout
from conduit._options import keywords_of
from conduit.middleware import middlewares


@attrs.frozen
class City:
    name: str
    population: int


def _retrieve(query):
    return ()


NAN, INF = float("nan"), float("inf")

#: Builders that have no bare form, and the main argument each needs.
NEEDS = {
    "with_budget": c.Budget(max_calls=5),
    "with_fallback": ["mock:backup"],
    "with_schema": City,
    "with_retrieval": _retrieve,
}
#: Builders that work bare.
BARE = [
    "with_retry",
    "with_cache",
    "with_cost",
    "with_rate_limit",
    "with_timeout",
    "with_logging",
    "with_replay",
]
ALL = BARE + list(NEEDS)

#: One valid configuration per builder (keywords only).
CONFIGURED = {
    "with_retry": {"max_attempts": 5, "initial_delay": 0, "max_delay": 2.0},
    "with_cache": {"ttl": 60},
    "with_cost": {"prices": {"m": {"input": 1.0, "output": 2.0}}},
    "with_budget": {"max_calls": 10},
    "with_rate_limit": {"requests_per_minute": 6000},
    "with_timeout": {"seconds": 30},
    "with_logging": {"logger": "app", "level": "DEBUG"},
    "with_replay": {"path": "cassette.jsonl", "mode": "record"},
    "with_fallback": {"models": ["mock:backup"]},
    "with_schema": {"schema": City, "max_retries": 1},
    "with_retrieval": {"retrieve": _retrieve},
}

#: Every numeric option: (builder, keyword, 0 means something, inf means something, whole).
NUMERIC = [
    ("with_retry", "max_attempts", False, False, True),
    ("with_retry", "initial_delay", True, False, False),
    ("with_retry", "max_delay", True, False, False),
    ("with_retry", "max_retry_after", True, True, False),
    ("with_cache", "ttl", False, False, False),
    ("with_budget", "max_cost", False, False, False),
    ("with_budget", "max_tokens", False, False, True),
    ("with_budget", "max_calls", False, False, True),
    ("with_rate_limit", "requests_per_minute", False, False, False),
    ("with_rate_limit", "tokens_per_minute", False, False, False),
    ("with_rate_limit", "burst", False, False, False),
    ("with_timeout", "seconds", False, False, False),
    ("with_schema", "max_retries", True, False, True),
]


#: What the numeric tests add so that the option under test is the only thing wrong.
BASE = {
    "with_budget": {"max_calls": 5},
    "with_rate_limit": {"requests_per_minute": 600},
    "with_schema": {"schema": City},
}
MODULES = {
    "with_retry": conduit.retry,
    "with_cache": conduit.cache,
    "with_cost": conduit.cost,
    "with_budget": conduit.budget,
    "with_rate_limit": conduit.ratelimit,
    "with_timeout": conduit.timeout,
    "with_logging": conduit.log,
    "with_replay": conduit.replay,
    "with_fallback": conduit.fallback,
    "with_schema": conduit.structured,
    "with_retrieval": conduit.rag.retrieve,
}


def configure(name, **options):
    """Evaluate ``c.<name>(**BASE, **options)``: no request anywhere, so a raise is build time."""
    return getattr(c, name)(**{**BASE.get(name, {}), **options})


def valid_for(value, zero, infinite, whole):
    if isinstance(value, bool) or math.isnan(value) or value < 0 or (value == 0 and not zero):
        return False
    if math.isinf(value):
        return infinite and not whole
    return not whole or float(value).is_integer()


def misspell(word):
    return word[: len(word) // 2] + word[len(word) // 2 + 1 :]


KEYWORDS = [(name, kw) for name in ALL for kw in keywords_of(MODULES[name]._SPEC.build)]


# --- unknown keywords -------------------------------------------------------------------


@pytest.mark.parametrize(("name", "keyword"), KEYWORDS, ids=[f"{n}-{k}" for n, k in KEYWORDS])
def test_a_misspelt_keyword_fails_when_built_naming_it_and_the_right_one(name, keyword):
    typo = misspell(keyword)
    with pytest.raises(c.ValidationError) as err:
        getattr(c, name)(**{**CONFIGURED[name], typo: 1})
    message = str(err.value)
    assert f"{name} has no option {typo!r}" in message
    assert f"did you mean {keyword!r}?" in message
    assert all(kw in message for kw in keywords_of(MODULES[name]._SPEC.build))


@pytest.mark.parametrize("name", ALL)
def test_an_unknown_keyword_fails_on_every_builder(name):
    with pytest.raises(c.ValidationError, match=rf"{name} has no option 'colour'; its options"):
        getattr(c, name)(colour="blue")


def test_the_openai_sdk_spelling_says_what_to_write_here():
    with pytest.raises(c.ValidationError) as err:
        c.with_retry(max_retries=5)
    assert "'max_retries'" in str(err.value) and "max_attempts=N + 1" in str(err.value)
    with pytest.raises(c.ValidationError, match="did you mean 'requests_per_minute'"):
        c.with_rate_limit(requests_per_minute=60, request_per_minute=60)


def test_bad_values_other_than_numbers_fail_when_built(tmp_path):
    cases = [
        (lambda: c.with_replay(tmp_path / "x.jsonl", mode="replya"), "did you mean 'replay'"),
        (lambda: c.with_replay(42), "with_replay takes a file"),
        (lambda: c.with_cache({"not": "a store"}), "needs a store"),
        (lambda: c.with_cost(prices={"m": {"inputs": 1, "output": 2}}), "did you mean 'input'"),
        (lambda: c.with_cost(prices={"m": {"input": NAN, "output": 2}}), "prices"),
        (lambda: c.with_budget(max_cost=1, prices={"m": {"input": -1, "output": 0}}), "prices"),
        (lambda: c.with_budget(c.Budget(max_calls=1), max_calls=2), "not both"),
        (lambda: c.with_budget("lots"), "c.Budget"),
        (lambda: c.with_rate_limit("fast"), "RateLimiter"),
        (lambda: c.with_logging(level="LOUD"), "logging level"),
        (lambda: c.with_logging(level="DEBUGG"), "did you mean 'DEBUG'"),
        (lambda: c.with_logging(logger=""), "logger name"),
        (lambda: c.with_fallback("gpt-4o"), "a list of models"),
        (lambda: c.with_fallback([]), "a list of models"),
        (lambda: c.with_fallback([42]), "each alternative"),
        (lambda: c.with_schema(42), "a schema is an attrs class"),
        (lambda: c.with_retrieval("docs"), "needs a retriever"),
        (lambda: c.with_retrieval(_retrieve, template="no placeholder"), "{context}"),
        (lambda: c.with_retrieval(_retrieve, template="{context} {other}"), "only {context}"),
        (lambda: c.with_timeout(30, seconds=5), "seconds twice"),
        (lambda: c.with_retry(5), "keyword options: c.with_retry"),
    ]
    for make, words in cases:
        with pytest.raises(c.ValidationError, match=re.escape(words)):
            make()


# --- numbers ----------------------------------------------------------------------------

BAD_NUMBERS = [NAN, -1, 0, INF, -INF, True, False, "30", 2.5]
NUMBER_CASES = [
    (name, kw, value)
    for name, kw, zero, infinite, whole in NUMERIC
    for value in BAD_NUMBERS
    if isinstance(value, bool | str) or not valid_for(value, zero, infinite, whole)
]


@pytest.mark.parametrize(
    ("name", "keyword", "value"), NUMBER_CASES, ids=[f"{n}-{k}-{v!r}" for n, k, v in NUMBER_CASES]
)
def test_an_invalid_number_fails_when_built_naming_the_option(name, keyword, value):
    with pytest.raises(c.ValidationError, match=rf"\({keyword}=\.\.\.\) must be a "):
        configure(name, **{keyword: value})


@pytest.mark.parametrize(("name", "keyword", "zero", "infinite", "whole"), NUMERIC)
def test_zero_and_infinity_build_exactly_where_they_mean_something(
    name, keyword, zero, infinite, whole
):
    for value, allowed in ((0, zero), (INF, infinite)):
        if allowed:
            configure(name, **{keyword: value})
        else:
            with pytest.raises(c.ValidationError):
                configure(name, **{keyword: value})


def test_with_timeout_nan_and_the_positional_form():
    with pytest.raises(c.ValidationError, match="seconds"):
        c.with_timeout(NAN)
    with pytest.raises(c.ValidationError, match="seconds"):
        c.with_timeout(True)
    assert middlewares(c.with_timeout(2)(c.request("m")))[0].options["seconds"] == 2.0


@given(
    st.sampled_from(NUMERIC),
    st.one_of(st.floats(), st.integers(min_value=-(10**6), max_value=10**6)),
)
def test_a_number_builds_exactly_when_the_option_can_mean_it(option, value):
    name, keyword, zero, infinite, whole = option
    if valid_for(value, zero, infinite, whole):
        transform = configure(name, **{keyword: value})
        assert transform.__name__ == name
    else:
        with pytest.raises(c.ValidationError, match=keyword):
            configure(name, **{keyword: value})


@given(
    max_attempts=st.integers(min_value=1, max_value=50),
    initial_delay=st.floats(min_value=0, max_value=1e6),
    max_delay=st.floats(min_value=0, max_value=1e6),
    max_retry_after=st.floats(min_value=0),
    seconds=st.floats(min_value=1e-3, max_value=1e6),
    ttl=st.none() | st.floats(min_value=1e-3, max_value=1e9),
)
def test_valid_configurations_build_and_keep_their_values(
    max_attempts, initial_delay, max_delay, max_retry_after, seconds, ttl
):
    policy = {
        "max_attempts": max_attempts,
        "initial_delay": initial_delay,
        "max_delay": max_delay,
        "max_retry_after": max_retry_after,
    }
    req = pipe(
        c.request("m", "hi"),
        c.with_timeout(seconds),
        c.with_retry(**policy),
        c.with_cache(c.MemoryCache(), ttl=ttl),
    )
    timeout, retry, cache = middlewares(req)
    assert timeout.options["seconds"] == seconds and dict(retry.options) == policy
    assert cache.options["ttl"] == ttl


@given(
    name=st.sampled_from(["with_timeout", "with_cache", "with_budget", "with_rate_limit"]),
    value=st.one_of(
        st.just(NAN), st.just(INF), st.floats(max_value=0), st.booleans(), st.text(max_size=3)
    ),
)
def test_invalid_floats_never_build(name, value):
    keyword = {
        "with_timeout": "seconds",
        "with_cache": "ttl",
        "with_budget": "max_cost",
        "with_rate_limit": "requests_per_minute",
    }[name]
    with pytest.raises(c.ValidationError, match=keyword):
        getattr(c, name)(**{keyword: value})


# --- bare use ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", BARE)
def test_bare_use_works_through_the_mock(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # bare with_replay records to ./conduit-replay.jsonl
    ctx = pipe(c.request("m", "hi"), getattr(c, name), c.mock_call)
    assert c.content(ctx) == "hi"
    assert [m.name for m in middlewares(pipe(c.request("m"), getattr(c, name)))] == [
        MODULES[name]._SPEC.bare.name
    ]


def test_bare_defaults_are_the_documented_ones(tmp_path, monkeypatch):
    def options(transform):
        return middlewares(transform(c.request("m")))[0].options

    assert dict(options(c.with_retry)) == {
        "max_attempts": 3,
        "initial_delay": 0.5,
        "max_delay": 8.0,
        "max_retry_after": 60.0,
    }
    assert options(c.with_timeout)["seconds"] == 60.0
    assert dict(options(c.with_cache)) == {"store": None, "ttl": None}
    assert options(c.with_cost)["prices"] is None
    with pytest.raises(c.ValidationError, match="with_budget needs a limit"):
        options(c.with_budget)  # no bare budget: no limit suits every program
    assert options(c.with_rate_limit)["limiter"] is None
    assert repr(conduit.ratelimit.DEFAULT_LIMITER) == "RateLimiter(per_minute={'requests': 50.0})"
    assert dict(options(c.with_logging)) == {"logger": "conduit", "level": 20}
    assert dict(options(c.with_replay)) == {"recording": None, "mode": "auto"}
    monkeypatch.chdir(tmp_path)
    pipe(c.request("m", "hi", mock="recorded"), c.with_replay, c.mock_call)
    assert (tmp_path / "conduit-replay.jsonl").exists()
    again = pipe(c.request("m", "hi", mock=c.ConnectionError("offline")), c.with_replay)
    assert c.content(c.mock_call(again)) == "recorded"


def test_bare_rate_limit_spends_from_the_process_limiter(monkeypatch):
    calls = []

    class Spy:
        def acquire(self, requests, tokens):
            calls.append(requests)
            return 0.0

        def settle(self, tokens):
            pass

    monkeypatch.setattr(conduit.ratelimit, "DEFAULT_LIMITER", Spy())
    pipe(c.request("m", "hi"), c.with_rate_limit, c.mock_call)
    assert calls == [1]


@pytest.mark.parametrize("name", list(NEEDS))
def test_bare_use_without_a_default_says_what_to_pass(name):
    with pytest.raises(c.ValidationError, match=rf"{name} needs .*c\.{name}\("):
        pipe(c.request("m", "hi"), getattr(c, name), c.mock_call)
    with pytest.raises(c.ValidationError, match=rf"{name} needs .*c\.{name}\("):
        getattr(c, name)()


# --- built once -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_configured_middleware_is_built_once_and_shared_by_every_request(name, tmp_path):
    options = dict(CONFIGURED[name])
    if name == "with_replay":
        options["path"] = tmp_path / "cassette.jsonl"
    transform = getattr(c, name)(**options)
    first, second = transform(c.request("m", "a")), transform(c.request("m", "b"))
    assert middlewares(first)[0] is middlewares(second)[0]
    assert transform.__name__ == name == getattr(c, name).__name__


@pytest.mark.parametrize("name", BARE)
def test_bare_middleware_is_built_once(name):
    first = pipe(c.request("m", "a"), getattr(c, name))
    second = pipe(c.request("m", "b"), getattr(c, name))
    assert middlewares(first)[0] is middlewares(second)[0] is MODULES[name]._SPEC.bare


def test_with_schema_derives_the_schema_once(monkeypatch):
    derived = []
    real = conduit.structured.schema_of

    def counting(tp):
        derived.append(tp)
        return real(tp)

    monkeypatch.setattr(conduit.structured, "schema_of", counting)
    ask = c.with_schema(City)
    answer = '{"name": "Paris", "population": 2100000}'
    parsed = [c.mock_call(ask(c.request("m", q, mock=answer)))["parsed"] for q in "abc"]
    assert parsed == [City("Paris", 2100000)] * 3
    assert derived == [City]


# --- pickling ---------------------------------------------------------------------------


def test_requests_and_configured_transforms_pickle(tmp_path):
    transforms = [
        c.with_retry(max_attempts=5),
        c.with_timeout(30),
        c.with_cost(prices={"m": {"input": 1, "output": 2}}),
        c.with_logging(logger="app"),
        c.with_fallback(["mock:backup"]),
        c.with_schema(City),
        c.with_replay(tmp_path / "x.jsonl"),
    ]
    with pytest.raises(c.ConduitError, match="RedisBudget"):
        pickle.dumps(c.with_budget(max_calls=3))
    bare = [getattr(c, name) for name in BARE]
    req = pipe(c.request("m", "hi"), *bare, *transforms)
    back = pickle.loads(pickle.dumps(req))
    assert [m.name for m in middlewares(back)] == [m.name for m in middlewares(req)]
    for transform in [*transforms, *bare]:
        copy = pickle.loads(pickle.dumps(transform))
        assert copy.__name__ == transform.__name__
        assert (
            middlewares(copy(c.request("m")))[0].name
            == middlewares(transform(c.request("m")))[0].name
        )


@pytest.mark.parametrize("name", ["with_tools", "with_middleware"])
def test_a_builder_given_the_request_says_to_give_its_argument_first(name):
    with pytest.raises(c.ValidationError, match=rf"{name} needs the .* first, then the request"):
        pipe(c.request("mock:m", "hi"), getattr(c, name))
