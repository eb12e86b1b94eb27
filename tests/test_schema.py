"""Schema derivation for every supported type, docstring styles, validation and conversion."""

import dataclasses
import enum
from typing import Annotated, Literal, Optional, TypedDict, Union

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import conduit as c
from conduit.schema import convert, parse_docstring, schema_of, validate


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@attrs.frozen
class Point:
    """A point.

    Attributes:
        x: across
        y: up
    """

    x: int
    y: int = 0


@dataclasses.dataclass(frozen=True)
class Place:
    name: str
    where: Point
    tags: tuple[str, ...] = ()


class Reading(TypedDict):
    place: Place
    unit: Unit
    value: float


@pytest.mark.parametrize(
    ("tp", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (type(None), {"type": "null"}),
        (list[str], {"type": "array", "items": {"type": "string"}}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (Literal[1, "x"], {"enum": [1, "x"]}),
        (Unit, {"type": "string", "enum": ["celsius", "fahrenheit"], "title": "Unit"}),
        (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),  # noqa: UP045
        (Union[int, str], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),  # noqa: UP007
        (str | None, {"anyOf": [{"type": "string"}, {"type": "null"}]}),
        (Annotated[str, "a city"], {"type": "string", "description": "a city"}),
    ],
)
def test_schema_of_each_type(tp, expected):
    assert schema_of(tp) == expected


def test_nested_attrs_dataclass_and_typeddict():
    schema = schema_of(Reading)
    assert schema["required"] == ["place", "unit", "value"]
    place = schema["properties"]["place"]
    assert place["title"] == "Place" and place["required"] == ["name", "where"]
    assert place["properties"]["tags"]["default"] == []
    point = place["properties"]["where"]
    assert point["properties"]["x"] == {"type": "integer", "description": "across"}
    assert point["properties"]["y"]["default"] == 0 and point["required"] == ["x"]
    assert point["description"] == "A point."
    assert schema["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]


def test_unsupported_types_say_what_is_supported():
    with pytest.raises(TypeError, match="cannot derive a JSON Schema"):
        schema_of(complex)


def test_tool_from_function_with_defaults_and_nested_types():
    @c.tool
    def log_reading(reading: Reading, note: str | None = None, urgent: bool = False) -> str:
        """Store a reading.

        Args:
            reading: what was measured
            note (str): free text
        """
        return "ok"

    params = c.thaw(log_reading["parameters"])
    assert params["required"] == ["reading"]
    assert params["properties"]["urgent"] == {"type": "boolean", "default": False}
    assert params["properties"]["note"]["description"] == "free text"
    assert params["properties"]["reading"]["description"] == "what was measured"
    assert params["additionalProperties"] is False


@pytest.mark.parametrize(
    "doc",
    [
        """Look up a city.

        Args:
            city (str): the city name,
                with its country
            days: how many days
        """,
        """Look up a city.

        Parameters
        ----------
        city : str
            the city name,
            with its country
        days : int
            how many days

        Returns
        -------
        str
        """,
        """Look up a city.

        :param city: the city name,
            with its country
        :param int days: how many days
        :returns: the forecast
        """,
    ],
    ids=["google", "numpy", "rest"],
)
def test_docstring_styles(doc):
    parsed = parse_docstring(doc)
    assert parsed["summary"] == "Look up a city."
    assert parsed["params"] == {"city": "the city name, with its country", "days": "how many days"}


def test_async_tools_are_tools_too():
    @c.tool(name="fetch", description="Fetch a page.")
    async def fetch_page(url: str) -> str:
        return url

    assert (fetch_page["name"], fetch_page["description"]) == ("fetch", "Fetch a page.")
    assert c.thaw(fetch_page["parameters"])["required"] == ["url"]


# --- hypothesis: values of a type validate against its schema and convert back to equal values

points = st.builds(Point, st.integers(), st.integers())
places = st.builds(
    Place, st.text(max_size=8), points, st.lists(st.text(max_size=4), max_size=3).map(tuple)
)
readings = st.fixed_dictionaries(
    {
        "place": places,
        "unit": st.sampled_from(Unit),
        "value": st.floats(allow_nan=False, allow_infinity=False),
    }
)


def to_json(value):
    if isinstance(value, enum.Enum):
        return value.value
    if attrs.has(type(value)):
        return {k: to_json(v) for k, v in attrs.asdict(value, recurse=False).items()}
    if dataclasses.is_dataclass(value):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    return value


@given(readings)
def test_values_validate_and_round_trip_through_json(reading):
    data = to_json(reading)
    assert validate(schema_of(Reading), data) == []
    assert convert(Reading, data) == reading


@given(st.one_of(st.integers(), st.text(), st.none(), st.booleans()))
def test_wrong_values_are_rejected_with_a_path(value):
    problems = validate(schema_of(Point), {"x": value, "y": 1})
    if isinstance(value, int) and not isinstance(value, bool):
        assert problems == []
    else:
        assert problems and problems[0].startswith("$.x: expected integer")


def test_validation_messages():
    schema = schema_of(Place)
    assert validate(schema, {"name": "x"}) == ["$: missing required property 'where'"]
    assert validate(schema, {"name": "x", "where": {"x": 1}, "extra": 1}) == [
        "$: unexpected property 'extra'"
    ]
    assert validate(schema_of(tuple[int, int]), [1]) == ["$: expected at least 2 items"]
    assert validate(schema_of(Literal["a"]), "b") == ["$: 'b' is not one of ['a']"]
    assert "matches none" in validate(schema_of(int | None), "x")[0]
