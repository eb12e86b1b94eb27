"""Tools and agents end to end: the mock, and real OpenAI and Anthropic payloads over HTTP."""

import asyncio
import json
import time

import attrs
import httpx
import pytest
import respx
from toolz import pipe

import conduit as c
from tests.providers.helpers import raw

OPENAI = "https://api.openai.com/v1/chat/completions"
ANTHROPIC = "https://api.anthropic.com/v1/messages"


def get_weather(city: str, state: str) -> dict:
    """Get the weather for a city.

    Args:
        city: the city
        state: the state, two letters
    """
    return {"city": city, "state": state, "forecast": "sunny", "temp_f": 68}


def test_openai_agent_loop_on_real_wire_payloads():
    with respx.mock:
        route = respx.post(OPENAI).mock(
            side_effect=[
                httpx.Response(200, content=raw("openai/chat_tool_calls.json")),
                httpx.Response(200, content=raw("openai/chat_text.json")),
            ]
        )
        ctx = c.agent(c.openai_call, [get_weather])(
            c.request("gpt-4o", "What's the weather like in SF?", api_key="sk-test")
        )
    assert ctx["iterations"] == 2 and route.call_count == 2
    assert [t["name"] for t in ctx["tool_calls_made"]] == ["get_weather"]
    first, second = (json.loads(call.request.content) for call in route.calls)
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert first["tools"][0]["function"]["parameters"]["required"] == ["city", "state"]
    assistant, result = second["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == "call_CUdUoJpsWWVdxXntucvnol1M"
    assert result == {
        "role": "tool",
        "tool_call_id": "call_CUdUoJpsWWVdxXntucvnol1M",
        "content": json.dumps(get_weather("San Francisco", "CA")),
    }
    assert c.content(ctx) == "\\(4200 + 42 = 4242\\)."


def test_anthropic_agent_loop_on_real_wire_payloads():
    def weather(location: str, units: str = "f") -> str:
        """Weather at a location."""
        return f"68{units.upper()} and sunny in {location}"

    with respx.mock:
        route = respx.post(ANTHROPIC).mock(
            side_effect=[
                httpx.Response(200, content=raw("anthropic/message_tool_use.json")),
                httpx.Response(200, content=raw("anthropic/message_text.json")),
            ]
        )
        tool = c.tool(weather, name="get_weather")
        ctx = asyncio.run(
            c.aagent(c.anthropic_acall, [tool])(
                c.request("claude-haiku-4-5", "Weather in SF?", api_key="sk-test")
            )
        )
    second = json.loads(route.calls[1].request.content)
    assert second["tools"][0]["input_schema"]["required"] == ["location"]
    use, result = second["messages"][1]["content"][0], second["messages"][2]["content"][0]
    assert use == {
        "type": "tool_use",
        "id": "toolu_01A9HHF5Ezy3oBrKmSgfASm9",
        "name": "get_weather",
        "input": {"location": "San Francisco, CA", "units": "f"},
    }
    assert result == {
        "type": "tool_result",
        "tool_use_id": "toolu_01A9HHF5Ezy3oBrKmSgfASm9",
        "content": "68F and sunny in San Francisco, CA",
    }
    assert c.content(ctx) == "4200 + 42 = 4242" and ctx["iterations"] == 2


def test_unknown_tool_bad_arguments_and_raising_tools_become_recoverable_messages():
    def divide(a: int, b: int) -> float:
        """Divide."""
        return a / b

    script = c.mock_script(
        [
            {
                "tool_calls": [
                    {"id": "1", "name": "nope", "arguments": {}},
                    {"id": "2", "name": "divide", "arguments": {"a": "x", "b": 1}},
                    {"id": "3", "name": "divide", "arguments": {"a": 1, "b": 0}},
                    {"id": "4", "name": "divide", "arguments": {"a": 6, "b": 3}},
                ]
            },
            "recovered",
        ]
    )
    ctx = c.agent(c.mock_call, [divide])(c.request("m", "go", mock=script))
    results = {m["tool_call_id"]: m for m in ctx["messages"] if m["role"] == "tool"}
    assert (
        results["1"]["is_error"]
        and "unknown tool 'nope'; available tools: divide" in results["1"]["content"]
    )
    assert results["2"]["is_error"] and "$.a: expected integer" in results["2"]["content"]
    assert results["3"]["is_error"] and "ZeroDivisionError" in results["3"]["content"]
    assert results["4"]["content"] == "2.0" and not results["4"].get("is_error")
    assert c.content(ctx) == "recovered"
    second_call = script.calls[1]["messages"]
    assert [m["role"] for m in second_call][-4:] == ["tool"] * 4  # the model saw every error


def test_streamed_invalid_json_arguments_are_fed_back():
    events = [
        {"type": "message_start", "model": "m", "id": "x"},
        {"type": "tool_call_start", "index": 0, "id": "t", "name": "divide"},
        {"type": "tool_call_delta", "index": 0, "arguments_delta": '{"a": 1,'},
        {"type": "message_end", "stop_reason": "tool_use", "usage": c.make_usage()},
    ]
    ctx = c.request("m", "x").set("response", c.collect(events))

    def divide(a: int, b: int) -> float:
        return a / b

    [msg] = c.run_tool_calls(ctx, [divide])
    with pytest.raises(c.ValidationError, match=r"give one with c\.tool"):
        c.tool(lambda a: a)
    assert msg["is_error"] and "invalid JSON in tool arguments" in msg["content"]


def test_events_and_history_and_conversation_continues():
    seen = []
    script = c.mock_script(
        [
            {
                "tool_calls": [
                    {"name": "get_weather", "arguments": {"city": "Paris", "state": "FR"}}
                ]
            },
            "Sunny in Paris.",
            "You're welcome.",
        ]
    )
    run = c.agent(c.mock_call, [get_weather], on_event=seen.append)
    ctx = run(c.request("m", "Weather in Paris?", mock=script))
    assert [e["type"] for e in seen] == [
        "model_response",
        "tool_call",
        "tool_result",
        "model_response",
    ]
    assert [m["role"] for m in ctx["messages"]] == ["user", "assistant", "tool"]
    nxt = run(c.reply(ctx, "Thanks!"))
    assert c.content(nxt) == "You're welcome."
    assert [m["role"] for m in nxt["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]


def test_max_iterations_raises_with_the_context_so_far():
    loop = c.mock_script(
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "a", "state": "b"}}]}
    )
    with pytest.raises(c.MaxIterationsError) as exc:
        c.agent(c.mock_call, [get_weather], max_iterations=3)(c.request("m", "go", mock=loop))
    assert exc.value.data["iterations"] == 3
    assert len([m for m in exc.value.ctx["messages"] if m["role"] == "tool"]) == 3
    assert "raise max_iterations" in str(exc.value)
    with pytest.raises(c.ValidationError, match="max_iterations must be a positive number"):
        c.agent(c.mock_call, [], max_iterations=0)


