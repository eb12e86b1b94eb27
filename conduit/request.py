"""Building requests and messages, and reading results: pure functions over frozen maps."""

from __future__ import annotations

import functools
import json
import re
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, cast

from pyrsistent import PMap, PVector, pmap, pvector

from conduit._content import text
from conduit._data import (
    MaskedURL,
    Secret,
    freeze,
    freeze_map,
    is_credential,
    name_words,
    peek,
    query_secrets,
    reveal,
    secret_problem,
    split_userinfo,
)
from conduit._types import Request, Transform
from conduit.errors import ValidationError

__all__ = [
    "BLOCK_TYPES",
    "CONNECTION_KEYS",
    "REQUEST_KEYS",
    "ROLES",
    "add_message",
    "as_request",
    "assistant",
    "connection",
    "content",
    "document_base64",
    "document_url",
    "image_base64",
    "image_url",
    "input_audio",
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
BLOCK_TYPES = ("text", "reasoning", "document", "image", "audio")
#: Request keys that are not sampling options: they stay at the top level of the map.
CONNECTION_KEYS = frozenset(
    {
        "base_url",
        "api_key",
        "headers",
        "timeout",
        "provider",
        "mock",
        "tools",
        "metadata",
        "token_provider",
    }
)
#: The keys that make up a request; whatever else a context holds is a result (DESIGN §1).
REQUEST_KEYS = frozenset({"model", "messages", "options", "middleware", "input", *CONNECTION_KEYS})


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


def document_base64(
    data: str, media_type: str = "application/pdf", title: str | None = None
) -> PMap[str, Any]:
    """Return a document block (a PDF, by default) holding base64 *data*.

    >>> block = document_base64("JVBERi0xLjQ=", title="Report")
    >>> block["source"]["media_type"], block["title"]
    ('application/pdf', 'Report')
    """
    source = {"type": "base64", "data": data, "media_type": media_type}
    return _titled({"type": "document", "source": source}, title)


def document_url(url: str, title: str | None = None) -> PMap[str, Any]:
    """Return a document block that points at *url* (a PDF the provider fetches).

    >>> document_url("https://example.com/paper.pdf")["source"]["type"]
    'url'
    """
    return _titled({"type": "document", "source": {"type": "url", "url": url}}, title)


def _titled(block: dict[str, Any], title: str | None) -> PMap[str, Any]:
    if title is not None:
        block["title"] = title
    made = freeze_map(block)
    _check_block(made, "document")
    return made


_AUDIO_TYPES = {"mp3": "audio/mpeg"}


def input_audio(data: str, format: str) -> PMap[str, Any]:
    """Return an audio block holding base64 *data* in *format* (``"wav"``, ``"mp3"``, ...).

    The block is ``{"type": "audio", "source": {"type": "base64", "data", "media_type"}}``;
    *format* becomes the media type (``mp3`` is ``audio/mpeg``, others ``audio/<format>``).

    >>> input_audio("UklGRg==", "mp3")["source"]["media_type"]
    'audio/mpeg'
    """
    if not isinstance(format, str) or not format:
        _fail("input_audio.format", _problem(format, "a format name"), 'e.g. "wav" or "mp3"')
    media_type = _AUDIO_TYPES.get(format, f"audio/{format}")
    source = {"type": "base64", "data": data, "media_type": media_type}
    made = freeze_map({"type": "audio", "source": source})
    _check_block(made, "input_audio")
    return made


def _fail(path: str, problem: str, fix: str) -> NoReturn:
    raise ValidationError(f"{path}: {problem}; {fix}", data={"path": path})


def _problem(value: Any, wanted: str) -> str:
    return "missing" if value is None else f"expected {wanted}, got {type(value).__name__}"


def _string(m: Mapping[str, Any], key: str, path: str, fix: str, required: bool = True) -> None:
    value = m.get(key)
    if not (isinstance(value, str) or (value is None and not required)):
        _fail(f"{path}.{key}", _problem(value, "a string"), fix)


_SOURCE = 'use {"type": "url", "url": ...} or {"type": "base64", "data": ..., "media_type": ...}'
_CALL = 'use {"id": ..., "name": ..., "arguments": {...}}'
_SEQUENCE = (list, tuple, PVector)


def _check_source(source: Any, path: str) -> None:
    if not isinstance(source, Mapping):
        _fail(path, _problem(source, "a map"), _SOURCE)
    kind = source.get("type")
    if kind == "url":
        _string(source, "url", path, "give the http(s) or data: URL as a string")
    elif kind == "base64":
        _string(source, "data", path, "give the base64-encoded bytes as a string")
        _string(source, "media_type", path, 'give the MIME type, e.g. "image/png"')
    else:
        wrong = "missing" if kind is None else f"unknown source {kind!r:.40}"
        _fail(f"{path}.type", wrong, _SOURCE)


def _check_block(block: Any, path: str) -> None:
    if not isinstance(block, Mapping):
        _fail(path, _problem(block, "a block map"), "build one with c.text_block or c.image_url")
    kind = block.get("type")
    if kind == "text" or kind == "reasoning":
        _string(block, "text", path, "give the block's text as a string")
        for key in ("signature", "redacted") if kind == "reasoning" else ():
            _string(block, key, path, "keep it exactly as the provider sent it", required=False)
    elif kind == "image" or kind == "document":
        _check_source(block.get("source"), f"{path}.source")
        _string(block, "title", path, "give the document's title as a string", required=False)
    elif kind == "audio":
        _check_source(block.get("source"), f"{path}.source")
        if block["source"]["type"] != "base64":
            _fail(f"{path}.source.type", "not base64", "audio is sent inline: c.input_audio(...)")
    else:
        wrong = "missing" if kind is None else f"unknown block type {kind!r:.40}"
        _fail(f"{path}.type", wrong, f"use one of {', '.join(BLOCK_TYPES)}")


def _check_tool_call(call: Any, path: str) -> None:
    if not isinstance(call, Mapping):
        _fail(path, _problem(call, "a tool call map"), _CALL)
    _string(call, "id", path, "give the id the model gave the call")
    _string(call, "name", path, "give the name of the tool called")
    if not call["name"]:
        _fail(f"{path}.name", "empty", "give the name of the tool called")
    args = call.get("arguments")
    if args is not None and not isinstance(args, Mapping):
        _fail(f"{path}.arguments", _problem(args, "a map"), "parse them first (json.loads)")


def _check_fields(m: Mapping[str, Any], role: str, path: str) -> None:
    _string(m, "name", path, "give the participant's name as a string", required=False)
    fix = "give the id of the tool call this message answers: c.tool_result(call['id'], ...)"
    _string(m, "tool_call_id", path, fix, required=role == "tool")
    flag = m.get("is_error")
    if flag is not None and not isinstance(flag, bool):
        _fail(f"{path}.is_error", _problem(flag, "True or False"), "use a bool")
    calls = m.get("tool_calls")
    if calls is not None and not isinstance(calls, _SEQUENCE):
        _fail(f"{path}.tool_calls", _problem(calls, "a list of tool calls"), _CALL)
    for k, call in enumerate(calls or ()):
        _check_tool_call(call, f"{path}.tool_calls[{k}]")


def _check_message(m: Mapping[str, Any], path: str) -> None:
    role = m.get("role")
    if role not in ROLES:
        wrong = "missing" if role is None else f"unknown role {role!r:.40}"
        _fail(f"{path}.role", wrong, f"use one of {', '.join(ROLES)}")
    body = m.get("content")
    if isinstance(body, _SEQUENCE):
        for j, block in enumerate(body):
            _check_block(block, f"{path}.content[{j}]")
    elif not (isinstance(body, str) or (body is None and role == "assistant")):
        wrong = _problem(body, "a string or a list of blocks")
        _fail(f"{path}.content", wrong, "give text, or blocks like [c.text_block('...')]")
    if len(m) > 2 or role == "tool" or body is None:
        _check_fields(m, role, path)


def _blocks(parts: Iterable[Any]) -> PVector[Any]:
    return pvector(text_block(p) if isinstance(p, str) else freeze(p) for p in parts)


def message(role: str, content: Any, **extra: Any) -> PMap[str, Any]:
    """Return a message map, checked; several content parts become a vector of blocks.

    >>> message("user", "hi")["content"]
    'hi'
    >>> [b["type"] for b in message("user", ["look:", image_url("https://x/y.png")])["content"]]
    ['text', 'image']
    >>> message("user", [{"type": "image", "source": {"type": "url"}}])
    Traceback (most recent call last):
    ...
    conduit.errors.ValidationError: message.content[0].source.url: missing; give the http(s) ...
    """
    return _message(role, content, extra, "message")


def _message(role: str, content: Any, extra: Mapping[str, Any], path: str) -> PMap[str, Any]:
    if isinstance(content, Mapping):
        content = (content,)
    if isinstance(content, Iterable) and not isinstance(content, str | bytes):
        content = _blocks(content)
    elif content is None and role == "assistant":
        content = ""
    fields = {"role": role, "content": content}
    fields.update({k: freeze(v) for k, v in extra.items() if v is not None})
    msg = pmap(fields)
    _check_message(msg, path)
    return msg


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


_PLAIN_ROLES = ("user", "assistant", "system")


def _as_message(m: Any, i: int) -> PMap[str, Any]:
    kind = type(m)
    plain = (kind is PMap or kind is dict) and len(m) == 2  # the common case, kept tight
    if plain and type(m.get("content")) is str and m.get("role") in _PLAIN_ROLES:
        return m if kind is PMap else pmap(m)
    if isinstance(m, str):
        return pmap({"role": "user", "content": m})
    if not isinstance(m, Mapping):
        _fail(f"messages[{i}]", _problem(m, "a message map"), "build one with c.user('...')")
    _check_message(m, f"messages[{i}]")
    frozen = freeze_map(m)
    return frozen if m.get("content") is not None else frozen.set("content", "")


def _messages(messages: Any) -> PVector[Any]:
    if isinstance(messages, str | Mapping):
        messages = (messages,)
    elif not isinstance(messages, Iterable):
        _fail("messages", _problem(messages, "a list of messages"), "pass [c.user('...'), ...]")
    return _checked(pvector([_as_message(m, i) for i, m in enumerate(messages)]))


#: Message vectors known to be checked, by identity: a request's messages are checked once,
#: at the door, however often the request is sent (a frozen vector never changes).
_CHECKED: dict[int, PVector[Any]] = {}


def _checked(msgs: PVector[Any]) -> PVector[Any]:
    if len(_CHECKED) >= 4096:
        _CHECKED.clear()
    _CHECKED[id(msgs)] = msgs
    return msgs


#: Requests that came through the door, by identity, while they live (a weak reference: the
#: table keeps nothing alive). The identical object sent again has nothing left to check.
_PASSED: dict[int, weakref.ref[Request]] = {}


def _passed(req: Request) -> Request:
    key = id(req)
    _PASSED[key] = weakref.ref(req, lambda _: _PASSED.pop(key, None))
    return req


def _recheck(req: Request) -> Request:
    """*req* with its messages checked: those set past the door (``req.set("messages", ...)``)."""
    msgs = req["messages"]
    fresh = _messages(msgs)
    if type(msgs) is PVector and all(a is b for a, b in zip(fresh, msgs, strict=True)):
        _checked(msgs)
        return req
    updated: Request = req.set("messages", fresh)
    return updated


def _secret_text(value: Any, path: str) -> str:
    text = reveal(value) if isinstance(value, Secret) else value
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            _fail(path, "holds non-ASCII bytes", "HTTP headers carry ASCII only")
    if not isinstance(text, str):
        _fail(path, _problem(text, "a string or a c.Secret"), "pass the key's text")
    problem = secret_problem(text, path)
    if problem is not None:
        raise ValidationError(problem, data={"path": path})
    return text


def _api_key(value: Any) -> Secret:
    text = _secret_text(value, "api_key")
    if text.startswith("Bearer "):
        _fail("api_key", "starts with 'Bearer '", "give the key alone; Conduit adds the scheme")
    return value if isinstance(value, Secret) else Secret(text)


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _headers(value: Any) -> PMap[str, Any]:
    if not isinstance(value, Mapping):
        _fail("headers", _problem(value, "a map"), "give headers like {'OpenAI-Project': 'proj_1'}")
    checked: dict[str, Any] = {}
    for name, raw in value.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            _fail("headers", "a header name is not an HTTP token", "use names like 'X-Api-Key'")
        text = _secret_text(raw, f"headers[{name!r}]")
        if isinstance(raw, Secret) or is_credential(name):
            checked[name] = raw if isinstance(raw, Secret) else Secret(text)
        else:
            checked[name] = text
    return pmap(checked)


def _given_connection(req: Request) -> dict[str, Any]:
    """*req*'s headers and base URL, to check again; a new ``user:password@`` in the base URL
    replaces the Basic credentials an earlier one became (they are not given twice)."""
    given = {k: req[k] for k in ("headers", "base_url") if k in req}
    base = given.get("base_url")
    if isinstance(base, str) and split_userinfo(base)[1] is not None and "headers" in given:
        given["headers"] = {
            k: v
            for k, v in given["headers"].items()
            if not (
                isinstance(k, str)
                and k.lower() == "authorization"
                and type(v) is Secret
                and (reveal(v) or "").startswith("Basic ")
            )
        }
    return given


def _unmasked(req: Request) -> bool:
    """Whether *req* holds a credential its door has not masked: a credential header that is
    not a :class:`Secret`, or a ``user:password@`` in its ``base_url``."""
    headers = peek(req, "headers")
    if headers is not None and (
        type(headers) is not PMap  # a plain (mutable) map: frozen and checked
        or any(
            not isinstance(k, str) or (is_credential(k) and type(v) is not Secret)
            for k, v in headers.items()
        )
    ):
        return True
    base = peek(req, "base_url")
    return base is not None and (
        not isinstance(base, str)
        or split_userinfo(base)[1] is not None
        or ("?" in base and type(base) is not MaskedURL and bool(query_secrets(base)))
    )


def _base_url(value: Any, headers: PMap[str, Any]) -> tuple[str, PMap[str, Any]]:
    if not isinstance(value, str):
        _fail("base_url", _problem(value, "a string"), "give the server's URL, e.g. http://host/v1")
    if value != value.strip() or not value.isprintable():
        _fail("base_url", "holds whitespace or control characters", "strip it, e.g. url.strip()")
    url, basic = split_userinfo(value)
    if query_secrets(url):  # sent whole; its repr (and so the request's) masks the key
        url = MaskedURL(url)
    if basic is None:
        return url, headers
    # Sent the way httpx sends URL userinfo (Basic auth), held as a Secret, never in the URL.
    if any(name.lower() == "authorization" for name in headers):
        fix = "give the credentials once: in the URL or in headers, not both"
        _fail("base_url", "holds user:password and headers holds Authorization too", fix)
    return url, headers.set("Authorization", Secret(basic))


def _connection(top: dict[str, Any]) -> dict[str, Any]:
    if "api_key" in top:
        top["api_key"] = _api_key(top["api_key"])
    if "token_provider" in top and not callable(top["token_provider"]):
        _fail(
            "token_provider",
            _problem(top["token_provider"], "a function"),
            "give a function returning a bearer token (e.g. azure.identity's "
            "get_bearer_token_provider(...)), not the token itself",
        )
    if "headers" in top:
        top["headers"] = _headers(top["headers"])
    if "base_url" in top:
        top["base_url"], headers = _base_url(top["base_url"], top.get("headers", pmap()))
        if headers:
            top["headers"] = headers
    return top


def connection(settings: Mapping[str, Any]) -> PMap[str, Any]:
    """Return *settings* (request keys to set) frozen, with the connection checked and masked.

    The door every request's connection goes through: ``api_key`` and credential headers
    (:func:`~conduit._data.is_credential`) become :class:`~conduit._data.Secret` values,
    ``user:password@`` in ``base_url`` becomes a masked ``Authorization: Basic`` header (what
    httpx sends for it), and a key with surrounding whitespace, a newline, a control or a
    non-ASCII character is refused, naming the problem and never the key.

    >>> connection({"model": "b", "api_key": "sk-b"})["api_key"]
    Secret('***')
    >>> connection({"base_url": "https://u:p@proxy.example/v1"})["base_url"]
    'https://proxy.example/v1'
    >>> connection({"api_key": "sk-b\\n"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    conduit.errors.ValidationError: api_key ends with a newline: strip it, e.g. open(path)...
    """
    top = {k: v for k, v in settings.items() if k in CONNECTION_KEYS and v is not None}
    rest = {k: v for k, v in settings.items() if k not in CONNECTION_KEYS}
    return freeze_map({**rest, **_connection(top)})


# Option names only a credential goes by. Options are sent in the request body, where a
# provider may quote them back in an error: such a name is refused with where the credential
# goes instead. (Names merely holding "key" or "token" are options too: prompt_cache_key,
# stop_token_ids.)
_CREDENTIAL_WORDS = frozenset(
    ("secret", "password", "passwd", "apikey", "credential", "credentials")
)
_CREDENTIAL_NAMES = frozenset(
    (
        "token",
        "access_token",
        "auth_token",
        "bearer_token",
        "id_token",
        "refresh_token",
        "session_token",
        "hf_token",
        "private_key",
        "authorization",
        "cookie",
        "bearer",
    )
)
_AWS_FIX = (
    "Bedrock signs with the AWS credentials of the environment: set AWS_ACCESS_KEY_ID and"
    " AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or AWS_PROFILE"
)


@functools.lru_cache(maxsize=1024)
def _credential_fix(name: str) -> str | None:
    """Where the credential an option called *name* would be goes instead, or None when
    *name* is no credential's (once per name: options are checked on every request).

    >>> _credential_fix("temperature"), _credential_fix("prompt_cache_key")
    (None, None)
    >>> _credential_fix("accessToken")
    "give a provider's key as api_key=..., any other credential as headers={...}"
    """
    words = name_words(name)
    if words[:1] == ["aws"]:
        return _AWS_FIX
    named = set(words) & _CREDENTIAL_WORDS or {"api", "key"} <= set(words)
    if named or "_".join(words) in _CREDENTIAL_NAMES:
        return "give a provider's key as api_key=..., any other credential as headers={...}"
    return None


def _check_options(opts: Mapping[str, Any]) -> None:
    """Refuse an option that is a credential (its name says so), naming it, never its value.

    >>> _check_options({"temperature": 0, "prompt_cache_key": "tenant-a"})
    >>> try:
    ...     _check_options({"aws_secret_access_key": "..."})
    ... except Exception as exc:
    ...     print(str(exc)[:73])
    options: 'aws_secret_access_key' is a credential, not a model option (opt
    """
    for name in opts:
        fix = _credential_fix(str(name))
        if fix is not None:
            what = f"{name!r} is a credential, not a model option (options are sent in the body)"
            _fail("options", what, fix)


def request(model: str, messages: Any = (), **options: Any) -> Request:
    """Return a new request for *model*; keyword arguments are sampling options.

    Connection settings (``base_url``, ``api_key``, ``headers``, ``timeout``), ``tools``,
    ``metadata`` and the mock script (``mock``) stay at the top level; everything else
    (``temperature``, ``max_tokens``, ...) goes under ``"options"``. A string message is a
    user message. The API key and credential headers are held masked and checked here
    (:func:`connection`).

    >>> req = request("gpt-4o-mini", [user("Hi")], temperature=0.2, api_key="sk-x")
    >>> req["model"], req["options"]["temperature"], req["api_key"]
    ('gpt-4o-mini', 0.2, Secret('***'))
    >>> request("m", "Hello")["messages"][0]["role"]
    'user'
    """
    if not isinstance(model, str) or not model:
        got = "an empty string" if model == "" else type(model).__name__
        raise ValidationError(f"model must be a non-empty string (like 'gpt-4o-mini'), got {got}")
    top = {k: v for k, v in options.items() if k in CONNECTION_KEYS and v is not None}
    opts = {k: v for k, v in options.items() if k not in CONNECTION_KEYS and v is not None}
    _check_options(opts)
    _connection(top)
    if "mock" in top:
        from conduit.script import as_script

        top["mock"] = as_script(top["mock"])
    fields: dict[str, Any] = {
        "model": model,
        "messages": _messages(messages),
        "options": freeze(opts),
        **{k: freeze(v) for k, v in top.items()},
    }
    return _passed(pmap(fields))


def as_request(req: Any) -> Request:
    """Return *req* frozen and checked: a plain ``dict`` is accepted anywhere a request is.

    A request that came through the door (or was checked before) comes back as the identical
    object; one changed with ``.set`` since is checked again (messages, key, headers, base
    URL) and comes back checked. Result keys of a plain context (``response``, ``parsed``,
    ...) are kept.

    >>> as_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]})["options"]
    pmap({})
    >>> as_request({"model": "m", "response": {"content": "Yo"}})["response"]["content"]
    'Yo'
    >>> req = request("m", "hi"); as_request(req) is req
    True
    """
    seen = _PASSED.get(id(req))
    if seen is not None and seen() is req:
        return cast(Request, req)  # the identical object, checked at the door: nothing to check
    if isinstance(req, PMap) and "options" in req and "messages" in req:
        frozen: Request = req
        if _CHECKED.get(id(req["messages"])) is not req["messages"]:  # set after the door
            frozen = _recheck(frozen)
        _check_options(frozen["options"])  # options set after the door (cached by name)
        if "api_key" in frozen and type(frozen["api_key"]) is not Secret:  # set after the door
            frozen = frozen.set("api_key", _api_key(frozen["api_key"]))
        if _unmasked(frozen):  # headers or a base URL with credentials set after the door
            frozen = frozen.update(connection(_given_connection(frozen)))
        return _passed(frozen)
    if not isinstance(req, Mapping) or "model" not in req:
        got = f"a map with keys {sorted(map(str, req))}" if isinstance(req, Mapping) else None
        raise ValidationError(
            "expected a request map with a 'model' key (build one with c.request), got "
            + (got or type(req).__name__)
        )
    plain = dict(req)
    model = plain.pop("model")
    messages = plain.pop("messages", ())
    options = plain.pop("options", None) or {}
    if not isinstance(options, Mapping):
        _fail("options", _problem(options, "a map"), "give options like {'temperature': 0}")
    extra = {k: plain.pop(k) for k in list(plain) if k not in CONNECTION_KEYS}
    built = request(model, messages, **{**options, **plain})
    return built.update(freeze(extra)) if extra else built


def set_model(model: str) -> Transform:
    """Return a transform setting ``"model"`` to *model* (the same object if it already is).

    >>> from toolz import pipe
    >>> pipe(request("small"), set_model("large"))["model"]
    'large'
    """

    def set_model(req: Request) -> Request:
        req = as_request(req)
        return req if req.get("model") == model else req.set("model", model)

    return set_model


def set_options(options: Mapping[str, Any]) -> Transform:
    """Return a transform merging sampling *options* into ``"options"``.

    >>> from toolz import pipe
    >>> pipe(request("m"), set_options({"temperature": 0}))["options"]["temperature"]
    0
    """
    _check_options(options)
    frozen = freeze(dict(options))

    def set_options(req: Request) -> Request:
        req = as_request(req)
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
        msgs = as_request(req)["messages"]
        added = _checked(msgs.append(_as_message(msg, len(msgs))))
        return as_request(req).set("messages", added)

    return add_message


def last_message(req: Request) -> PMap[str, Any] | None:
    """Return the last message of *req*, or None for an empty conversation.

    >>> last_message(request("m", ["a", "b"]))["content"]
    'b'
    """
    msgs = req.get("messages") or ()
    return freeze_map(msgs[-1]) if msgs else None


def _response_or_message(x: Mapping[str, Any]) -> Mapping[str, Any]:
    if type(x) is PMap and "response" in x:  # a context: the common case, first
        return x["response"]  # type: ignore[no-any-return]
    if not isinstance(x, Mapping):
        _fail("context", _problem(x, "a context or a message map"), "pass what a call returned")
    if "response" in x:
        return x["response"]  # type: ignore[no-any-return]
    if "role" in x:
        return x
    raise ValidationError(
        "this request has no response yet: pass it through a provider call "
        "(e.g. c.mock_call or c.openai_call) first"
    )


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
    calls = freeze(response.get("tool_calls") or ()) or None
    return _message("assistant", response.get("content") or "", {"tool_calls": calls}, "response")


def reply(ctx: Request, content: Any) -> Request:
    """Return the next request of a conversation: the response and a new user turn appended.

    The request keys carry on (model, options, middleware, connection, ``metadata``); the
    previous call's results (``response``, ``cost``, ``attempts``, ``sources``, ...) do not.

    >>> ctx = request("m", ["Hi"]).set("response", freeze({"role": "assistant", "content": "Yo"}))
    >>> [m["content"] for m in reply(ctx, "How are you?")["messages"]]
    ['Hi', 'Yo', 'How are you?']
    >>> sorted(reply(ctx.set("cost", 0.1), "again"))
    ['messages', 'model', 'options']
    >>> ctx = {"model": "m", "messages": ["Hi"], "response": {"content": "Yo"}}
    >>> reply(ctx, "next")["messages"][1]["content"]
    'Yo'
    """
    ctx = as_request(ctx)
    resp = _response_or_message(ctx)
    turn = _as_message(content, len(ctx["messages"]) + 1)
    msgs = _checked(ctx["messages"].append(response_message(resp)).append(turn))
    kept = {k: v for k, v in ctx.items() if k in REQUEST_KEYS}
    kept["messages"] = msgs
    return pmap(kept)
