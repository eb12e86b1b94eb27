"""Readable display of requests, contexts, responses and messages at a prompt.

``show(x)`` returns the text; in an interactive session (the plain REPL or IPython) Conduit's
maps print that way by themselves: roles, truncated content, options, the middleware on a
request, token usage and cost, with secrets masked (an API key, a credential header or a
password in a URL prints as ``***``). Set
``CONDUIT_PLAIN_REPR=1`` to keep pyrsistent's own repr.
"""

from __future__ import annotations

import builtins
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pyrsistent import PMap, PVector

from conduit._data import mask_url, masked

__all__ = ["install", "show"]

WIDTH = 100


def _clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _content(value: Any) -> str:
    if isinstance(value, str):
        return value
    parts = []
    for block in value or ():
        if block.get("type") == "text":
            parts.append(block["text"])
        elif block.get("type") == "image":
            src = block.get("source") or {}
            parts.append(f"[image {src.get('url') or src.get('media_type', '')}]")
    return " ".join(parts)


def _call(call: Mapping[str, Any]) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in sorted((call.get("arguments") or {}).items()))
    return f"→ {call['name']}({args})"


def _message_line(msg: Mapping[str, Any]) -> str:
    text = _content(msg.get("content", ""))
    calls = msg.get("tool_calls") or ()
    if calls:
        text = (text + " " if text else "") + " ".join(_call(c) for c in calls)
    role = msg["role"] + (f" [{msg['tool_call_id']}]" if msg.get("tool_call_id") else "")
    return f"  {role:<10} {_clip(text, WIDTH - 13)}"


def _usage(resp: Mapping[str, Any]) -> str:
    u = resp.get("usage") or {}
    bits = [str(resp.get("stop_reason") or "?")]
    if u:
        bits.append(f"{u.get('input_tokens', 0)} in / {u.get('output_tokens', 0)} out tokens")
        if u.get("cache_read_tokens"):
            bits.append(f"{u['cache_read_tokens']} cached")
    return " · ".join(bits)


def _head(x: Mapping[str, Any], kind: str) -> str:
    bits = [f"{kind} {x.get('model', '?')}", f"{len(x.get('messages') or ())} messages"]
    opts = x.get("options") or {}
    if opts:
        bits.append(", ".join(f"{k}={_clip(repr(v), 30)}" for k, v in sorted(opts.items())))
    mws = x.get("middleware") or ()
    if mws:
        bits.append("middleware: " + " → ".join(getattr(m, "name", "?") for m in mws))
    if x.get("tools"):
        bits.append("tools: " + ", ".join(t["name"] for t in x["tools"]))
    if isinstance(x.get("base_url"), str):
        bits.append(f"at {mask_url(x['base_url'])}")
    if x.get("api_key") is not None:
        bits.append("api_key=***")
    return "<" + " · ".join(bits) + ">"


def _kind(x: Any) -> str | None:
    if not isinstance(x, Mapping):
        if isinstance(x, Sequence) and not isinstance(x, str) and x:
            return "messages" if all(_kind(m) == "message" for m in x) else None
        return None
    if "model" in x and "messages" in x:
        return "context" if "response" in x else "request"
    if x.get("role") == "assistant" and "stop_reason" in x:
        return "response"
    if x.get("role") in ("system", "user", "assistant", "tool") and "content" in x:
        return "message"
    if {"method", "url", "headers", "body"} <= set(x):
        return "wire"
    return None


def _wire(x: Mapping[str, Any], width: int = 2000) -> str:
    """A wire request (``c.wire``) as an HTTP exchange would print it: the request line, the
    headers (secrets already masked) and the body as indented JSON, cut at *width* characters."""
    import json

    lines = [f"{x['method']} {x['url']}"]
    lines += [f"{k}: {v}" for k, v in x["headers"].items()]
    if x.get("missing"):
        lines.append(f"(not sendable: {x['missing']})")
    body = json.dumps(x["body"], indent=2, ensure_ascii=False, default=str)
    if len(body) > width:
        body = body[:width] + f"\n… {len(body) - width} more characters"
    return "\n".join([*lines, "", body])


def show(x: Any, max_messages: int = 12) -> str:
    """Return a readable summary of a request, context, response, message or message list,
    or of a wire request (``c.wire``): its request line, headers and JSON body.

    >>> import conduit as c
    >>> print(show(c.request("gpt-4o-mini", [c.system("Be brief."), c.user("Hi")],
    ...                      api_key="sk-secret", temperature=0.2)))
    <request gpt-4o-mini · 2 messages · temperature=0.2 · api_key=***>
      system     Be brief.
      user       Hi
    """
    kind = _kind(x)
    if kind is None:
        return repr(masked(x))
    if kind == "wire":
        return _wire(x)
    if kind == "message":
        return _message_line(x).strip()
    if kind == "messages":
        return "\n".join(_message_line(m) for m in x)
    if kind == "response":
        return f"<response {x.get('model', '?')} · {_usage(x)}>\n" + _message_line(x)
    lines = [_head(x, kind)]
    msgs = list(x.get("messages") or ())
    if len(msgs) > max_messages:
        lines.append(f"  … {len(msgs) - max_messages} earlier messages")
        msgs = msgs[-max_messages:]
    lines += [_message_line(m) for m in msgs]
    if kind == "context":
        resp = x["response"]
        extra = [f"${x['cost']:.6f}"] if x.get("cost") is not None else []
        extra += ["cache hit"] if x.get("cache_hit") else []
        extra += [f"{x['attempts']} attempts"] if x.get("attempts", 1) > 1 else []
        lines.append(f"  ⇒ response  [{' · '.join([_usage(resp), *extra])}]")
        lines.append(_message_line(resp))
        if x.get("sources"):
            lines.append(f"  sources: {len(x['sources'])} passages")
        if "parsed" in x:
            lines.append(f"  parsed: {_clip(repr(x['parsed']), WIDTH - 10)}")
    return "\n".join(lines)


def _ipython_printer(obj: Any, p: Any, cycle: bool) -> None:
    p.text(show(obj))


def _displayhook(previous: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def hook(value: Any) -> Any:
        if isinstance(value, PMap | PVector) and _kind(value):
            builtins._ = None  # type: ignore[attr-defined]
            sys.stdout.write(show(value) + "\n")
            builtins._ = value  # type: ignore[attr-defined]
            return None
        return previous(value)

    hook.conduit = True  # type: ignore[attr-defined]
    return hook


def install() -> bool:
    """Make Conduit's maps display readably in this session (IPython, or the plain REPL).

    Done by ``import conduit`` in an interactive session unless ``CONDUIT_PLAIN_REPR`` is set;
    returns whether anything was installed.
    """
    done = False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        fmt = shell.display_formatter.formatters["text/plain"]
        fmt.for_type(PMap, _ipython_printer)
        fmt.for_type(PVector, _ipython_printer)
        done = True
    if not getattr(sys.displayhook, "conduit", False) and hasattr(sys, "ps1"):
        sys.displayhook = _displayhook(sys.displayhook)
        done = True
    return done


def _auto() -> None:
    if os.environ.get("CONDUIT_PLAIN_REPR"):
        return
    if hasattr(sys, "ps1") or "IPython" in sys.modules:
        install()
