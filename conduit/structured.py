"""Structured output: ``with_schema``, ``extract`` and ``classify``.

The schema is an attrs class, a dataclass, a ``TypedDict`` or a JSON Schema dict. Conduit asks
for the provider's native JSON-schema output (OpenAI-compatible ``response_format``; on Anthropic
a forced tool call, by its encoder), parses the answer (tolerating code fences and prose around
the JSON), validates it, and puts the value at ``ctx["parsed"]``: an instance of the class, or a
frozen map. An invalid answer is sent back to the model with what was wrong, up to
``max_retries`` times. A refusal (``stop_reason`` ``"refusal"``) is not an invalid answer: it
raises ``ValidationError`` at once, with ``data["refusal"]`` holding the provider's text. With
thinking on, Anthropic refuses a forced tool call; its encoder then offers the answer tool
with ``tool_choice: auto`` and an instruction, and a JSON answer in text is read as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from conduit._data import freeze, freeze_map, thaw
from conduit._options import Builder, configure, number
from conduit._types import Flow, Handler, Request
from conduit.errors import ValidationError
from conduit.middleware import Middleware
from conduit.request import content, reply, request, system, tool_calls, tool_result, user
from conduit.schema import (
    _is_record,
    check_schema,
    convert,
    is_strict_schema,
    schema_of,
    validate,
)

__all__ = ["classify", "extract", "parse_json", "schema_flow", "with_schema"]

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_json(text: str) -> tuple[Any, str | None]:
    """Return (the JSON value in *text*, None), or (None, what went wrong).

    Accepts bare JSON, JSON in a code fence, or a JSON object or array amid prose.

    >>> parse_json('Sure! ```json\\n{"a": 1}\\n```')
    ({'a': 1}, None)
    >>> parse_json("The answer is [1, 2].")
    ([1, 2], None)
    >>> parse_json("no json here")[1]
    'the answer holds no JSON value'
    """
    candidates = [text.strip(), *(m.strip() for m in _FENCE.findall(text))]
    for open_, close in (("{", "}"), ("[", "]")):
        start, end = text.find(open_), text.rfind(close)
        if 0 <= start < end:
            candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate), None
        except ValueError:
            continue
    return None, "the answer holds no JSON value"


def _spec(schema: Any) -> tuple[dict[str, Any], str, Callable[[Any], Any]]:
    if isinstance(schema, Mapping):
        plain = thaw(schema)
        check_schema(plain)
        return plain, str(plain.get("title") or "result"), freeze
    if _is_record(schema):
        return schema_of(schema), schema.__name__, partial(_build, schema)
    raise ValidationError(
        f"a schema is an attrs class, a dataclass, a TypedDict or a JSON Schema dict, "
        f"not {schema!r:.60}"
    )


def _build(cls: Any, value: Any) -> Any:
    built = convert(cls, value)
    return freeze(built) if isinstance(built, dict) else built


def schema_flow(
    req: Request,
    *,
    schema: Mapping[str, Any],
    name: str,
    build: Callable[[Any], Any],
    max_retries: int = 2,
    strict: bool | None = None,
) -> Flow:
    """Ask for JSON matching *schema*; validate it; retry with the errors fed back."""
    spec: dict[str, Any] = {"name": _safe(name), "schema": schema}
    if strict is not None:
        spec["strict"] = strict
    fmt = {"type": "json_schema", "json_schema": spec}
    sent = req.set("options", req["options"].set("response_format", freeze(fmt)))
    problems: list[str] = []
    text = ""
    for attempt in range(max_retries + 1):
        ctx: Request = yield sent
        _refused(ctx)
        text = content(ctx)
        calls = tool_calls(ctx)
        via_tool = [t for t in calls if t["name"] == _safe(name)]
        if calls and not via_tool:  # the model uses the caller's tools first: not an answer yet
            return ctx
        if via_tool:  # Anthropic and Bedrock answer through the answer tool
            value, error = thaw(via_tool[0]["arguments"]), via_tool[0].get("arguments_error")
        else:
            value, error = parse_json(text)
        problems = [error] if error else validate(schema, value)
        if not problems:
            answered = _as_text(ctx, value) if via_tool else ctx
            done: Request = answered.update(
                {"parsed": build(value), "schema_attempts": attempt + 1}
            )
            return done
        feedback = (
            "Your answer did not match the required JSON schema: "
            + "; ".join(problems)
            + ". Answer again with only the corrected JSON."
        )
        answer = tool_result(via_tool[0]["id"], feedback, is_error=True) if via_tool else feedback
        # the re-ask continues the wire conversation, and keeps what the request carried
        # inside the stack (its deadline, say), which reply() would leave behind; a tool called
        # beside the answer tool gets a result too (a tool call without one is refused)
        unrun = [
            tool_result(t["id"], _NOT_RUN, is_error=True) for t in calls if t not in via_tool[:1]
        ]
        sent = sent.set("messages", reply(ctx, answer)["messages"].extend(unrun))
    raise ValidationError(
        f"the model's answer did not match the schema after {max_retries + 1} tries: "
        + "; ".join(problems),
        data={"content": text, "problems": problems},
    )


_NOT_RUN = (
    "Not run: it was called in the same turn as the answer. Call the tools you need first, "
    "then give the answer alone."
)


def _as_text(ctx: Request, value: Any) -> Request:
    """*ctx* with an answer given through the answer tool recorded as the JSON text it stands
    for: the tool is the middleware's way of asking, not part of the conversation (a tool call
    without its result is refused on the next turn), and the next turn may go to a provider
    that never saw the tool.

    >>> from conduit.response import make_response, make_tool_call
    >>> call = make_tool_call("t1", "city", {"name": "Paris"})
    >>> ctx = freeze({"response": make_response(tool_calls=[call])})
    >>> resp = _as_text(ctx, {"name": "Paris"})["response"]
    >>> resp["content"], len(resp["tool_calls"]), resp["stop_reason"]
    ('{"name": "Paris"}', 0, 'end_turn')
    """
    resp = ctx["response"]
    answer = json.dumps(value, ensure_ascii=False)
    before = resp.get("content") or ""
    if isinstance(before, str):
        text: Any = f"{before}\n\n{answer}" if before.strip() else answer
    else:  # blocks (reasoning before the answer): the answer as one more text block
        text = [*before, {"type": "text", "text": answer}]
    stop = resp.get("stop_reason")
    changed = resp.update(  # the answer ends the turn: a tool called beside it is not run
        {
            "content": freeze(text),
            "tool_calls": freeze([]),
            "stop_reason": "end_turn" if stop == "tool_use" else stop,
        }
    )
    updated: Request = ctx.set("response", changed)
    return updated


def _refused(ctx: Request) -> None:
    """A refusal is an answer, not invalid JSON: report it, never re-ask."""
    resp = ctx.get("response") or {}
    if resp.get("stop_reason") != "refusal" and resp.get("refusal") is None:
        return
    why = resp.get("refusal") or "no reason given"
    raise ValidationError(
        f"the model refused to answer in the schema: {why}",
        data={"refusal": why, "stop_reason": "refusal", "content": content(ctx)},
    )


def _safe(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64] or "result"


_NEEDS = (
    "with_schema needs a schema: c.with_schema(MyAttrsClass), or a dataclass, a TypedDict or "
    "a JSON Schema dict"
)


def _build_middleware(
    *, schema: Any = None, max_retries: int = 2, strict: bool | None = None
) -> Middleware:
    if schema is None:
        raise ValidationError(_NEEDS)
    json_schema, name, build = _spec(schema)
    retries = number("with_schema", "max_retries", max_retries, whole=True, zero=True)
    if strict not in (None, True, False):
        raise ValidationError(
            f"with_schema strict= is True, False or None (decide by the schema), not {strict!r:.40}"
        )
    if strict and not is_strict_schema(json_schema):
        raise ValidationError(
            f"with_schema(strict=True): the schema of {name} does not qualify for strict mode, "
            "which needs every object closed (additionalProperties: false) with all its "
            "properties required, and no allOf, not, patternProperties and the like; give the "
            "fields no defaults, or leave strict unset to send it unstrict"
        )
    options = {
        "schema": json_schema,
        "name": name,
        "build": build,
        "max_retries": retries,
        "strict": strict,
    }
    return Middleware(flow=schema_flow, name="schema", options=freeze_map(options), shapes=True)


_SPEC = Builder(
    name="with_schema", build=_build_middleware, first="schema", example="c.with_schema(City)"
)


def with_schema(schema: Any = None, /, **options: Any) -> Any:
    """Return a transform asking for output matching *schema*; the value lands at ``ctx["parsed"]``.

    The JSON Schema is derived from *schema* once, here; an answer that does not match it is
    sent back with what was wrong up to ``max_retries`` times (default 2; 0 for none).

    ``strict`` decides OpenAI's strict mode: unset, the schema is sent strict when it qualifies
    (every object closed, every property required); ``strict=False`` never; ``strict=True``
    always, and a schema that does not qualify is refused here. There is no bare form:
    ``pipe(req, c.with_schema, ...)`` raises ``ValidationError`` asking for one.

    >>> import attrs
    >>> import conduit as c
    >>> @attrs.frozen
    ... class City:
    ...     name: str
    ...     population: int
    >>> script = c.mock_script(['{"name": "Paris"}', '{"name": "Paris", "population": 2100000}'])
    >>> ctx = c.mock_call(c.with_schema(City)(c.request("m", "Largest French city?", mock=script)))
    >>> ctx["parsed"], ctx["schema_attempts"]
    (City(name='Paris', population=2100000), 2)
    """
    return configure(_SPEC, schema, options)


DEFAULT_MODEL = "gpt-4o-mini"


def extract(
    call: Handler, text: str, schema: Any, *, model: str = DEFAULT_MODEL, **options: Any
) -> Any:
    """Return the information in *text* as *schema* (an instance, or a frozen map).

    *call* is any handler (``c.openai_call``, ``c.call`` with ``model="anthropic:..."``,
    ``c.mock_call`` with ``mock=...``); other keywords go to ``c.request``.

    >>> import conduit as c
    >>> person = {"type": "object", "properties": {"name": {"type": "string"}},
    ...           "required": ["name"]}
    >>> text = "Ada wrote the first program."
    >>> c.extract(c.mock_call, text, person, mock='{"name": "Ada"}')["name"]
    'Ada'
    """
    req = request(
        model,
        [
            system(
                "Extract the requested information from the user's text. Answer with JSON only."
            ),
            user(text),
        ],
        **options,
    )
    ctx = call(with_schema(schema)(req))
    return ctx["parsed"]


def classify(
    call: Handler, text: str, labels: Sequence[str], *, model: str = DEFAULT_MODEL, **options: Any
) -> str:
    """Return the one label of *labels* that fits *text*.

    >>> import conduit as c
    >>> labels = ["positive", "negative"]
    >>> c.classify(c.mock_call, "I love it!", labels, mock='{"label": "positive"}')
    'positive'
    """
    if isinstance(labels, str) or len(labels) < 2:
        raise ValidationError("classify needs at least two labels, as a list")
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": list(labels)}},
        "required": ["label"],
        "additionalProperties": False,
        "title": "classification",
    }
    req = request(
        model,
        [
            system(
                "Classify the user's text. Choose exactly one label: "
                + ", ".join(labels)
                + ". Answer with JSON only."
            ),
            user(text),
        ],
        **options,
    )
    ctx = call(with_schema(schema)(req))
    return str(ctx["parsed"]["label"])