async def test_aagent_runs_one_turns_tools_concurrently():
    async def slow_a() -> str:
        """A."""
        await asyncio.sleep(0.6)
        return "a"

    def slow_b() -> str:
        """B (sync: runs in a worker thread)."""
        time.sleep(0.6)
        return "b"

    script = c.mock_script([{"tool_calls": [{"name": "slow_a"}, {"name": "slow_b"}]}, "both done"])
    start = time.monotonic()
    ctx = await c.aagent(c.mock_acall, [slow_a, slow_b])(c.request("m", "go", mock=script))
    elapsed = time.monotonic() - start
    assert c.content(ctx) == "both done"
    assert elapsed < 1.0  # concurrently: about 0.6 s, not 1.2 s
    assert [m["content"] for m in ctx["messages"] if m["role"] == "tool"] == ["a", "b"]


def test_budget_is_shared_by_agent_steps():
    loop = c.mock_script(
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "a", "state": "b"}}]}
    )
    req = pipe(c.request("m", "go", mock=loop), c.with_budget(max_calls=2))
    with pytest.raises(c.BudgetExceededError):
        c.agent(c.mock_call, [get_weather], max_iterations=10)(req)
    assert len(loop.calls) == 2


def test_streaming_agent_sync_and_async():
    def now() -> str:
        """The time."""
        return "noon"

    make = lambda: c.mock_script([{"tool_calls": [{"name": "now"}]}, "It is noon."])  # noqa: E731
    events = list(c.agent_stream(c.mock_stream, [now])(c.request("m", "time?", mock=make())))
    results = [e for e in events if e["type"] == "tool_result"]
    assert results == [
        {"type": "tool_result", "tool_call_id": "call_0_0", "content": "noon", "is_error": False}
    ]
    assert "".join(e["text"] for e in events if e["type"] == "content_delta") == "It is noon."

    async def consume():
        run = c.aagent_stream(c.mock_astream, [now])
        return [e async for e in run(c.request("m", "time?", mock=make()))]

    assert asyncio.run(consume()) == events


