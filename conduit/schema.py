"""JSON Schema from Python types, full JSON Schema validation, and conversion back to types.

Pure functions. Types: ``str``, ``int``, ``float``, ``bool``, ``None``, lists, tuples, dicts,
``Literal``, ``Enum``, ``Optional`` and unions, ``Annotated[T, "description"]``, attrs
classes, dataclasses and ``TypedDict`` (nested freely).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import attrs

__all__ = [
    "check_schema",
    "convert",
    "describe",
    "is_pydantic",
    "is_strict_schema",
    "parse_docstring",
    "schema_of",
    "validate",
]

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    None: {"type": "null"},
}
_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def _is_factory(default: Any) -> bool:
    return type(default).__name__ == "Factory"  # attrs.Factory, which mypy sees as a function


def is_pydantic(tp: Any) -> bool:
    """Whether *tp* is a pydantic (v2) model class, duck-typed: pydantic is never imported.

    >>> is_pydantic(int), is_pydantic(dict)
    (False, False)
    """
    return (
        isinstance(tp, type)
        and callable(getattr(tp, "model_json_schema", None))
        and callable(getattr(tp, "model_validate", None))
    )


def _is_record(tp: Any) -> bool:
    """An attrs class, a dataclass, a TypedDict or a pydantic model: a type with named fields."""
    return isinstance(tp, type) and (
        attrs.has(tp) or dataclasses.is_dataclass(tp) or _is_typeddict(tp) or is_pydantic(tp)
    )


def _pydantic_schema(tp: Any) -> dict[str, Any]:
    """The model's own JSON Schema (``model_json_schema``), its ``$defs`` inlined so that it can
    sit anywhere inside another schema (a tool's parameters, a list's items)."""
    schema = tp.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref[len("#/$defs/") :]
                if name in seen:
                    raise TypeError(
                        f"cannot use the recursive pydantic model {tp.__name__} ({name} refers "
                        "to itself): give a JSON Schema dict with $defs instead"
                    )
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return {**inline(defs[name], (*seen, name)), **rest}
            return {k: inline(v, seen) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v, seen) for v in node]
        return node

    return inline(schema, ())  # type: ignore[no-any-return]


def _fields(tp: Any) -> list[tuple[str, Any, bool, Any]]:
    """Return (name, type, required, default) for an attrs class, dataclass or TypedDict."""
    hints = get_type_hints(tp, include_extras=True)
    if attrs.has(tp):
        return [
            (
                f.name,
                hints.get(f.name, Any),
                f.default is attrs.NOTHING,
                None if f.default is attrs.NOTHING or _is_factory(f.default) else f.default,
            )
            for f in attrs.fields(tp)
        ]
    if dataclasses.is_dataclass(tp):
        out = []
        for f in dataclasses.fields(tp):
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            default = None if f.default is dataclasses.MISSING else f.default
            out.append((f.name, hints.get(f.name, Any), required, default))
        return out
    return [(name, hints[name], name in tp.__required_keys__, None) for name in hints]


def _object_schema(tp: Any) -> dict[str, Any]:
    doc = parse_docstring(tp.__doc__ or "")
    properties: dict[str, Any] = {}
    required = []
    for name, hint, is_required, default in _fields(tp):
        prop = schema_of(hint)
        if name in doc["params"]:
            prop = {**prop, "description": doc["params"][name]}
        if not is_required and default is not None and _jsonable(default):
            prop = {**prop, "default": _plain(default)}
        properties[name] = prop
        if is_required:
            required.append(name)
    out: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    out["additionalProperties"] = False
    if doc["summary"] and not _is_typeddict(tp):
        out["description"] = doc["summary"]
    out["title"] = tp.__name__
    return out


def _plain(value: Any) -> Any:
    """A default as JSON: enums by value, tuples as lists."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _jsonable(value: Any) -> bool:
    return isinstance(_plain(value), str | int | float | bool | type(None) | list | dict | tuple)


