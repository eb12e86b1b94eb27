"""Building requests and messages, and reading results: pure functions over frozen maps."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pyrsistent import PMap, PVector, pmap, pvector

from conduit._data import Secret, freeze, freeze_map
from conduit._types import Request, Transform
from conduit.errors import ValidationError

__all__ = [
    "CONNECTION_KEYS",
    "ROLES",
    "add_message",
    "as_request",
    "assistant",
    "content",
    "image_base64",
    "image_url",
    "last_message",
    "message",
    "reply",
    "request",
    "response_message",
    "set_model",
    "set_options",
    "system",
    "text",
    "text_block",
    "tool_calls",
    "tool_result",
    "usage",
    "user",
]

ROLES = ("system", "user", "assistant", "tool")
#: Request keys that are not sampling options: they stay at the top level of the map.
CONNECTION_KEYS = frozenset(
    {"base_url", "api_key", "headers", "timeout", "provider", "mock", "tools", "metadata"}
)


def text_block(text: str) -> PMap[str, Any]:
    """Return a text content block.

    >>> text_block("hi")["text"]
    'hi'
    """
    return pmap({"type": "text", "text": text})


def image_url(url: str) -> PMap[str, Any]:
    """Return an image block that points at *url* (``https:`` or a ``data:`` URL).

    >>> image_url("https://example.com/cat.png")["source"]["url"]
    'https://example.com/cat.png'
    """
    return freeze_map({"type": "image", "source": {"type": "url", "url": url}})


def image_base64(data: str, media_type: str = "image/png") -> PMap[str, Any]:
    """Return an image block holding base64 *data* of *media_type*.

    >>> image_base64("iVBORw0KGgo=", "image/png")["source"]["media_type"]
    'image/png'
    """
    source = {"type": "base64", "data": data, "media_type": media_type}
    return freeze_map({"type": "image", "source": source})


def _blocks(parts: Iterable[Any]) -> PVector[Any]:
    return pvector(text_block(p) if isinstance(p, str) else freeze(p) for p in parts)


def message(role: str, content: Any, **extra: Any) -> PMap[str, Any]:
    """Return a message map; several content parts become a vector of blocks.

    >>> message("user", "hi")["content"]
    'hi'
    >>> [b["type"] for b in message("user", ["look:", image_url("https://x/y.png")])["content"]]
    ['text', 'image']
    """
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if not isinstance(content, str):
        content = _blocks(content)
    fields = {"role": role, "content": content}
    fields.update({k: freeze(v) for k, v in extra.items() if v is not None})
    return pmap(fields)


def system(content: str) -> PMap[str, Any]:
    """Return a system message.

    >>> system("Be brief.")["role"]
    'system'
    """
    return message("system", content)


def user(content: Any, *more: Any, name: str | None = None) -> PMap[str, Any]:
    """Return a user message; extra parts (text or image blocks) make a multi-part message.

    >>> user("Hi")["content"]
    'Hi'
    >>> len(user("What is this?", image_url("https://x/cat.png"))["content"])
    2
    """
    return message("user", (content, *more) if more else content, name=name)


def assistant(content: Any = "", tool_calls: Iterable[Any] = ()) -> PMap[str, Any]:
    """Return an assistant message, optionally carrying the tool calls it made.

    >>> assistant("", [{"id": "c1", "name": "add", "arguments": {"a": 1}}])["tool_calls"][0]["name"]
    'add'
    """
    calls = freeze(list(tool_calls))
    return message("assistant", content, tool_calls=calls or None)


def tool_result(tool_call_id: str, content: Any, is_error: bool = False) -> PMap[str, Any]:
    """Return a tool message answering the call *tool_call_id*; non-text content becomes JSON.

    >>> tool_result("c1", {"sum": 3})["content"]
    '{"sum": 3}'
    >>> tool_result("c1", "boom", is_error=True)["is_error"]
    True
    """
    if not isinstance(content, str):
        content = json.dumps(content, default=str)
    return message("tool", content, tool_call_id=tool_call_id, is_error=is_error or None)


def _as_message(m: Any, i: int) -> PMap[str, Any]:
    if isinstance(m, str):
        return user(m)
    if not isinstance(m, Mapping):
        raise ValidationError(
            f"message {i} is a {type(m).__name__}; expected a map like c.user('...')"
        )
    role = m.get("role")
    if role not in ROLES:
        raise ValidationError(f"message {i} has role {role!r}; expected one of {', '.join(ROLES)}")
    body = m.get("content")
    valid = isinstance(body, str | list | tuple | PVector) or (body is None and role == "assistant")
    if not valid:
        raise ValidationError(
            f"message {i} ({role}) has content of type {type(body).__name__}; "
            "expected a string or a list of blocks"
        )
    frozen = freeze_map(m)
    return frozen if body is not None else frozen.set("content", "")


def _messages(messages: Any) -> PVector[Any]:
    if isinstance(messages, str | Mapping):
        messages = [messages]
    return pvector(_as_message(m, i) for i, m in enumerate(messages))


def request(model: str, messages: Any = (), **options: Any) -> Request:
    """Return a new request for *model*; keyword arguments are sampling options.

    Connection settings (``base_url``, ``api_key``, ``headers``, ``timeout``), ``tools``,
    ``metadata`` and the mock script (``mock``) stay at the top level; everything else
    (``temperature``, ``max_tokens``, ...) goes under ``"options"``. A string message is a
    user message. The API key is held masked.

    >>> req = request("gpt-4o-mini", [user("Hi")], temperature=0.2, api_key="sk-x")
    >>> req["model"], req["options"]["temperature"], req["api_key"]
    ('gpt-4o-mini', 0.2, Secret('***'))
    >>> request("m", "Hello")["messages"][0]["role"]
    'user'
    """
    if not isinstance(model, str) or not model:
        raise ValidationError(f"model must be a non-empty string, got {model!r}")
    top = {k: v for k, v in options.items() if k in CONNECTION_KEYS and v is not None}
    opts = {k: v for k, v in options.items() if k not in CONNECTION_KEYS and v is not None}
    if "api_key" in top and not isinstance(top["api_key"], Secret):
        top["api_key"] = Secret(str(top["api_key"]))
    if "mock" in top:
        from conduit.providers.mock import as_script

        top["mock"] = as_script(top["mock"])
    fields: dict[str, Any] = {
        "model": model,
        "messages": _messages(messages),
        "options": freeze(opts),
        **{k: freeze(v) for k, v in top.items()},
    }
    return pmap(fields)


def as_request(req: Any) -> Request:
    """Return *req* frozen: a plain ``dict`` request is accepted anywhere a request is.

    >>> as_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]})["options"]
    pmap({})
    """
    if isinstance(req, PMap) and "options" in req and "messages" in req:
        return req
    if not isinstance(req, Mapping) or "model" not in req:
        raise ValidationError(
            f"expected a request map with a 'model' key (build one with c.request), got {req!r:.80}"
        )
    plain = dict(req)
    model = plain.pop("model")
    messages = plain.pop("messages", ())
    extra = {k: plain.pop(k) for k in list(plain) if k not in CONNECTION_KEYS and k != "options"}
    built = request(model, messages, **{**dict(plain.pop("options", {})), **plain})
    return built.update(freeze(extra)) if extra else built


def set_model(model: str) -> Transform:
    """Return a transform setting ``"model"`` to *model* (the same object if it already is).

    >>> from toolz import pipe
    >>> pipe(request("small"), set_model("large"))["model"]
    'large'
    """

    def set_model(req: Request) -> Request:
        return req if req.get("model") == model else req.set("model", model)

    return set_model


def set_options(options: Mapping[str, Any]) -> Transform:
    """Return a transform merging sampling *options* into ``"options"``.

    >>> from toolz import pipe
    >>> pipe(request("m"), set_options({"temperature": 0}))["options"]["temperature"]
    0
    """
    frozen = freeze(dict(options))

    def set_options(req: Request) -> Request:
        merged = req["options"].update(frozen)
        return req if merged == req["options"] else req.set("options", merged)

    return set_options


def add_message(msg: Any) -> Transform:
    """Return a transform appending *msg* to the messages.

    >>> from toolz import pipe
    >>> len(pipe(request("m", [user("a")]), add_message(assistant("b")))["messages"])
    2
    """

    def add_message(req: Request) -> Request:
        return req.set("messages", req["messages"].append(_as_message(msg, len(req["messages"]))))

    return add_message


def last_message(req: Request) -> PMap[str, Any] | None:
    """Return the last message of *req*, or None for an empty conversation.

    >>> last_message(request("m", ["a", "b"]))["content"]
    'b'
    """
    msgs = req.get("messages") or ()
    return msgs[-1] if msgs else None


def _response_or_message(x: Mapping[str, Any]) -> Mapping[str, Any]:
    if "response" in x:
        return x["response"]  # type: ignore[no-any-return]
    if "role" in x:
        return x
    raise ValidationError(
        "this request has no response yet: pass it through a provider call "
        "(e.g. c.mock_call or c.openai_call) first"
    )


def text(value: Any) -> str:
    """Return the text of a content value: a string, or the text blocks joined.

    >>> text([text_block("a"), image_url("u"), text_block("b")])
    'ab'
    """
    if isinstance(value, str):
        return value
    return "".join(b.get("text", "") for b in value or () if b.get("type") == "text")


def content(x: Mapping[str, Any]) -> str:
    """Return the text content of a context's response, of a response, or of a message.

    >>> content({"role": "assistant", "content": "Hi!"})
    'Hi!'
    """
    return text(_response_or_message(x).get("content", ""))


def tool_calls(x: Mapping[str, Any]) -> PVector[Any]:
    """Return the tool calls of a context's response, of a response, or of a message.

    An empty vector when there are none (an empty list is not a tool call).

    >>> len(tool_calls({"role": "assistant", "content": ""}))
    0
    """
    return freeze(_response_or_message(x).get("tool_calls") or ())  # type: ignore[no-any-return]


def usage(x: Mapping[str, Any]) -> PMap[str, Any]:
    """Return the token usage of a context's response or of a response.

    >>> usage({"role": "assistant", "content": "", "usage": {"input_tokens": 3,
    ...        "output_tokens": 2, "total_tokens": 5}})["total_tokens"]
    5
    """
    found = _response_or_message(x).get("usage")
    empty = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    return freeze_map(found if found is not None else empty)


def response_message(response: Mapping[str, Any]) -> PMap[str, Any]:
    """Return the assistant message that records *response* in a conversation.

    >>> response_message({"role": "assistant", "content": "hi", "model": "m"})["content"]
    'hi'
    """
    return assistant(response.get("content") or "", response.get("tool_calls") or ())


def reply(ctx: Request, content: Any) -> Request:
    """Return the next request of a conversation: the response and a new user turn appended.

    >>> ctx = request("m", ["Hi"]).set("response", freeze({"role": "assistant", "content": "Yo"}))
    >>> [m["content"] for m in reply(ctx, "How are you?")["messages"]]
    ['Hi', 'Yo', 'How are you?']
    >>> "response" in reply(ctx, "again")
    False
    """
    resp = _response_or_message(ctx)
    turn = _as_message(content, len(ctx["messages"]) + 1)
    msgs = ctx["messages"].append(response_message(resp)).append(turn)
    done = ctx.discard("response").discard("parsed")
    return done.set("messages", msgs)