# --- structured output ---------------------------------------------------------------------


@attrs.frozen
class City:
    name: str
    population: int


def test_structured_output_recovers_from_an_invalid_first_answer():
    script = c.mock_script(
        [
            'Sure: {"name": "Paris", "population": "lots"}',
            '```json\n{"name": "Paris", "population": 2100000}\n```',
        ]
    )
    ctx = c.mock_call(c.with_schema(City)(c.request("m", "Largest French city?", mock=script)))
    assert ctx["parsed"] == City("Paris", 2100000) and ctx["schema_attempts"] == 2
    feedback = script.calls[1]["messages"][-1]["content"]
    assert "$.population: expected integer" in feedback
    fmt = script.calls[0]["options"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "City"


def test_structured_output_gives_up_with_the_problems():
    script = c.mock_script("no json, sorry")
    with pytest.raises(c.ValidationError, match="after 2 tries: the answer holds no JSON"):
        c.mock_call(c.with_schema(City, max_retries=1)(c.request("m", "x", mock=script)))


def test_structured_output_over_openai_sends_the_native_format():
    body = json.loads(raw("openai/chat_text.json"))
    body["choices"][0]["message"]["content"] = '{"name": "Paris", "population": 2100000}'
    with respx.mock:
        route = respx.post(OPENAI).mock(return_value=httpx.Response(200, json=body))
        ctx = c.openai_call(c.with_schema(City)(c.request("gpt-4o", "city?", api_key="sk-t")))
    sent = json.loads(route.calls.last.request.content)
    assert sent["response_format"]["json_schema"]["schema"]["required"] == ["name", "population"]
    assert ctx["parsed"] == City("Paris", 2100000)


def test_extract_and_classify():
    person = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["name", "year"],
    }
    got = c.extract(
        c.mock_call, "Ada Lovelace, 1843.", person, mock='{"name": "Ada", "year": 1843}'
    )
    assert got == {"name": "Ada", "year": 1843}
    assert c.classify(c.mock_call, "meh", ["good", "bad"], mock='{"label": "bad"}') == "bad"
    with pytest.raises(c.ValidationError, match="at least two labels"):
        c.classify(c.mock_call, "x", "good")
    with pytest.raises(c.ValidationError, match="a schema is an attrs class"):
        c.with_schema(42)


def test_structured_output_over_anthropic_uses_a_forced_tool_and_recovers():
    def tool_use(value):
        return {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "City", "input": value}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "output_tokens": 5},
        }

    with respx.mock:
        route = respx.post(ANTHROPIC).mock(
            side_effect=[
                httpx.Response(200, json=tool_use({"name": "Paris"})),
                httpx.Response(200, json=tool_use({"name": "Paris", "population": 2100000})),
            ]
        )
        ctx = c.anthropic_call(
            c.with_schema(City)(c.request("claude-haiku-4-5", "city?", api_key="sk-t"))
        )
    first, second = (json.loads(call.request.content) for call in route.calls)
    assert first["tool_choice"] == {"type": "tool", "name": "City"}
    assert first["tools"][-1]["input_schema"]["required"] == ["name", "population"]
    answer = second["messages"][-1]["content"][0]
    assert answer["type"] == "tool_result" and answer["tool_use_id"] == "toolu_1"
    assert (
        answer["is_error"] is True and "missing required property 'population'" in answer["content"]
    )
    assert ctx["parsed"] == City("Paris", 2100000) and ctx["schema_attempts"] == 2


