"""One conversation, every provider's wire: what Conduit would send to each, offline.

`c.wire(req)` returns the URL and JSON body a call would send, without sending it or
reading a key. The same request (a system prompt, a tool, a question) is written for each
provider in the registry: chat completions, Anthropic's Messages, the Responses API, Gemini's
generateContent, Bedrock's Converse. Then the same conversation runs, offline, through a
fallback chain across providers with the mock standing in for the network.
"""

import json

from toolz import pipe

import conduit as c

WEATHER = {
    "name": "get_weather",
    "description": "Get the weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
MODELS = [
    "openai:gpt-4o-mini",
    "anthropic:claude-haiku-4-5",
    "responses:gpt-5-mini",
    "gemini:gemini-2.5-flash",
    "bedrock:us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "azure:my-gpt-4o-deployment",
    "mistral:mistral-small-latest",
    "deepseek:deepseek-chat",
    "openrouter:anthropic/claude-sonnet-4.5",
    "groq:llama-3.3-70b-versatile",
    "ollama:llama3.2",
]


def shape(body: dict) -> str:
    """The body's top-level keys and where the question went, in one line."""
    text = json.dumps(body)
    where = "question in body" if "Weather in Oslo?" in text else "question missing!"
    return f"{', '.join(body)}  ({where}, {len(text)} bytes)"


def main() -> None:
    conversation = [c.system("Answer briefly."), c.user("Weather in Oslo?")]
    for model in MODELS:
        req = c.request(
            model,
            conversation,
            tools=[WEATHER],
            max_tokens=200,
            base_url="https://my-resource.openai.azure.com" if model.startswith("azure") else None,
            region="eu-west-1" if model.startswith("bedrock") else None,
        )
        sent = c.wire(req)
        print(f"{sent['provider']:<11} POST {sent['url']}")
        print(f"{'':<11} {shape(sent['body'])}")

    print(
        "\nThe same conversation through a fallback chain (offline: the mock plays each service):"
    )

    def service(req):  # the primary is down; the backup answers with a tool call, then text
        if req["model"] == "primary":
            return c.ServerError("503: primary is overloaded")
        if req["messages"][-1]["role"] == "tool":
            return "It is 4 °C and clear in Oslo."
        return {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"{city}: 4 °C, clear"

    ask = c.agent(c.call, [c.tool(get_weather)])
    req = c.request("mock:primary", conversation, mock=service)
    ctx = ask(pipe(req, c.with_fallback(["mock:backup"]), c.with_retry(initial_delay=0.001)))
    print(f"answer: {c.content(ctx)}")
    print(f"model calls: {ctx['iterations']}, tool calls: {len(ctx['tool_calls_made'])}")


if __name__ == "__main__":
    main()