def schema_of(tp: Any) -> dict[str, Any]:
    """Return the JSON Schema of the type *tp*.

    >>> schema_of(list[int])
    {'type': 'array', 'items': {'type': 'integer'}}
    >>> schema_of(Literal["a", "b"])
    {'type': 'string', 'enum': ['a', 'b']}
    >>> schema_of(int | None)
    {'anyOf': [{'type': 'integer'}, {'type': 'null'}]}
    """
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    if tp is Any or tp is object:
        return {}
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is typing.Annotated:
        base = schema_of(args[0])
        notes = [a for a in args[1:] if isinstance(a, str)]
        return {**base, "description": notes[0]} if notes else base
    if origin is Literal:
        kinds = {type(a) for a in args}
        out: dict[str, Any] = {"enum": list(args)}
        if len(kinds) == 1 and next(iter(kinds)) in _JSON_TYPES:
            out = {"type": _JSON_TYPES[next(iter(kinds))], **out}
        return out
    if origin in (Union, types.UnionType):
        return {"anyOf": [schema_of(a) for a in args]}
    if origin in (list, set, frozenset) or origin is Sequence or tp in (list, set):
        return {"type": "array", "items": schema_of(args[0]) if args else {}}
    if origin is tuple or tp is tuple:
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return {"type": "array", "items": schema_of(args[0]) if args else {}}
        return {
            "type": "array",
            "prefixItems": [schema_of(a) for a in args],
            "minItems": len(args),
            "maxItems": len(args),
        }
    if origin in (dict, Mapping) or tp is dict:
        value = schema_of(args[1]) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": value}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [m.value for m in tp]
        kinds = {type(v) for v in values}
        out = {"enum": values, "title": tp.__name__}
        if len(kinds) == 1 and next(iter(kinds)) in _JSON_TYPES:
            out = {"type": _JSON_TYPES[next(iter(kinds))], **out}
        return out
    if is_pydantic(tp):
        return _pydantic_schema(tp)
    if isinstance(tp, type) and (
        attrs.has(tp) or dataclasses.is_dataclass(tp) or _is_typeddict(tp)
    ):
        return _object_schema(tp)
    raise TypeError(
        f"cannot derive a JSON Schema for {tp!r}: use str, int, float, bool, None, lists, tuples, "
        "dicts, Literal, Enum, unions, attrs classes, dataclasses, TypedDicts or pydantic models"
    )


_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Attributes)\s*:\s*$")
_NUMPY = re.compile(r"^\s*(Parameters|Attributes)\s*\n\s*-{3,}\s*$", re.MULTILINE)
_REST = re.compile(r":param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*?)(?=\n\s*:|\Z)", re.DOTALL)


def parse_docstring(doc: str) -> dict[str, Any]:
    """Return ``{"summary": str, "params": {name: description}}`` from a Google, NumPy or reST
    docstring.

    >>> parse_docstring('''Add numbers.
    ...
    ... Args:
    ...     a (int): the first
    ...     b: the second,
    ...         continued
    ... ''')["params"]
    {'a': 'the first', 'b': 'the second, continued'}
    >>> parse_docstring(":param x: the x value\\n:returns: y")["params"]
    {'x': 'the x value'}
    """
    text = inspect.cleandoc(doc or "")
    summary = text.split("\n\n", 1)[0].strip().replace("\n", " ")
    if summary.startswith((":param", "Args:", "Parameters")):
        summary = ""
    params: dict[str, str] = {}
    if ":param" in text:
        for name, desc in _REST.findall(text):
            params[name] = " ".join(desc.split())
        return {"summary": summary, "params": params}
    lines = text.splitlines()
    numpy = _NUMPY.search(text)
    if numpy:
        body = text[numpy.end() :].splitlines()
        current = None
        for i, line in enumerate(body):
            following = body[i + 1] if i + 1 < len(body) else ""
            if not line.strip():
                continue
            if re.match(r"^\s*-{3,}\s*$", following):
                break  # the next section's title
            if not line[0].isspace():
                current = line.split(":")[0].strip()
                params[current] = ""
            elif current:
                params[current] = (params[current] + " " + line.strip()).strip()
        return {"summary": summary, "params": params}
    in_section = False
    current = None
    indent = None
    for line in lines:
        if _SECTION.match(line):
            in_section, current, indent = True, None, None
            continue
        if not in_section:
            continue
        if not line.strip():
            continue
        width = len(line) - len(line.lstrip())
        if indent is None:
            indent = width
        if width < indent or (width == 0 and line.rstrip().endswith(":")):
            in_section = False
            continue
        if width == indent:
            head, _, desc = line.strip().partition(":")
            current = head.split("(")[0].strip()
            params[current] = desc.strip()
        elif current:
            params[current] = (params[current] + " " + line.strip()).strip()
    return {"summary": summary, "params": params}


