"""One data model in front of every provider: call, stream and dispatch by "provider:model".

Offline by default (the mock provider). With OPENAI_API_KEY, ANTHROPIC_API_KEY, GROQ_API_KEY or
XAI_API_KEY set, the same requests go to that provider; with CONDUIT_OLLAMA=1, to a local Ollama.
"""

import os

from toolz import pipe

import conduit as c

REAL = [
    ("OPENAI_API_KEY", "openai:gpt-4o-mini"),
    ("ANTHROPIC_API_KEY", "anthropic:claude-haiku-4-5"),
    ("GROQ_API_KEY", "groq:llama-3.3-70b-versatile"),
    ("XAI_API_KEY", "grok:grok-3-mini"),
    ("CONDUIT_OLLAMA", "ollama:llama3.2"),
]
WEATHER = {
    "name": "get_weather",
    "description": "Get the weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def main() -> None:
    models = [model for var, model in REAL if os.environ.get(var)] or ["mock:demo"]
    for model in models:
        print(f"== {model}")
        script = c.mock_script(
            [
                "Paris is the capital of France.",
                "Streaming, one token at a time.",
                {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
            ]
        )
        mock = {"mock": script} if model.startswith("mock:") else {}
        req = c.request(model, [c.system("Be brief."), c.user("Capital of France?")], **mock)
        ctx = pipe(req, c.call)
        print("answer:", c.content(ctx), "| tokens:", c.usage(ctx)["total_tokens"])

        print("stream: ", end="")
        for event in c.stream(c.reply(ctx, "Say something about streaming.")):
            if event["type"] == "content_delta":
                print(event["text"], end="", flush=True)
        print()

        tool_req = c.request(
            model,
            "What's the weather in Paris?",
            tools=[WEATHER],
            tool_choice="get_weather",
            **mock,
        )
        for call in c.tool_calls(c.call(tool_req)):
            print("tool call:", call["name"], dict(call["arguments"]))


if __name__ == "__main__":
    main()
