"""Structured output: answers as attrs instances, validated, with a retry on invalid output.

Offline by default (the mock's first answer is invalid, to show the recovery). With
OPENAI_API_KEY set it runs on gpt-4o-mini.
"""

import os

import attrs

import conduit as c


@attrs.frozen
class City:
    """A city.

    Attributes:
        name: the city's name
        country: the country it is in
        population: how many people live there
    """

    name: str
    country: str
    population: int


def main() -> None:
    live = bool(os.environ.get("OPENAI_API_KEY"))
    script = c.mock_script(
        [
            '{"name": "Paris", "country": "France"}',  # missing population: fed back, then fixed
            '{"name": "Paris", "country": "France", "population": 2100000}',
        ]
    )
    extra = {} if live else {"mock": script}
    call = c.openai_call if live else c.mock_call

    ctx = call(c.with_schema(City)(c.request("gpt-4o-mini", "The capital of France?", **extra)))
    print("parsed:", ctx["parsed"], "| tries:", ctx["schema_attempts"])

    labels = ["question", "complaint", "praise"]
    label = c.classify(
        call,
        "Your app crashed twice today.",
        labels,
        **({} if live else {"mock": '{"label": "complaint"}'}),
    )
    print("label:", label)
    person = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
        "required": ["name", "born"],
    }
    print(
        "extracted:",
        dict(
            c.extract(
                call,
                "Ada Lovelace was born in 1815.",
                person,
                **({} if live else {"mock": '{"name": "Ada Lovelace", "born": 1815}'}),
            )
        ),
    )


if __name__ == "__main__":
    main()