def describe(fn: Any) -> tuple[str, dict[str, str]]:
    """Return (summary, parameter descriptions) from *fn*'s docstring."""
    parsed = parse_docstring(getattr(fn, "__doc__", "") or "")
    return parsed["summary"], parsed["params"]


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_JSON_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    type(None): "null",
    list: "array",
    tuple: "array",
    dict: "object",
}
_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")
_MAX_PROBLEMS = 20
_COMPILED_BY_ID: dict[int, tuple[Any, Any]] = {}  # id(frozen schema) -> (schema, validator)


def validate(schema: Any, value: Any, path: str = "$") -> list[str]:
    """Return what is wrong with the JSON *value* against the JSON Schema *schema* (empty when
    valid): one line per problem, each naming the path of the bad value.

    Full JSON Schema (2020-12 unless the schema's ``$schema`` names another draft) through the
    ``jsonschema`` library, imported on the first validation. ``format`` is an annotation,
    not checked. An invalid schema raises ``ValidationError`` (see :func:`check_schema`).

    >>> validate({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
    ...          {"a": "x"})
    ["$.a: expected integer, got string 'x'"]
    >>> validate({"type": "string", "pattern": "^[a-z]+[.]txt$"}, "../../etc/passwd", "$.path")
    ["$.path: '../../etc/passwd' does not match '^[a-z]+[.]txt$'"]
    """
    problems: list[str] = []
    try:
        for error in _compiled(schema).iter_errors(value):
            problems.extend(line for line in _messages(error, path) if line not in problems)
    except RecursionError:
        from conduit.errors import ValidationError

        raise ValidationError("the JSON Schema refers to itself without end ($ref)") from None
    if len(problems) > _MAX_PROBLEMS:
        more = len(problems) - _MAX_PROBLEMS
        problems = [*problems[:_MAX_PROBLEMS], f"{path}: and {more} more problems"]
    return problems


def check_schema(schema: Any) -> None:
    """Raise ``ValidationError`` unless *schema* is a valid JSON Schema (an unknown type, a
    bad regular expression, a ``$ref`` to nothing...); compile it for :func:`validate`.

    >>> check_schema({"type": "object", "properties": {"n": {"type": "integer"}}})
    >>> check_schema({"type": "strng"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    conduit.errors.ValidationError: invalid JSON Schema at schema.type: unknown type 'strng'; ...
    """
    _compiled(schema)


def _compiled(schema: Any) -> Any:
    """Return the validator for *schema*, built (and the schema checked) once per schema."""
    from pyrsistent import PMap

    if isinstance(schema, PMap):  # tool parameters, with_schema options: the same object
        hit = _COMPILED_BY_ID.get(id(schema))
        if hit is not None and hit[0] is schema:
            return hit[1]
    validator = _compile(_canonical(schema))
    if isinstance(schema, PMap):
        if len(_COMPILED_BY_ID) >= 512:
            _COMPILED_BY_ID.clear()
        _COMPILED_BY_ID[id(schema)] = (schema, validator)
    return validator


def _canonical(schema: Any) -> str:
    """The schema as canonical JSON: a cache key that tells 1, 1.0 and true apart."""
    import json

    from conduit._data import thaw
    from conduit.errors import ValidationError

    try:
        return json.dumps(thaw(schema), sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"a JSON Schema must be JSON data: {exc}") from None


@functools.lru_cache(maxsize=512)
def _compile(canonical: str) -> Any:
    import json

    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import best_match

    from conduit.errors import ValidationError

    schema = json.loads(canonical)
    if not isinstance(schema, dict | bool):
        raise ValidationError(f"a JSON Schema is an object or a boolean, not {schema!r:.60}")
    cls = validators.validator_for(schema, default=Draft202012Validator)
    meta = cls(cls.META_SCHEMA, format_checker=cls.FORMAT_CHECKER)
    error = best_match(meta.iter_errors(schema))
    if error is None:
        error = _unresolvable(schema)
    if error is not None:
        where, path = _where(error.absolute_path, "schema"), list(error.absolute_path)
        text = _clip(error.message, 200)
        if path and path[-1] == "type":
            text = f"unknown type {_show(error.instance)}; the types are {', '.join(_TYPES)}"
        raise ValidationError(f"invalid JSON Schema at {where}: {text}")
    return _lenient(cls)(schema)


