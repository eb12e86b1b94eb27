"""Full JSON Schema (2020-12) validation of tool arguments and structured answers; the retry
policy's edges (huge attempt numbers, a ``Retry-After`` of 0 or in the past).

Every keyword family is enforced twice: for a tool call (the model gets an error tool result
naming the path of the bad value, the function is never called) and for ``with_schema`` (the
answer is sent back with the same words, and the corrected one is accepted). Hypothesis checks
that Conduit's verdict is the ``jsonschema`` library's on random schemas and instances.
"""

import email.utils
import json
import math
import subprocess
import sys
import time
from typing import Literal

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

import conduit as c
from conduit.retry import backoff, retry_flow
from conduit.schema import check_schema, validate

# (name, schema of the one argument "x", a bad value, words the error must hold, a good value)
FAMILIES = [
    ("pattern", {"type": "string", "pattern": "^[a-z]+\\.txt$"}, "../../etc/passwd",
     "$.x: '../../etc/passwd' does not match '^[a-z]+\\.txt$'", "notes.txt"),
    ("minLength", {"type": "string", "minLength": 3}, "ab", "$.x: expected at least 3", "abc"),
    ("maxLength", {"type": "string", "maxLength": 3}, "abcd", "$.x: expected at most 3", "abc"),
    ("minimum", {"type": "integer", "minimum": 1}, 0, "$.x: 0 is less than the minimum 1", 1),
    ("maximum", {"type": "number", "maximum": 1.5}, 2, "$.x: 2 is greater than the maximum", 1.5),
    ("exclusiveMinimum", {"exclusiveMinimum": 0}, 0, "$.x: 0 must be greater than 0", 0.1),
    ("exclusiveMaximum", {"exclusiveMaximum": 10}, 10, "$.x: 10 must be less than 10", 9),
    ("multipleOf", {"type": "integer", "multipleOf": 5}, 7, "$.x: 7 is not a multiple of 5", 10),
    ("enum", {"enum": ["red", "green"]}, "blue", "$.x: 'blue' is not one of", "red"),
    ("const", {"const": "yes"}, "no", "$.x: expected 'yes', got 'no'", "yes"),
    ("type", {"type": "integer"}, "3", "$.x: expected integer, got string '3'", 3),
    ("type list", {"type": ["integer", "null"]}, "3", "$.x: expected integer or null", None),
    ("$ref/$defs", {"$ref": "#/$defs/name"}, "Bob", "$.x: 'Bob' does not match '^[a-z]+$'",
     "bob"),
    ("anyOf", {"anyOf": [{"type": "integer"}, {"type": "boolean"}]}, "x",
     "$.x: 'x' matches none of the allowed schemas", True),
    ("oneOf", {"oneOf": [{"type": "integer"}, {"type": "number"}]}, 2,
     "$.x: 2 matches more than one", 2.5),
    ("allOf", {"allOf": [{"type": "string"}, {"maxLength": 2}]}, "abc", "$.x: expected at most 2",
     "ab"),
    ("not", {"not": {"type": "null"}}, None, "$.x: None must not match", 0),
    ("additionalProperties", {"type": "object", "additionalProperties": False,
                              "properties": {"a": {"type": "integer"}}},
     {"a": 1, "b": 2}, "$.x: unexpected property 'b'", {"a": 1}),
    ("additionalProperties schema", {"type": "object", "additionalProperties": {"type": "string"}},
     {"k": 1}, "$.x.k: expected string, got integer 1", {"k": "v"}),
    ("required", {"type": "object", "required": ["id"]}, {}, "$.x: missing required property 'id'",
     {"id": 1}),
    ("items", {"type": "array", "items": {"type": "string"}}, ["a", 2],
     "$.x[1]: expected string, got integer 2", ["a", "b"]),
    ("prefixItems", {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},
     [1, 2], "$.x[1]: expected string", [1, "b"]),
    ("minItems", {"type": "array", "minItems": 2}, [1], "$.x: expected at least 2 items", [1, 2]),
    ("maxItems", {"type": "array", "maxItems": 1}, [1, 2], "$.x: expected at most 1 items", [1]),
    ("uniqueItems", {"type": "array", "uniqueItems": True}, [1, 1], "$.x: the items must be unique",
     [1, 2]),
    ("nested path", {"type": "array", "items": {"type": "object", "properties": {
        "file name": {"type": "string", "pattern": "^[a-z]+$"}}}},
     [{"file name": "ok"}, {"file name": "../x"}], "$.x[1]['file name']: '../x' does not match",
     [{"file name": "ok"}]),
]  # fmt: skip
IDS = [f[0] for f in FAMILIES]