def test_an_agent_runs_its_tools_before_the_schema_answer():
    """A turn that calls the caller's tools is not a wrong answer to re-ask: with_schema lets
    it through, the agent runs the tool, and the answer after it is parsed."""
    ran = []

    def weather(city: str) -> str:
        """The weather in a city."""
        ran.append(city)
        return "21C"

    schema = {"type": "object", "properties": {"temp": {"type": "number"}}, "required": ["temp"]}
    script = c.mock_script(
        [{"tool_calls": [{"name": "weather", "arguments": {"city": "Paris"}}]}, '{"temp": 21}']
    )
    req = pipe(c.request("m", "Temperature in Paris?", mock=script), c.with_schema(schema))
    ctx = c.agent(c.mock_call, [weather])(req)
    assert ran == ["Paris"] and ctx["parsed"] == {"temp": 21} and ctx["iterations"] == 2
    assert [m["role"] for m in script.calls[1]["messages"]] == ["user", "assistant", "tool"]


def test_a_wrong_answer_beside_another_tool_call_is_re_asked_with_a_result_for_each():
    """With tool_choice any, a model may call a tool and the answer tool in one turn: when
    the answer is wrong, the re-ask gives every call of that turn a result (a tool call left
    without one is a 400 on Anthropic), and a right answer ends the turn."""
    schema = {
        "title": "city",
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
    }
    both = [
        {"name": "weather", "arguments": {"city": "Paris"}, "id": "call_w"},
        {"name": "city", "arguments": {"nom": "Paris"}, "id": "call_a"},
    ]
    script = c.mock_script(
        [{"tool_calls": both}, {"tool_calls": [{"name": "city", "arguments": {"name": "Paris"}}]}]
    )
    ctx = c.mock_call(c.with_schema(schema)(c.request("m", "Which city?", mock=script)))
    assert ctx["parsed"] == {"name": "Paris"} and ctx["schema_attempts"] == 2
    assert not c.tool_calls(ctx) and ctx["response"]["stop_reason"] == "end_turn"
    answered = [m for m in script.calls[1]["messages"] if m["role"] == "tool"]
    assert sorted(m["tool_call_id"] for m in answered) == ["call_a", "call_w"]
    assert all(m.get("is_error") for m in answered)


def test_an_agents_cost_is_every_model_call_it_made():
    """with_cost prices each model call; the agent's context totals them (it held the last
    call's only), streamed or not."""

    def add(a: int, b: int) -> int:
        "Add."
        return a + b

    usage = {"input_tokens": 1_000_000, "output_tokens": 0, "total_tokens": 1_000_000}
    replies = [
        {"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}], "usage": usage},
        {"content": "5", "usage": usage},
    ]
    priced = c.with_cost(prices={"m": {"input": 1.0, "output": 1.0}})
    ctx = c.agent(c.mock_call, [add])(priced(c.request("m", "2+3?", mock=c.mock_script(replies))))
    assert ctx["iterations"] == 2 and ctx["cost"] == pytest.approx(2.0)
    stream = c.agent_stream(c.mock_stream, [add])(
        priced(c.request("m", "2+3?", mock=c.mock_script(replies)))
    )
    list(stream)
    assert stream.ctx["cost"] == pytest.approx(2.0)
    unpriced = c.with_cost(prices={"other": {"input": 1.0, "output": 1.0}})
    ctx = c.agent(c.mock_call, [add])(unpriced(c.request("m", "2+3?", mock=c.mock_script(replies))))
    assert ctx["cost"] is None  # one call without a price: the total is unknown, not too low