def _unresolvable(schema: Any) -> Any:
    """Return an error for the first local ``$ref`` that points at nothing, else None."""
    from jsonschema.exceptions import SchemaError
    from referencing import Registry
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012, specification_with

    if not isinstance(schema, dict) or _has_ids(schema):
        return None  # nested $id rebase references: left to the validator
    spec = specification_with(str(schema.get("$schema", "")), default=DRAFT202012)
    resolver = Registry().with_resource("", spec.create_resource(schema)).resolver()
    for ref in sorted(_refs(schema)):
        try:
            resolver.lookup(ref)
        except Unresolvable:
            return SchemaError(f"$ref {ref!r} points at nothing (Conduit never fetches schemas)")
    return None


def _refs(schema: Any) -> set[str]:
    if isinstance(schema, dict):
        found = {schema["$ref"]} if isinstance(schema.get("$ref"), str) else set()
        return found.union(*(_refs(v) for k, v in schema.items() if k not in ("enum", "const")))
    if isinstance(schema, list):
        return set().union(*(_refs(v) for v in schema))
    return set()


def _has_ids(schema: Any, top: bool = True) -> bool:
    if isinstance(schema, dict):
        if not top and "$id" in schema:
            return True
        return any(_has_ids(v, False) for k, v in schema.items() if k not in ("enum", "const"))
    return isinstance(schema, list) and any(_has_ids(v, False) for v in schema)


@functools.cache
def _lenient(cls: Any) -> Any:
    """*cls*, also taking tuples as arrays and any mapping as an object (frozen data)."""
    from jsonschema import validators

    checker = cls.TYPE_CHECKER.redefine_many(
        {
            "array": lambda _, v: isinstance(v, list | tuple) or type(v).__name__ == "PVector",
            "object": lambda _, v: isinstance(v, Mapping),
        }
    )
    return validators.extend(cls, type_checker=checker)


def _where(parts: Any, root: str) -> str:
    """The JSONPath of a value: ``$.files[2].name``."""
    out = root
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.fullmatch(str(part)):
            out += f".{part}"
        else:
            out += f"[{str(part)!r}]"
    return out


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _show(value: Any) -> str:
    return _clip(repr(value))


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "object"
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _messages(error: Any, root: str) -> list[str]:
    """The problem lines for one ``jsonschema`` error, in words a model can act on."""
    where = _where(error.absolute_path, root)
    rule, value, bad = error.validator, error.validator_value, error.instance
    if rule == "type":
        kinds = [value] if isinstance(value, str) else list(value)
        return [f"{where}: expected {' or '.join(kinds)}, got {_kind(bad)} {_show(bad)}"]
    if rule == "required":
        missing = [n for n in value if n not in bad]
        return [f"{where}: missing required property {n!r}" for n in missing]
    if rule == "additionalProperties" and value is False:
        known = error.schema.get("properties", {})
        patterns = list(error.schema.get("patternProperties", {}))
        extra = [n for n in bad if n not in known and not any(re.search(p, n) for p in patterns)]
        return [f"{where}: unexpected property {n!r}" for n in extra]
    if rule in ("anyOf", "oneOf") and error.context:
        branches: dict[Any, str] = {}
        for i, sub in enumerate(error.context):  # a false branch's error has no schema path
            branch = sub.relative_schema_path[0] if sub.relative_schema_path else f"false {i}"
            branches.setdefault(branch, _messages(sub, root)[0])
        options = " | ".join(list(branches.values())[:3])
        return [f"{where}: {_show(bad)} matches none of the allowed schemas ({options})"]
    if rule == "oneOf":
        return [f"{where}: {_show(bad)} matches more than one of the schemas oneOf allows"]
    simple: dict[Any, Callable[[], str]] = {
        "enum": lambda: f"{_show(bad)} is not one of {_clip(repr(list(value)), 120)}",
        "const": lambda: f"expected {_show(value)}, got {_show(bad)}",
        "pattern": lambda: f"{_show(bad)} does not match '{value}'",
        "minLength": lambda: f"expected at least {value} characters, got {len(bad)}",
        "maxLength": lambda: f"expected at most {value} characters, got {len(bad)}",
        "minimum": lambda: f"{_show(bad)} is less than the minimum {value}",
        "maximum": lambda: f"{_show(bad)} is greater than the maximum {value}",
        "exclusiveMinimum": lambda: f"{_show(bad)} must be greater than {value}",
        "exclusiveMaximum": lambda: f"{_show(bad)} must be less than {value}",
        "multipleOf": lambda: f"{_show(bad)} is not a multiple of {value}",
        "minItems": lambda: f"expected at least {value} items",
        "maxItems": lambda: f"expected at most {value} items",
        "uniqueItems": lambda: "the items must be unique",
        "not": lambda: f"{_show(bad)} must not match {_clip(repr(value), 120)}",
        "minProperties": lambda: f"expected at least {value} properties",
        "maxProperties": lambda: f"expected at most {value} properties",
        None: lambda: "no value is allowed here",
    }
    text = simple[rule]() if rule in simple else _clip(error.message, 200)
    return [f"{where}: {text}"]