def parameters(sub):
    return {
        "type": "object",
        "properties": {"x": sub},
        "required": ["x"],
        "additionalProperties": False,
        "$defs": {  # a generated schema's refs point at the root: its $defs go there too
            "name": {"type": "string", "pattern": "^[a-z]+$"},
            **(sub.get("$defs", {}) if isinstance(sub, dict) else {}),
        },
    }


def recording_tool(sub, calls):
    def fn(x):
        calls.append(x)
        return "done"

    return c.tool({"name": "act", "description": "Act.", "parameters": parameters(sub), "fn": fn})


def asking(value):
    return {"tool_calls": [{"id": "t1", "name": "act", "arguments": {"x": value}}]}


# --- tool calls ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "sub", "bad", "words", "good"), FAMILIES, ids=IDS)
def test_a_tool_is_never_called_with_arguments_its_schema_refuses(name, sub, bad, words, good):
    calls = []
    act = recording_tool(sub, calls)
    ctx = c.mock_call(c.request("m", "go", mock=asking(bad)))
    [answer] = c.run_tool_calls(ctx, [act])
    assert answer["is_error"] is True and calls == []
    assert answer["content"].startswith("invalid arguments for act: ")
    assert words in answer["content"]
    ctx = c.mock_call(c.request("m", "go", mock=asking(good)))
    [answer] = c.run_tool_calls(ctx, [act])
    assert not answer.get("is_error") and answer["content"] == "done" and calls == [good]


@pytest.mark.parametrize(("name", "sub", "bad", "words", "good"), FAMILIES[:6], ids=IDS[:6])
async def test_async_tool_runs_refuse_the_same_arguments(name, sub, bad, words, good):
    calls = []
    ctx = c.mock_call(c.request("m", "go", mock=asking(bad)))
    [answer] = await c.arun_tool_calls(ctx, [recording_tool(sub, calls)])
    assert answer["is_error"] is True and words in answer["content"] and calls == []


def test_the_path_traversal_of_the_report_is_refused_in_an_agent_loop():
    opened = []

    def read_file(path: str) -> str:
        opened.append(path)
        return "contents"

    spec = c.tool(
        {
            "name": "read_file",
            "description": "Read a file of the notes folder.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string", "pattern": "^[a-z]+\\.txt$"}},
                "required": ["path"],
            },
            "fn": read_file,
        }
    )
    script = c.mock_script(
        [
            {"tool_calls": [{"id": "1", "name": "read_file", "arguments": {"path": "../../x"}}]},
            {"tool_calls": [{"id": "2", "name": "read_file", "arguments": {"path": "todo.txt"}}]},
            "done",
        ]
    )  # fmt: skip
    ctx = c.agent(c.mock_call, [spec])(c.request("m", "read", mock=script))
    results = [m for m in ctx["messages"] if m["role"] == "tool"]
    assert results[0]["is_error"] and results[0]["content"] == (
        "invalid arguments for read_file: $.path: '../../x' does not match '^[a-z]+\\.txt$'"
    )
    assert opened == ["todo.txt"] and c.content(ctx) == "done"


def test_an_integral_float_is_an_integer_and_reaches_the_function_as_int():
    seen = []

    def count(n: int) -> int:
        seen.append(n)
        return n

    ctx = c.mock_call(c.request("m", "go", mock={"tool_calls": [
        {"id": "1", "name": "count", "arguments": {"n": 2.0}},
        {"id": "2", "name": "count", "arguments": {"n": 2.5}},
    ]}))  # fmt: skip
    first, second = c.run_tool_calls(ctx, [count])
    assert first["content"] == "2" and type(seen[0]) is int and seen == [2]
    assert second["is_error"] and "$.n: expected integer, got number 2.5" in second["content"]


# --- with_schema ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "sub", "bad", "words", "good"), FAMILIES, ids=IDS)
def test_with_schema_sends_a_refused_answer_back_with_the_path(name, sub, bad, words, good):
    script = c.mock_script([json.dumps({"x": bad}), json.dumps({"x": good})])
    ctx = c.mock_call(c.with_schema(parameters(sub))(c.request("m", "answer", mock=script)))
    assert ctx["schema_attempts"] == 2 and c.thaw(ctx["parsed"]) == {"x": good}
    feedback = script.calls[1]["messages"][-1]["content"]
    assert feedback.startswith("Your answer did not match the required JSON schema: ")
    assert words in feedback


@pytest.mark.parametrize(("name", "sub", "bad", "words", "good"), FAMILIES[:3], ids=IDS[:3])
def test_with_schema_gives_up_naming_the_path(name, sub, bad, words, good):
    script = c.mock_script(json.dumps({"x": bad}))
    req = c.with_schema(parameters(sub), max_retries=1)(c.request("m", "answer", mock=script))
    with pytest.raises(c.ValidationError) as caught:
        c.mock_call(req)
    assert words in str(caught.value) and len(script.calls) == 2


