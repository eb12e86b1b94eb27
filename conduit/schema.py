"""JSON Schema from Python types, a validator for those schemas, and conversion back to types.

Pure functions. Types: ``str``, ``int``, ``float``, ``bool``, ``None``, lists, tuples, dicts,
``Literal``, ``Enum``, ``Optional`` and unions, ``Annotated[T, "description"]``, attrs
classes, dataclasses and ``TypedDict`` (nested freely).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import attrs

__all__ = ["convert", "describe", "parse_docstring", "schema_of", "validate"]

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


def _is_record(tp: Any) -> bool:
    """An attrs class, a dataclass or a TypedDict: a type with named fields."""
    return isinstance(tp, type) and (
        attrs.has(tp) or dataclasses.is_dataclass(tp) or _is_typeddict(tp)
    )


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
    if isinstance(tp, type) and (
        attrs.has(tp) or dataclasses.is_dataclass(tp) or _is_typeddict(tp)
    ):
        return _object_schema(tp)
    raise TypeError(
        f"cannot derive a JSON Schema for {tp!r}: use str, int, float, bool, None, lists, tuples, "
        "dicts, Literal, Enum, unions, attrs classes, dataclasses or TypedDicts"
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


_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list | tuple) or type(v).__name__ == "PVector",
    "object": lambda v: isinstance(v, Mapping),
}


def validate(schema: Mapping[str, Any], value: Any, path: str = "$") -> list[str]:
    """Return what is wrong with *value* against *schema* (empty when valid).

    >>> validate({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
    ...          {"a": "x"})
    ["$.a: expected integer, got str 'x'"]
    """
    errors: list[str] = []
    if "anyOf" in schema:
        if all(validate(s, value, path) for s in schema["anyOf"]):
            return [f"{path}: {value!r:.40} matches none of the allowed types"]
        return []
    kind = schema.get("type")
    if isinstance(kind, str) and not _TYPE_CHECKS[kind](value):
        return [f"{path}: expected {kind}, got {type(value).__name__} {value!r:.40}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r:.40} is not one of {list(schema['enum'])}"]
    if kind == "object" or (kind is None and isinstance(value, Mapping) and "properties" in schema):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}: missing required property {name!r}")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                errors.extend(validate(props[name], item, f"{path}.{name}"))
            elif extra is False:
                errors.append(f"{path}: unexpected property {name!r}")
            elif isinstance(extra, Mapping):
                errors.extend(validate(extra, item, f"{path}.{name}"))
    if kind == "array":
        items = list(value)
        if "minItems" in schema and len(items) < schema["minItems"]:
            errors.append(f"{path}: expected at least {schema['minItems']} items")
        if "maxItems" in schema and len(items) > schema["maxItems"]:
            errors.append(f"{path}: expected at most {schema['maxItems']} items")
        for i, item in enumerate(items):
            sub = (schema.get("prefixItems") or [])[i : i + 1]
            rule = sub[0] if sub else schema.get("items")
            if rule is not None:
                errors.extend(validate(rule, item, f"{path}[{i}]"))
    return errors


def convert(tp: Any, value: Any) -> Any:
    """Return validated JSON *value* as an instance of *tp* (attrs, dataclass, Enum, tuple...).

    >>> import enum
    >>> class Unit(enum.Enum):
    ...     C = "celsius"
    >>> convert(tuple[int, Unit], [1, "celsius"])
    (1, <Unit.C: 'celsius'>)
    """
    if value is None or tp is Any or tp in _SCALARS:
        return float(value) if tp is float and isinstance(value, int) else value
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