def convert(tp: Any, value: Any) -> Any:
    """Return validated JSON *value* as an instance of *tp* (attrs, dataclass, Enum, tuple...).

    >>> import enum
    >>> class Unit(enum.Enum):
    ...     C = "celsius"
    >>> convert(tuple[int, Unit], [1, "celsius"])
    (1, <Unit.C: 'celsius'>)
    """
    if value is None or tp is Any or tp in _SCALARS:
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if tp is int and isinstance(value, float) and value.is_integer():
            return int(value)  # 2.0 is an integer in JSON Schema
        return value
    origin, args = get_origin(tp), get_args(tp)
    if origin is typing.Annotated:
        return convert(args[0], value)
    if origin in (Union, types.UnionType):
        from_schema = [a for a in args if not validate(schema_of(a), _plain_json(value))]
        return convert(from_schema[0], value) if from_schema else value
    if origin in (list, Sequence) or tp is list:
        return [convert(args[0] if args else Any, v) for v in value]
    if origin in (set, frozenset):
        return origin(convert(args[0], v) for v in value)
    if origin is tuple or tp is tuple:
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return tuple(convert(args[0] if args else Any, v) for v in value)
        return tuple(convert(a, v) for a, v in zip(args, value, strict=False))
    if origin in (dict, Mapping) or tp is dict:
        return {k: convert(args[1] if len(args) == 2 else Any, v) for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if is_pydantic(tp):
        return tp.model_validate(value)
    if isinstance(tp, type) and (
        attrs.has(tp) or dataclasses.is_dataclass(tp) or _is_typeddict(tp)
    ):
        fields = {name: hint for name, hint, _, _ in _fields(tp)}
        kwargs = {k: convert(fields.get(k, Any), v) for k, v in value.items()}
        return kwargs if _is_typeddict(tp) else tp(**kwargs)
    return value


def _plain_json(value: Any) -> Any:
    from conduit._data import thaw

    return thaw(value)


# -- strict mode (OpenAI structured outputs) ---------------------------------------------------

#: Keywords OpenAI's strict mode does not support (its structured-outputs guide): a schema
#: using one is sent without ``strict`` rather than refused.
_NOT_STRICT = frozenset(
    (
        "allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
        "patternProperties", "unevaluatedProperties", "propertyNames", "minProperties",
        "maxProperties", "unevaluatedItems", "contains", "minContains", "maxContains",
        "uniqueItems", "prefixItems",
    )
)  # fmt: skip


def is_strict_schema(schema: Any) -> bool:
    """Return True when *schema* qualifies for OpenAI's strict mode.

    An object at the root, every object in it closed (``additionalProperties: false``) with
    all its properties required, and no keyword strict mode leaves out (``allOf``,
    ``patternProperties``, ``uniqueItems``, ...).

    >>> is_strict_schema({"type": "object", "properties": {"a": {"type": "string"}},
    ...                   "required": ["a"], "additionalProperties": False})
    True
    >>> is_strict_schema({"type": "object", "properties": {"a": {"type": "string"}},
    ...                   "additionalProperties": False})
    False
    """
    return isinstance(schema, Mapping) and schema.get("type") == "object" and _closed(schema)


def _closed(schema: Any) -> bool:
    if isinstance(schema, Sequence) and not isinstance(schema, str):
        return all(_closed(s) for s in schema)
    if not isinstance(schema, Mapping):
        return True
    if not _NOT_STRICT.isdisjoint(schema):
        return False
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required") or ()) != set(props):
            return False
        if not all(_closed(p) for p in props.values()):
            return False
    for key in ("items", "anyOf", "oneOf"):
        if key in schema and not _closed(schema[key]):
            return False
    for key in ("$defs", "definitions"):
        if key in schema and not all(_closed(s) for s in schema[key].values()):
            return False
    return True
