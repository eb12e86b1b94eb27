"""Pydantic models where users reach for them first: with_schema and tools (issue 17).

Duck-typed: Conduit never imports pydantic; these tests need it installed (a dev dependency)."""

import json

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conduit as c
from conduit._data import thaw
from conduit.schema import convert, is_pydantic, schema_of, validate


class Address(pydantic.BaseModel):
    city: str
    postcode: str | None = None


class Person(pydantic.BaseModel):
    """Someone mentioned in the text."""

    name: str
    age: int = pydantic.Field(ge=0, description="in years")
    homes: list[Address] = []


def test_with_schema_returns_a_model_instance_and_re_asks_on_invalid_answers():
    script = c.mock_script(
        ['{"name": "Ada", "age": -3}', '{"name": "Ada", "age": 36, "homes": [{"city": "London"}]}']
    )
    ctx = c.mock_call(c.with_schema(Person)(c.request("m", "Who?", mock=script)))
    assert ctx["parsed"] == Person(name="Ada", age=36, homes=[Address(city="London")])
    assert isinstance(ctx["parsed"], Person) and ctx["schema_attempts"] == 2
    sent = script.calls[0]["options"]["response_format"]["json_schema"]
    assert sent["name"] == "Person" and "$defs" not in json.dumps(thaw(sent["schema"]))
    feedback = c.content(script.calls[1]["messages"][-1])
    assert "age" in feedback and "0" in feedback  # the model was told what was wrong


def test_extract_takes_a_pydantic_model():
    got = c.extract(c.mock_call, "Ada, 36", Person, mock='{"name": "Ada", "age": 36}')
    assert got == Person(name="Ada", age=36)


def test_a_tool_taking_a_model_gets_an_instance_and_its_result_is_json():
    seen = []

    @c.tool
    def register(person: Person, notify: bool = False) -> Person:
        """Register someone."""
        seen.append(person)
        return person

    params = register["parameters"]
    assert params["properties"]["person"]["properties"]["homes"]["items"]["properties"]["city"]
    call = c.make_tool_call("t1", "register", {"person": {"name": "Bo", "age": 5}})
    ctx = c.request("m", "hi").set("response", c.make_response(tool_calls=[call]))
    results = c.run_tool_calls(ctx, [register])
    assert seen == [Person(name="Bo", age=5)]
    assert json.loads(c.content(results[0])) == {"name": "Bo", "age": 5, "homes": []}
    bad = c.make_tool_call("t2", "register", {"person": {"name": "Bo", "age": -1}})
    ctx = ctx.set("response", c.make_response(tool_calls=[bad]))
    (result,) = c.run_tool_calls(ctx, [register])
    assert result["is_error"] and "age" in c.content(result)


def test_a_recursive_model_is_refused_with_what_to_do():
    class Node(pydantic.BaseModel):
        value: int
        children: list["Node"] = []

    with pytest.raises(TypeError, match="recursive pydantic model Node"):
        schema_of(Node)


def test_duck_typing_needs_both_methods():
    class Lookalike:
        @classmethod
        def model_json_schema(cls):
            return {}

    assert is_pydantic(Person) and not is_pydantic(Lookalike)
    assert not is_pydantic(Person(name="a", age=1))  # an instance is not a model class


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=20), st.integers(min_value=0, max_value=200))
def test_convert_round_trips_what_the_model_dumps(name, age):
    person = Person(name=name, age=age, homes=[Address(city=name)])
    dumped = person.model_dump(mode="json")
    assert convert(Person, dumped) == person
    assert validate(schema_of(Person), dumped) == []
    assert dumped == person.model_dump(mode="json")  # nothing mutated its input