def test_format_is_an_annotation_left_unchecked():
    sub = {"type": "string", "format": "email"}
    assert validate(parameters(sub), {"x": "not an address"}) == []
    script = c.mock_script('{"x": "not an address"}')
    ctx = c.mock_call(c.with_schema(parameters(sub))(c.request("m", "a", mock=script)))
    assert ctx["schema_attempts"] == 1


# --- invalid schemas fail when built, as ValidationError -----------------------------------

BAD_SCHEMAS = [
    ({"type": "object", "properties": {"a": {"type": "strng"}}}, "unknown type 'strng'"),
    ({"type": "object", "properties": {"a": {"type": "string", "pattern": "[a-"}}}, "regex"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}, "points at nothing"),
    ({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}, "never"),
    ({"type": "object", "required": "a"}, "schema.required"),
    ({"type": "object", "properties": {"a": {"minLength": -1}}}, "schema.properties.a.minLength"),
]


@pytest.mark.parametrize(("schema", "words"), BAD_SCHEMAS)
def test_an_invalid_schema_is_refused_when_the_tool_or_with_schema_is_built(schema, words):
    spec = {"name": "act", "description": "", "parameters": schema, "fn": print}
    for build in (
        lambda: c.tool(spec),
        lambda: c.with_tools([spec]),
        lambda: c.with_schema(schema),
        lambda: check_schema(schema),
    ):
        with pytest.raises(c.ValidationError) as caught:
            build()
        assert words in str(caught.value) and "invalid JSON Schema" in str(caught.value)


def test_derived_schemas_are_valid_and_a_schema_with_refs_is_accepted():
    def plan(steps: list[tuple[int, str]], mode: Literal["a", "b"] = "a", note: str | None = None):
        return steps

    check_schema(c.tool(plan)["parameters"])
    check_schema(parameters({"$ref": "#/$defs/name"}))


# --- hypothesis: Conduit's verdict is the validator library's ------------------------------

keys = st.sampled_from(["a", "b", "c"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(-3, 3, allow_nan=False).map(lambda f: round(f, 1))
    | st.text("ab.tx", max_size=4)
)
instances = st.recursive(
    scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(keys, kids, max_size=3)
)
types = st.sampled_from(["string", "integer", "number", "boolean", "null", "array", "object"])
small = st.integers(0, 3)


def leaf():
    return st.one_of(
        st.booleans(),
        st.builds(lambda t: {"type": t}, types),
        st.builds(lambda ts: {"type": sorted(set(ts))}, st.lists(types, min_size=1, max_size=3)),
        st.fixed_dictionaries(
            {},
            optional={
                "pattern": st.sampled_from(["^a", "x$", "^[ab]*$", "\\."]),
                "minLength": small,
                "maxLength": small,
            },
        ),
        st.fixed_dictionaries(
            {},
            optional={
                "minimum": st.integers(-2, 2),
                "maximum": st.integers(-2, 2),
                "exclusiveMinimum": st.integers(-2, 2),
                "exclusiveMaximum": st.integers(-2, 2),
                "multipleOf": st.sampled_from([1, 2, 0.5]),
            },
        ),
        st.builds(lambda v: {"enum": v}, st.lists(scalars, min_size=1, max_size=3)),
        st.builds(lambda v: {"const": v}, scalars),
        st.just({"format": "email"}),
    )


def composite(kids, refs=True):
    return st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("object")},
            optional={
                "properties": st.dictionaries(keys, kids, max_size=2),
                "required": st.lists(keys, unique=True, max_size=2),
                "additionalProperties": st.booleans() | kids,
                "minProperties": small,
            },
        ),
        st.fixed_dictionaries(
            {},
            optional={
                "items": kids,
                "prefixItems": st.lists(kids, min_size=1, max_size=2),
                "minItems": small,
                "maxItems": small,
                "uniqueItems": st.booleans(),
            },
        ),
        st.builds(lambda xs: {"anyOf": xs}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda xs: {"oneOf": xs}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda xs: {"allOf": xs}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, kids),
        *([st.just({"$ref": "#/$defs/d"})] if refs else []),
    )


schemas = st.builds(
    lambda body, d: {"$defs": {"d": d}, **body} if isinstance(body, dict) else body,
    st.recursive(leaf(), composite, max_leaves=8),
    st.recursive(leaf(), lambda kids: composite(kids, refs=False), max_leaves=3),
)


