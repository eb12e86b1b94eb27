"""Freezing plain data at the door, and the masked value that holds secrets."""

from __future__ import annotations

import base64
import logging
import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

import attrs
from pyrsistent import PMap, PVector, pmap, pvector

__all__ = [
    "MaskedURL",
    "Secret",
    "basic_forms",
    "freeze",
    "freeze_map",
    "hide_url_secrets_in_logs",
    "is_credential",
    "mask_url",
    "masked",
    "name_words",
    "peek",
    "query_secrets",
    "request_secrets",
    "reveal",
    "secret_problem",
    "split_userinfo",
    "thaw",
    "is_secret_name",
    "url_secrets",
    "userinfo_secrets",
]


_SCALARS = frozenset({str, int, float, bool, type(None), bytes})


def freeze(value: Any) -> Any:
    """Return *value* with every mapping made a ``pmap`` and every list or tuple a ``pvector``.

    Already-frozen data comes back as the identical object, so freezing at the door is free.

    >>> freeze({"a": [1, (2, {"b": 3})]})["a"][1][1]["b"]
    3
    >>> v = freeze([1, 2]); freeze(v) is v
    True
    """
    if type(value) in _SCALARS:
        return value
    if isinstance(value, PMap):
        if all(_is_frozen(v) for v in value.values()):
            return value
        return pmap({k: freeze(v) for k, v in value.items()})
    if isinstance(value, PVector):
        if all(_is_frozen(v) for v in value):
            return value
        return pvector(freeze(v) for v in value)
    if isinstance(value, Mapping):
        return pmap({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return pvector(freeze(v) for v in value)
    return value


def freeze_map(value: Mapping[str, Any]) -> PMap[str, Any]:
    """Return the mapping *value* frozen (typed twin of :func:`freeze` for maps).

    >>> freeze_map({"a": [1]})["a"][0]
    1
    """
    frozen: PMap[str, Any] = freeze(value)
    return frozen


def _is_frozen(value: Any) -> bool:
    if type(value) in _SCALARS:
        return True
    if isinstance(value, PMap):
        return all(_is_frozen(v) for v in value.values())
    if isinstance(value, PVector):
        return all(_is_frozen(v) for v in value)
    return not isinstance(value, Mapping | list | tuple)


def peek(m: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """Return ``m[key]``, or *default* when absent: ``pmap.get`` for hot paths.

    A pmap's ``get`` raises and catches a ``KeyError`` inside pyrsistent on a miss, which costs
    twice a hit; a membership test first does not.

    >>> peek(freeze({"a": 1}), "a"), peek(freeze({"a": 1}), "b", 0)
    (1, 0)
    """
    return m[key] if key in m else default  # noqa: SIM401 (the point of this function)


def thaw(value: Any) -> Any:
    """Return plain ``dict``/``list`` data for *value* (the JSON boundary); secrets stay masked.

    >>> thaw(freeze({"a": [1, {"b": 2}]}))
    {'a': [1, {'b': 2}]}
    """
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, PVector | list | tuple):
        return [thaw(v) for v in value]
    return value


@attrs.frozen
class Secret:
    """A secret string (an API key) whose ``repr`` and ``str`` never show it.

    >>> key = Secret("sk-very-secret")
    >>> key
    Secret('***')
    >>> f"{key}"
    '***'
    >>> reveal(key)
    'sk-very-secret'
    """

    value: str = attrs.field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"


class MaskedURL(str):
    """A URL holding a credential in its query (``?key=...``), kept whole for sending (it is a
    ``str``) whose ``repr`` masks the credential, as ``repr(request)`` shows it.

    >>> url = MaskedURL("https://proxy.example/v1?key=sk-1&team=a")
    >>> url, url + "/chat"
    ('https://proxy.example/v1?key=***&team=a', 'https://proxy.example/v1?key=sk-1&team=a/chat')
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(mask_url(str(self)))


def reveal(secret: Secret | str | None) -> str | None:
    """Return the plain text of *secret* (only the HTTP shell should call this).

    >>> reveal(None) is None
    True
    """
    return secret.value if isinstance(secret, Secret) else secret


# Header (or map key) names whose values are credentials: Authorization, Proxy-Authorization,
# x-api-key, api-key, Cookie, x-auth-token, client_secret, password, ...
_CREDENTIAL = re.compile(r"auth|key|token|secret|cookie|passw|credential|session", re.IGNORECASE)


def is_credential(name: str) -> bool:
    """Return True when a header or field called *name* holds a credential.

    >>> [is_credential(h) for h in ("Authorization", "x-api-key", "Cookie", "OpenAI-Organization")]
    [True, True, True, False]
    """
    return _CREDENTIAL.search(name) is not None


#: The words that make a query parameter or command-line option a credential, matched whole
#: (``api_key``, ``subscription-key``, ``accessToken``), not inside other words (``keyword``,
#: ``--tokens``); a name ending in file, path or dir names where a secret is, not the secret.
_SECRET_WORDS = frozenset(
    (
        *("key", "keys", "apikey", "token", "auth", "authorization", "bearer", "jwt"),
        *("password", "passwd", "passphrase", "secret", "credential", "credentials"),
        *("session", "cookie", "sig", "signature", "code"),
    )
)
_NOT_SECRET = frozenset(("file", "path", "dir"))


def is_secret_name(name: str) -> bool:
    """Return True when a query parameter or an option called *name* holds a credential.

    >>> [is_secret_name(n) for n in ("key", "api_key", "accessToken", "X-Goog-Api-Key")]
    [True, True, True, True]
    >>> [is_secret_name(n) for n in ("keyword", "tokens", "auth-file", "page")]
    [False, False, False, False]
    """
    words = name_words(name)
    return bool(words) and any(w in _SECRET_WORDS for w in words) and words[-1] not in _NOT_SECRET


def name_words(name: str) -> list[str]:
    """The lower-case words of a name, however it is written (``--api-key``, ``accessToken``,
    ``X-Goog-Api-Key``).

    >>> name_words("--api-key"), name_words("accessToken")
    (['api', 'key'], ['access', 'token'])
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name.strip("-"))
    return [w for w in re.split(r"[\s_.\-]+", spaced.lower()) if w]


def secret_problem(value: str, name: str = "api_key") -> str | None:
    """Return what is wrong with the secret text *value* as an HTTP header, or None if nothing.

    The answer names the problem and its fix, never the secret (nor any part of it).

    >>> secret_problem("sk-abc") is None
    True
    >>> secret_problem("sk-abc\\n")
    'api_key ends with a newline: strip it, e.g. open(path).read().strip()'
    >>> secret_problem(" sk-abc")
    'api_key has whitespace at its start: strip it, e.g. key.strip()'
    >>> secret_problem("sk-ab\N{NO-BREAK SPACE}c", "x-api-key")  # doctest: +ELLIPSIS
    'x-api-key holds a non-ASCII character (NO-BREAK SPACE) at position 5: HTTP headers ...'
    """
    if value.isascii() and value.isprintable() and value == value.strip():
        return None
    if value.endswith(("\n", "\r")):
        return f"{name} ends with a newline: strip it, e.g. open(path).read().strip()"
    if value != value.strip():
        trimmed = (("start", value.lstrip()), ("end", value.rstrip()))
        ends = [end for end, rest in trimmed if rest != value]
        return f"{name} has whitespace at its {' and '.join(ends)}: strip it, e.g. key.strip()"
    for i, char in enumerate(value):
        if not char.isascii():
            what = unicodedata.name(char, f"U+{ord(char):04X}")
            fix = "HTTP headers carry ASCII only; copy it again"
            return f"{name} holds a non-ASCII character ({what}) at position {i}: {fix}"
        if not char.isprintable():
            fix = "a header is printable text; copy it again"
            return f"{name} holds a control character (U+{ord(char):04X}) at position {i}: {fix}"
    raise AssertionError("unreachable")  # pragma: no cover


def mask_url(url: str) -> str:
    """Return *url* with any ``user:password@`` replaced by ``***@``, for display.

    >>> mask_url("https://bob:hunter2@proxy.example/v1")
    'https://***@proxy.example/v1'
    >>> mask_url("http://localhost:11434/v1")
    'http://localhost:11434/v1'
    >>> mask_url("https://mcp.example/sse?key=sk-1&team=a")
    'https://mcp.example/sse?key=***&team=a'
    """
    url = _mask_userinfo(url)
    head, mark, query = url.partition("?")
    if not mark or not _query_values(query):
        return url
    query, hash_, fragment = query.partition("#")
    pairs = [p.partition("=") for p in query.split("&")]
    shown = "&".join(f"{n}=***" if _secret_param(n, v) else n + eq + v for n, eq, v in pairs)
    return f"{head}?{shown}{hash_}{fragment}"


def _authority(rest: str) -> tuple[str, str, str]:
    """*rest* (a URL after its ``scheme://``) as (authority, ``"/"`` or ``""``, path).

    A password holding an unencoded ``/`` (``bob:pa/ss@host``: httpx refuses it as an invalid
    port, quoting the password) is read as userinfo: when what precedes the first ``/`` is no
    ``host:port``, the authority runs to the last ``@`` before the query.

    >>> _authority("bob:pa/ss@host:8080/v1")
    ('bob:pa/ss@host:8080', '/', 'v1')
    >>> _authority("host:8080/v1/@scope/pkg")
    ('host:8080', '/', 'v1/@scope/pkg')
    """
    authority, slash, path = rest.partition("/")
    if "@" in authority or ":" not in authority or authority.startswith("["):
        return authority, slash, path
    port = authority.rpartition(":")[2]
    head = re.split(r"[\s?#]", rest, maxsplit=1)[0]
    if port.isdigit() or "@" not in head:
        return authority, slash, path
    cut = head.rindex("@")
    host, slash, path = rest[cut + 1 :].partition("/")
    return f"{rest[:cut]}@{host}", slash, path


def _mask_userinfo(text: str) -> str:
    """*text* with the ``user:password@`` of the URL it starts with (or holds) as ``***@``."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    authority, slash, path = _authority(rest)
    if "@" not in authority:
        return text
    return f"{scheme}://***@{authority.rpartition('@')[2]}{slash}{path}"


def _secret_param(name: str, value: str) -> bool:
    """Whether a query parameter ``name=value`` holds a credential (a value under a
    credential's name)."""
    return bool(value) and is_secret_name(unquote(name))


def _query_values(query: str) -> list[str]:
    """The values of a URL query's credential-named parameters (``?key=...``), as written."""
    pairs = (part.partition("=") for part in query.partition("#")[0].split("&"))
    return [value for name, _, value in pairs if _secret_param(name, value)]


def split_userinfo(url: str) -> tuple[str, str | None]:
    """Return (*url* without ``user:password@``, the ``Authorization: Basic`` value it stands
    for, or None): what httpx would send for it, without a URL that logs the password.

    >>> split_userinfo("http://bob:p%40ss@proxy:8080/v1")
    ('http://proxy:8080/v1', 'Basic Ym9iOnBAc3M=')
    >>> split_userinfo("http://localhost:11434/v1")
    ('http://localhost:11434/v1', None)
    """
    scheme, sep, rest = url.partition("://")
    authority, slash, path = _authority(rest)
    if not sep or "@" not in authority:
        return url, None
    userinfo, _, host = authority.rpartition("@")
    user, _, password = userinfo.partition(":")
    pair = f"{unquote(user)}:{unquote(password)}".encode()
    return f"{scheme}://{host}{slash}{path}", "Basic " + base64.b64encode(pair).decode("ascii")


def request_secrets(req: Mapping[str, Any]) -> list[str]:
    """Return the secrets *req* holds, for sinks that mask text they did not build (a batch
    checkpoint, the call log): its key, its credential headers (a Basic value's password
    too) and its base URL's credentials, each as given and stripped.

    >>> request_secrets({"api_key": Secret("sk-1"), "base_url": "https://h/v1?key=k-2"})
    ['sk-1', 'k-2']
    """
    found = [reveal(req.get("api_key"))]
    for name, value in (req.get("headers") or {}).items():
        if isinstance(value, Secret) or is_credential(str(name)):
            found += [reveal(value), *_basic_password(reveal(value))]
    found += url_secrets(str(req.get("base_url") or ""))
    plain = [s for raw in found if isinstance(raw, str) for s in (raw, raw.strip()) if s]
    return list(dict.fromkeys(plain))


def _basic_password(header: Any) -> list[str]:
    """The password inside an ``Authorization: Basic`` value (a URL's ``user:password``)."""
    scheme, _, token = str(header).partition(" ")
    if scheme.lower() != "basic":
        return []
    try:
        return [base64.b64decode(token).decode().partition(":")[2]]
    except ValueError:
        return []


def basic_forms(url: str) -> list[str]:
    """Return the ``Authorization: Basic`` token a URL's ``user:password@`` is sent as (what a
    server quoting the header shows), or none.

    >>> basic_forms("http://bob:pw@h/v1"), basic_forms("http://h/v1")
    (['Ym9iOnB3'], [])
    """
    basic = split_userinfo(url)[1]
    return [basic.partition(" ")[2]] if basic else []


def query_secrets(url: str) -> list[str]:
    """Return the values of a URL's credential-named query parameters (``?key=...``), as
    written, decoded, and percent-encoded as httpx sends them (a space as ``%20``).

    >>> query_secrets("https://h/mcp?api_key=sk%2B1&v=2"), query_secrets("https://h/v1?v=2")
    (['sk%2B1', 'sk+1'], [])
    >>> query_secrets("https://h/v1?key=a b")
    ['a b', 'a%20b']
    """
    found: list[str] = []
    for value in _query_values(url.partition("?")[2]):
        for form in (value, unquote(value), quote(value, safe=_QUERY_SAFE)):
            if form not in found:
                found.append(form)
    return found


# What httpx leaves as it is in a query (RFC 3986's sub-delims, ":@/?" and a "%" already there).
_QUERY_SAFE = "!$&'()*+,;=:@/?%"


def url_secrets(url: str) -> list[str]:
    """Return the secrets a URL holds: its ``user:password@`` (:func:`userinfo_secrets`) and
    the values of credential-named query parameters (``?key=...``), as written and decoded.

    >>> url_secrets("https://h/mcp?api_key=sk%2B1&v=2")
    ['sk%2B1', 'sk+1']
    """
    return userinfo_secrets(url) + query_secrets(url)


def userinfo_secrets(url: str) -> list[str]:
    """Return the secrets a URL's ``user:password@`` holds, as written and decoded, whole and
    in parts, for masking in text that may quote them (none when it has no userinfo).

    >>> userinfo_secrets("https://bob:p%40ss@h/v1"), userinfo_secrets("https://h/v1")
    (['bob:p%40ss', 'bob:p@ss', 'bob', 'p@ss', 'bob', 'p%40ss'], [])
    """
    authority = _authority(url.partition("://")[2])[0]
    if "@" not in authority:
        return []
    raw = authority.rpartition("@")[0]
    pair = unquote(raw)
    return [raw, pair, *pair.split(":", 1), *raw.split(":", 1)]


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")


def masked(value: Any) -> Any:
    """Return *value* (plain or frozen data) with credentials masked, for display only.

    A string under a credential-named key (:func:`is_credential`) becomes a :class:`Secret`, a
    URL's ``user:password@`` becomes ``***@`` and its credential-named query parameters
    ``name=***``; with nothing to mask, *value* itself comes back.

    >>> masked({"api_key": "sk-1", "base_url": "https://u:p@h/v1", "n": [1]})
    {'api_key': Secret('***'), 'base_url': 'https://***@h/v1', 'n': [1]}
    >>> v = freeze({"model": "m"}); masked(v) is v
    True
    """
    if isinstance(value, Mapping):
        items = {k: _mask_field(k, v) for k, v in value.items()}
        same = all(items[k] is v for k, v in value.items())
        return value if same else items
    if isinstance(value, PVector | list | tuple):
        parts = [masked(v) for v in value]
        return value if all(a is b for a, b in zip(parts, value, strict=True)) else parts
    if isinstance(value, str) and ("@" in value or "?" in value) and "://" in value:
        # a URL, whole: its userinfo and query keys; text quoting a URL: its userinfo only
        return mask_url(value) if _URL.fullmatch(value) else _mask_userinfo(value)
    return value


# A URL inside a log line: it ends at whitespace, a quote or a bracket (``for url '...'``,
# ``(https://...)``), which stay in the line.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>()\[\]{}]+")


def _mask_urls_in(text: str) -> str:
    """*text* with the credential query parameters of the URLs it quotes masked.

    >>> _mask_urls_in("for url 'https://h/v1?key=sk-1&a=2' (then retried)")
    "for url 'https://h/v1?key=***&a=2' (then retried)"
    """
    if "?" not in text or "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda found: mask_url(found.group()), text)


class _URLSecretsFilter(logging.Filter):
    """Masks the credential query parameters of URLs in a library's log lines (httpx logs
    every request's URL at INFO, as does httpx2, the MCP SDK's client; the SDK logs the
    endpoint it connects to at DEBUG, and errors with their traceback, whose text quotes the
    URL). A record holding none is left exactly as it was."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record: logging's own handler reports it
            return True
        shown = _mask_urls_in(text)
        if shown != text:
            record.msg, record.args = shown, ()
        if record.exc_info and record.exc_info[1] is not None:
            trace = record.exc_text or logging.Formatter().formatException(record.exc_info)
            hidden = _mask_urls_in(trace)
            if hidden != trace:  # the traceback as text, masked: the exception object is not kept
                record.exc_text, record.exc_info = hidden, None
        return True


_URL_LOGGERS = (
    "httpx",
    "httpx2",
    "mcp.client.sse",
    "mcp.client.streamable_http",
    "mcp.client.auth.oauth2",
)
_url_filter = _URLSecretsFilter()


def hide_url_secrets_in_logs() -> None:
    """Mask credential query parameters (``?key=...``) in the URLs httpx and the MCP SDK log,
    from now on in this process. Conduit calls it the first time it is given such a URL (a
    process that never is keeps those loggers as they are); calling it again does nothing.

    >>> hide_url_secrets_in_logs(); hide_url_secrets_in_logs()
    >>> logging.getLogger("httpx").filters.count(_url_filter)
    1
    """
    for name in _URL_LOGGERS:
        found = logging.getLogger(name)
        if _url_filter not in found.filters:
            found.addFilter(_url_filter)


def _mask_field(key: Any, value: Any) -> Any:
    if isinstance(key, str) and isinstance(value, str | bytes) and is_credential(key):
        return Secret("")
    return masked(value)
