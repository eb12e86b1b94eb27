"""Reasoning models: thinking blocks that go back with tool results, reasoning tokens, refusals.

Runs offline: the mock plays a Claude model with extended thinking, and the pure Anthropic
codec shows the body each model call would send. See docs/reasoning.md for live calls.
"""

import attrs
from toolz import pipe

import conduit as c
from conduit.providers import anthropic, openai


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: the city name, e.g. Paris
    """
    return "18 C, clear"


@attrs.frozen
class City:
    name: str
    population: int


def thoughts(response) -> list[str]:
    """The reasoning texts of a response (its content is text when there are none)."""
    blocks = () if isinstance(response["content"], str) else response["content"]
    return [b["text"] for b in blocks if b["type"] == "reasoning"]


def thinking_agent() -> None:
    signed = {
        "type": "reasoning",
        "text": "The user wants the weather in Paris: call get_weather.",
        "signature": "EqQBCkYIARgCKkA",  # Anthropic's signature, kept exactly as received
    }
    script = c.mock_script(
        [
            {
                "content": [signed],
                "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
                "usage": c.make_usage(420, 96, reasoning_tokens=64),
            },
            "It is 18 C and clear in Paris.",
        ]
    )
    req = c.request(
        "claude-sonnet-4-5",
        "What's the weather in Paris?",
        mock=script,
        thinking={"type": "enabled", "budget_tokens": 2048},
    )
    events = []
    ctx = c.agent(c.mock_call, [get_weather], on_event=events.append)(req)
    first = next(e["response"] for e in events if e["type"] == "model_response")
    print("thinking:", thoughts(first))
    used = first["usage"]
    print("reasoning tokens:", used["reasoning_tokens"], "of", used["output_tokens"], "output")
    print("answer:", c.content(ctx))

    body = anthropic.encode_chat(script.calls[1])  # what the second model call sends
    print("the second request's messages, as Anthropic receives them:")
    for msg in body["messages"]:
        parts = msg["content"]  # a lone text is sent as a string
        types = ["text"] if isinstance(parts, str) else [b["type"] for b in parts]
        print(f"  {msg['role']:<9}", types)
    print("signature sent back:", body["messages"][1]["content"][0]["signature"])
    print("max_tokens:", body["max_tokens"], "(4096 plus the thinking budget)")

    same_turn = openai.encode_chat(script.calls[1], provider="openai")["messages"][1]
    print("to OpenAI the turn carries:", sorted(same_turn))


def refusal() -> None:
    script = c.mock_script({"refusal": "I can't help with that."})
    try:
        pipe(c.request("gpt-4o", "...", mock=script), c.with_schema(City), c.mock_call)
    except c.ValidationError as err:
        print("refused:", err.data["refusal"], "| model calls:", len(script.calls))


def reasoning_tokens() -> None:
    body = {  # an OpenAI gpt-5 answer: no reasoning text, only its token count
        "id": "chatcmpl-1",
        "model": "gpt-5-2025-08-07",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "4242"},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 15,
            "completion_tokens": 75,
            "total_tokens": 90,
            "completion_tokens_details": {"reasoning_tokens": 64},
        },
    }
    ctx = openai.decode_chat(c.request("gpt-5", "Repeat 42 twice."), body)
    print("gpt-5:", c.content(ctx), "| usage:", dict(sorted(c.usage(ctx).items())))
    wire = openai.encode_chat(c.request("gpt-5", "hi", max_tokens=500), provider="openai")
    print("gpt-5 gets:", sorted(k for k in wire if k != "messages"))


def main() -> None:
    thinking_agent()
    reasoning_tokens()
    refusal()


if __name__ == "__main__":
    main()