@given(schemas, instances)
def test_the_verdict_is_the_validator_librarys(schema, instance):
    expected = Draft202012Validator(schema).is_valid(instance)
    problems = validate(schema, instance)
    assert (problems == []) is expected, problems
    assert all(p.startswith("$") for p in problems)


@given(schemas, instances)
def test_a_tool_runs_exactly_when_the_library_accepts_its_arguments(sub, value):
    calls = []
    ctx = c.mock_call(c.request("m", "go", mock=asking(value)))
    [answer] = c.run_tool_calls(ctx, [recording_tool(sub, calls)])
    assert (calls != []) is Draft202012Validator(parameters(sub)).is_valid({"x": value})
    assert bool(answer.get("is_error")) is (calls == [])


def test_importing_conduit_does_not_import_the_validator():
    code = "import sys, conduit; print('jsonschema' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- retry: any attempt number; Retry-After 0, in the past or too long means backoff -------


@given(st.integers(1, 10**9), st.floats(0, 100), st.floats(0, 1000))
def test_backoff_never_overflows(attempt, initial, cap):
    wait = backoff(attempt, None, initial_delay=initial, max_delay=cap)
    assert 0 <= wait["up_to"] <= cap


def test_a_flow_retries_past_1024_attempts():
    flow = retry_flow(c.request("m", "hi"), max_attempts=1100, initial_delay=0.5, max_delay=8.0)
    sent = next(flow)
    for _ in range(1099):
        sent = flow.throw(c.ServerError("busy", status_code=503))
    assert sent["conduit/sleep"] == {"up_to": 8.0}
    with pytest.raises(c.ServerError):
        flow.throw(c.ServerError("busy", status_code=503))


def http_date(seconds_from_now, now=1_800_000_000.0):
    return email.utils.formatdate(now + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "0"},
        {"retry-after-ms": "0"},
        {"retry-after": http_date(-30), "date": http_date(0)},
        {"retry-after": "61"},
    ],
)
def test_a_retry_after_of_zero_in_the_past_or_too_long_backs_off(headers):
    seconds = c.retry_after(headers)
    flow = retry_flow(c.request("m", "hi"))
    next(flow)
    again = flow.throw(c.ServerError("busy", status_code=503, retry_after=seconds))
    assert again["conduit/sleep"] == {"up_to": 0.5}
    assert backoff(2, seconds) == {"up_to": 1.0}


def test_a_retry_after_zero_waits_in_a_real_run():
    script = c.mock_script(
        "ok", fail_first=2, error=c.ServerError("x", status_code=503, retry_after=0.0)
    )
    policy = c.with_retry(initial_delay=0.05, max_delay=0.05)
    started = time.monotonic()
    ctx = c.mock_call(policy(c.request("m", "hi", mock=script)))
    assert ctx["attempts"] == 3 and time.monotonic() - started < 0.5


RETRY_AFTERS = [None, -5.0, 0.0, 0.001, 1.0, 30.0, 60.0, 60.5, 119.0, 121.0, 500.0]


def sdk_wait(sdk, seconds, attempt, max_retries=5):
    """The SDK's own wait before retry number *attempt*, for a Retry-After of *seconds*."""
    module = pytest.importorskip(sdk)
    models = pytest.importorskip(f"{sdk}._models")
    client = (module.OpenAI if sdk == "openai" else module.Anthropic)(
        api_key="sk-test", max_retries=max_retries
    )
    headers = {} if seconds is None else {"retry-after": str(seconds)}
    options = models.FinalRequestOptions.construct(method="post", url="/x")
    return client._calculate_retry_timeout(
        max_retries - (attempt - 1), options, httpx.Headers(headers)
    )


@pytest.mark.parametrize(("sdk", "cap"), [("openai", 120.0), ("anthropic", math.inf)])
@pytest.mark.parametrize("seconds", RETRY_AFTERS)
@pytest.mark.parametrize("attempt", [1, 3])
def test_the_wait_is_the_sdks_for_the_same_cap(sdk, cap, seconds, attempt):
    ours = backoff(attempt, seconds, max_retry_after=cap)
    theirs = sdk_wait(sdk, seconds, attempt)
    if isinstance(ours, float):  # honoured exactly, as the SDK does
        assert theirs == ours
    else:  # the same step: the SDK takes up to 25 % off it, Conduit draws below it
        assert 0.75 * ours["up_to"] <= theirs <= ours["up_to"]


def test_the_default_cap_honours_exactly_0_to_60_seconds():
    honoured = [s for s in RETRY_AFTERS if isinstance(backoff(1, s), float)]
    assert honoured == [0.001, 1.0, 30.0, 60.0]
    assert backoff(1, math.nan) == backoff(1, math.inf, max_retry_after=math.inf) == {"up_to": 0.5}
