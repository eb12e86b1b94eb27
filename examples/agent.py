"""An agent with tools: the model asks for tools, Conduit runs them, until the model answers.

Offline by default (the mock plays the model). With OPENAI_API_KEY set it runs on gpt-4o-mini;
with ANTHROPIC_API_KEY, on Claude.
"""

import asyncio
import os
from typing import Literal

import conduit as c


def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
    """Get the current weather for a city.

    Args:
        city: the city name, e.g. Paris
        unit: the temperature unit
    """
    temps = {"paris": 18, "rome": 24}
    temp = temps.get(city.lower(), 20)
    return {"city": city, "temp": temp if unit == "celsius" else temp * 9 / 5 + 32, "unit": unit}


async def get_population(city: str) -> int:
    """Get the population of a city."""
    await asyncio.sleep(0.1)
    return {"paris": 2_100_000, "rome": 2_800_000}.get(city.lower(), 0)


def model() -> tuple[str, dict, object]:
    if os.environ.get("OPENAI_API_KEY"):
        return "gpt-4o-mini", {}, c.openai_acall
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "claude-haiku-4-5", {}, c.anthropic_acall
    script = c.mock_script(
        [
            {
                "tool_calls": [
                    {"name": "get_weather", "arguments": {"city": "Paris"}},
                    {"name": "get_population", "arguments": {"city": "Paris"}},
                ]
            },
            lambda req: (
                "Paris: " + ", ".join(m["content"] for m in req["messages"] if m["role"] == "tool")
            ),
        ]
    )
    return "mock-model", {"mock": script}, c.mock_acall


def main() -> None:
    name, extra, acall = model()
    tools = [c.tool(get_weather), c.tool(get_population)]

    def show(event):
        if event["type"] == "tool_call":
            print("  calls", event["tool_call"]["name"], dict(event["tool_call"]["arguments"]))
        elif event["type"] == "tool_result":
            print("  got  ", event["content"])

    req = c.request(name, "What's the weather and population of Paris?", **extra)
    ctx = asyncio.run(c.aagent(acall, tools, on_event=show)(req))  # one turn's tools run together
    print("answer:", c.content(ctx))
    print("model calls:", ctx["iterations"], "| tool calls:", len(ctx["tool_calls_made"]))
    print("history:", [m["role"] for m in ctx["messages"]])


if __name__ == "__main__":
    main()
