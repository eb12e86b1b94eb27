"""Tools from Model Context Protocol servers, as plain Conduit tool maps.

``with c.mcp_tools(["python", "server.py"]) as tools:`` starts the server (a stdio subprocess,
or a session with a streamable HTTP endpoint), lists its tools and yields them as tool maps
whose ``fn`` calls the server; leaving the block closes the session and stops the process.
``async with c.amcp_tools(...)`` is the async twin, for ``c.aagent``.

The sync tools talk to a private event loop in a background thread, so they work from plain
code, from ``c.agent`` and from ``c.aagent`` (which runs sync tools in worker threads). A
result the server marks ``isError``, a protocol error, a dead server or a timeout make the
tool raise :class:`~conduit.errors.ToolError`: the agent loop turns that into an error tool
result the model can recover from. The parsing of servers, names and results is pure.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import hashlib
import json
import os
import re
import shlex
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

from pyrsistent import PMap

from conduit._data import (
    freeze,
    freeze_map,
    hide_url_secrets_in_logs,
    is_credential,
    is_secret_name,
    mask_url,
    query_secrets,
    split_userinfo,
    thaw,
    url_secrets,
)
from conduit.errors import (
    ConduitError,
    ConnectionError,
    TimeoutError,
    ToolError,
    ValidationError,
    redact,
    redact_error,
)
from conduit.tools import tool

if TYPE_CHECKING:
    from mcp import ClientSession

__all__ = ["amcp_tools", "decode_result", "mcp_tools", "server_spec", "tool_name"]

_T = TypeVar("_T")
_VALID_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_INSTALL = 'pip install "conduit-llm[mcp]"'


# --- pure: servers, names, results -----------------------------------------------------------


def server_spec(
    server: Any,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> PMap[str, Any]:
    """Return the map describing how to reach the MCP server *server*.

    *server* is a command (a list, or one string split like a shell would), an
    ``http(s)://`` URL of a streamable HTTP endpoint, or a map in the ``mcpServers`` format of
    MCP clients' config files (``command``/``args``/``env``/``cwd``, or ``url``/``headers``).

    >>> spec = server_spec("python server.py --quiet")
    >>> spec["transport"], spec["command"], list(spec["args"])
    ('stdio', 'python', ['server.py', '--quiet'])
    >>> server_spec("https://example.com/mcp", headers={"Authorization": "Bearer t"})["transport"]
    'http'
    >>> server_spec({"command": "uvx", "args": ["mcp-server-time"]})["command"]
    'uvx'
    """
    if isinstance(server, Mapping):
        return _from_config(server, env=env, cwd=cwd, headers=headers)
    if isinstance(server, str) and re.match(r"https?://", server):
        if env is not None or cwd is not None:
            raise ValidationError("env and cwd are for a stdio command, not an HTTP server")
        return freeze_map({"transport": "http", "url": server, "headers": dict(headers or {})})
    argv = shlex.split(server) if isinstance(server, str) else server
    if isinstance(argv, bytes) or not isinstance(argv, Sequence) or not argv:
        raise ValidationError(
            f"an MCP server is a command (['python', 'server.py']) or an http(s):// URL, "
            f"got {server!r}"
        )
    if not all(isinstance(a, str | os.PathLike) for a in argv):
        raise ValidationError(f"a server command is a list of strings, got {server!r}")
    if headers is not None:
        raise ValidationError("headers are for an HTTP server; pass env= to a stdio command")
    return freeze_map(
        {
            "transport": "stdio",
            "command": os.fspath(argv[0]),
            "args": [os.fspath(a) for a in argv[1:]],
            "env": None if env is None else dict(env),
            "cwd": None if cwd is None else os.fspath(cwd),
        }
    )


def _from_config(
    config: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None,
    cwd: str | os.PathLike[str] | None,
    headers: Mapping[str, str] | None,
) -> PMap[str, Any]:
    if "url" in config:
        merged = {**(config.get("headers") or {}), **(headers or {})}
        return server_spec(config["url"], headers=merged, env=env, cwd=cwd)
    if "command" not in config:
        raise ValidationError(f"an MCP server map needs 'command' or 'url', got {sorted(config)}")
    merged_env = None if env is None and "env" not in config else {**config["env"], **(env or {})}
    argv = [config["command"], *config.get("args", ())]
    return server_spec(argv, env=merged_env, cwd=cwd or config.get("cwd"))


def describe_server(spec: Mapping[str, Any]) -> str:
    """Return how errors name the server of *spec*: its command line, or its URL masked.

    >>> describe_server(server_spec(["python", "my server.py"]))
    "python 'my server.py'"
    >>> describe_server(server_spec("https://bob:pw@example.com/mcp"))
    'https://***@example.com/mcp'
    """
    if spec["transport"] == "http":
        return mask_url(spec["url"])
    return str(redact(shlex.join([spec["command"], *spec["args"]]), _arg_secrets(spec["args"])))


def _arg_secrets(args: Sequence[str]) -> list[str]:
    """The secrets a server's command line holds: the value of a credential-named option
    (``--api-key VALUE``, ``--token=VALUE``), of a ``NAME=VALUE`` setting (``docker -e
    GITHUB_PERSONAL_ACCESS_TOKEN=...``), of a ``Name: value`` header (``mcp-remote --header
    "Authorization: Bearer ..."``), and what URLs in it hold (``?key=``, ``user:pw@``).

    >>> _arg_secrets(["server.py", "--api-key", "sk-1", "--token=t2", "-v", "https://h/?key=k3"])
    ['sk-1', 't2', 'k3']
    >>> _arg_secrets(["-e", "GITHUB_TOKEN=ghp_1", "--header", "Authorization: Bearer b2"])
    ['ghp_1', 'Bearer b2', 'b2']
    >>> _arg_secrets(["--tokens", "4096", "--auth-file", "a.json", "--keyword", "x"])
    []
    """
    found: list[str] = []
    for i, arg in enumerate(args):
        if "://" in arg:
            found += url_secrets(arg)
        name, colon, value = arg.partition(":")
        if colon and value.strip() and is_credential(name) and " " not in name.strip():
            value = value.strip()  # a header: its value, and a scheme's token
            found += [value, value.partition(" ")[2]] if " " in value else [value]
            continue
        name, eq, value = arg.partition("=")
        if eq and value and is_secret_name(name):
            found.append(value)
        elif (
            arg.startswith("-")
            and not eq
            and is_secret_name(arg)
            and i + 1 < len(args)
            and not args[i + 1].startswith("-")
        ):
            found.append(args[i + 1])
    return found


def tool_name(name: str, prefix: str = "") -> str:
    """Return the name a model can call for the MCP tool *name*: *prefix* then *name*.

    Providers accept ``[a-zA-Z0-9_-]{1,64}``; other characters become ``_`` and a name that had
    to change (or is too long) ends with a short hash of the original, so two tools never meet.

    >>> tool_name("add"), tool_name("add", prefix="calc_")
    ('add', 'calc_add')
    >>> tool_name("files.read")
    'files_read_a3da5b'
    >>> len(tool_name("x" * 100))
    64
    """
    full = prefix + name
    if _VALID_NAME.fullmatch(full):
        return full
    digest = hashlib.sha1(full.encode()).hexdigest()[:6]
    clean = re.sub(r"[^a-zA-Z0-9_-]", "_", full)
    return f"{clean[: 64 - len(digest) - 1]}_{digest}"


def decode_tool(wire: Mapping[str, Any], prefix: str = "") -> PMap[str, Any]:
    """Return the tool map (without ``fn``) for an MCP ``Tool`` as sent on the wire.

    >>> spec = decode_tool({"name": "add", "description": "Add.", "inputSchema": {
    ...     "type": "object", "properties": {"a": {"type": "integer"}}}}, prefix="calc_")
    >>> spec["name"], spec["description"], list(spec["parameters"]["properties"])
    ('calc_add', 'Add.', ['a'])
    """
    schema = dict(wire.get("inputSchema") or {})
    parameters = {"type": "object", "properties": {}, **schema}
    return freeze_map(
        {
            "name": tool_name(wire["name"], prefix),
            "description": wire.get("description") or wire.get("title") or wire["name"],
            "parameters": parameters,
        }
    )


def decode_result(wire: Mapping[str, Any], name: str = "tool") -> Any:
    """Return what an MCP ``CallToolResult`` (as sent on the wire) tells the model.

    Text blocks are joined; images, audio and binary resources are described in a line; a text
    resource gives its text. Text that is a JSON object or array comes back as that value, so
    the model reads it as compact JSON; with no text, ``structuredContent`` comes back. A
    result marked ``isError`` raises :class:`~conduit.errors.ToolError` with the server's text.

    >>> decode_result({"content": [{"type": "text", "text": "3"}],
    ...                "structuredContent": {"result": 3}})
    '3'
    >>> decode_result({"content": [{"type": "text", "text": '{\\n  "n": 1\\n}'}]})
    {'n': 1}
    >>> decode_result({"content": [], "structuredContent": {"n": 1}})
    {'n': 1}
    >>> decode_result({"content": [{"type": "image", "data": "aGk=", "mimeType": "image/png"}]})
    '[image: image/png, 2 bytes]'
    >>> decode_result({"content": [{"type": "text", "text": "no such city"}], "isError": True})
    Traceback (most recent call last):
    conduit.errors.ToolError: no such city
    """
    text = "\n".join(_block_text(block) for block in wire.get("content") or ())
    if wire.get("isError"):
        raise ToolError(text or f"the MCP tool {name} reported an error", tool_name=name)
    if not text and wire.get("structuredContent") is not None:
        return wire["structuredContent"]
    parsed = _json_or_none(text) if text[:1] in ("{", "[") else None
    return parsed if isinstance(parsed, dict | list) else text


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _block_text(block: Mapping[str, Any]) -> str:
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind in ("image", "audio"):
        return f"[{kind}: {block.get('mimeType', '?')}, {_size(block.get('data', ''))} bytes]"
    if kind == "resource":
        resource = block.get("resource") or {}
        if "text" in resource:
            return str(resource["text"])
        size = _size(resource.get("blob", ""))
        return (
            f"[resource {resource.get('uri', '?')}: {resource.get('mimeType', '?')}, {size} bytes]"
        )
    if kind == "resource_link":
        about = block.get("description") or block.get("name") or ""
        return f"[resource link {block.get('uri', '?')}{': ' + about if about else ''}]"
    return json.dumps(thaw(block))


def _size(data: str) -> int:
    """The decoded size of base64 *data*."""
    return len(data) * 3 // 4 - data.count("=", -2)


# --- the client: one session, async ---------------------------------------------------------


def _require() -> None:
    try:
        from mcp import ClientSession  # noqa: F401
    except ImportError as exc:
        raise ValidationError(f"MCP tools need the MCP SDK ({exc}): {_INSTALL}") from None


def _http_target(spec: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The URL and headers to reach an HTTP server: a ``user:password@`` in its URL is sent as
    ``Authorization: Basic`` (as httpx would), so the URL the SDK and httpx log holds none.

    >>> _http_target(server_spec("https://bob:pw@example.com/mcp"))
    ('https://example.com/mcp', {'Authorization': 'Basic Ym9iOnB3'})
    """
    url, basic = split_userinfo(spec["url"])
    if query_secrets(url):  # the SDK and httpx log the URL: its key masked there
        hide_url_secrets_in_logs()
    headers = dict(thaw(spec["headers"]))
    if basic is not None and not any(k.lower() == "authorization" for k in headers):
        headers["Authorization"] = basic
    return url, headers


def _secrets(spec: Mapping[str, Any]) -> list[str]:
    if spec["transport"] == "stdio":
        env = [str(v) for k, v in (spec.get("env") or {}).items() if is_credential(k)]
        return [*env, *_arg_secrets(spec["args"])]
    headers = _http_target(spec)[1]
    found = [str(v) for k, v in headers.items() if is_credential(k)]
    found += [v.partition(" ")[2] for v in found]  # a scheme's token
    return [*found, *url_secrets(spec["url"])]


def _root_cause(exc: BaseException) -> BaseException:
    """The first real error inside anyio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _wire(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _errlog(stack: contextlib.ExitStack) -> TextIO:
    """The server's stderr: ours when it is a real file (pytest's capture is not)."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return stack.enter_context(open(os.devnull, "w"))
    return sys.stderr


async def _transport(spec: Mapping[str, Any], stack: contextlib.AsyncExitStack) -> Any:
    if spec["transport"] == "stdio":
        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(
            command=spec["command"],
            args=list(spec["args"]),
            env=thaw(spec["env"]),
            cwd=spec["cwd"],
        )
        errlog = _errlog(stack.enter_context(contextlib.ExitStack()))
        return await stack.enter_async_context(stdio_client(params, errlog=errlog))
    from mcp.client import streamable_http

    url, headers = _http_target(spec)
    if not hasattr(streamable_http, "streamable_http_client"):  # mcp < 1.24
        old = streamable_http.streamablehttp_client  # type: ignore[attr-defined,unused-ignore]
        return await stack.enter_async_context(old(url, headers=headers))
    from mcp.shared._httpx_utils import create_mcp_http_client

    client = await stack.enter_async_context(create_mcp_http_client(headers=headers))
    transport = streamable_http.streamable_http_client(url, http_client=client)
    return await stack.enter_async_context(transport)


async def _list_tools(session: ClientSession) -> list[dict[str, Any]]:
    from mcp import types

    page = await session.list_tools()
    found = [_wire(t) for t in page.tools]
    while cursor := _wire(page).get("nextCursor"):
        page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
        found.extend(_wire(t) for t in page.tools)
    return found


@contextlib.asynccontextmanager
async def _session(
    spec: Mapping[str, Any], timeout: float | None
) -> AsyncIterator[tuple[ClientSession, list[dict[str, Any]]]]:
    """Open a session with the server of *spec*, initialised, with its tools listed."""
    import anyio
    from mcp import ClientSession

    started = False
    try:
        async with contextlib.AsyncExitStack() as stack:
            streams = await _transport(spec, stack)
            session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
            with anyio.fail_after(timeout):
                await session.initialize()
                listed = await _list_tools(session)
            started = True
            yield session, listed
    except BaseException as exc:
        inner = _unwrap(exc)
        if started or not isinstance(inner, Exception):
            if inner is exc:
                raise
            raise inner from inner.__cause__
        raise _connect_error(spec, exc, timeout) from None


def _unwrap(exc: BaseException) -> BaseException:
    """The one exception inside the groups of the transport's task groups (the caller's own)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _connect_error(
    spec: Mapping[str, Any], exc: BaseException, timeout: float | None
) -> BaseException:
    cause, where = _root_cause(exc), describe_server(spec)
    err: ConduitError
    if isinstance(cause, builtins.TimeoutError):
        err = TimeoutError(f"the MCP server {where} did not answer within {timeout} s")
    else:
        hint = "; check the URL and the headers" if spec["transport"] == "http" else ""
        err = ConnectionError(
            f"could not start a session with the MCP server {where}: "
            f"{type(cause).__name__}: {cause}{hint}"
        )
    err.data = freeze({"server": where})
    return redact_error(err, _secrets(spec))


async def _call(
    session: ClientSession,
    wire_name: str,
    name: str,
    arguments: Mapping[str, Any],
    spec: Mapping[str, Any],
    timeout: float | None,
) -> Any:
    """Call the tool *wire_name*; return its result for the model, or raise ToolError."""
    import anyio

    try:
        with anyio.fail_after(timeout):
            result = await session.call_tool(wire_name, thaw(arguments))
    except builtins.TimeoutError:
        msg = f"the MCP server did not answer within {timeout} s; try again or another way"
        raise ToolError(msg, tool_name=name) from None
    except Exception as exc:
        cause = _root_cause(exc)
        msg = f"the MCP server {describe_server(spec)} failed: {type(cause).__name__}: {cause}"
        raise redact_error(ToolError(msg, tool_name=name), _secrets(spec)) from None
    return decode_result(_wire(result), name)


def _tools(
    spec: Mapping[str, Any], listed: list[dict[str, Any]], prefix: str, call: Any, bind: Any
) -> tuple[PMap[str, Any], ...]:
    """The tool maps for *listed*, each ``fn`` (made by *bind*) running *call*."""
    out = []
    for wire in listed:
        base = decode_tool(wire, prefix)
        out.append(tool(cast(Any, base.set("fn", bind(call, wire["name"], base["name"])))))
    names = [t["name"] for t in out]
    if len(set(names)) != len(names):
        raise ValidationError(f"the MCP server {describe_server(spec)} lists a tool twice: {names}")
    return tuple(out)


def _bind(call: Callable[[str, str, dict[str, Any]], _T], wire_name: str, name: str) -> Any:
    def fn(**arguments: Any) -> _T:
        return call(wire_name, name, arguments)

    fn.__name__ = fn.__qualname__ = name
    return fn


def _abind(
    call: Callable[[str, str, dict[str, Any]], Awaitable[_T]], wire_name: str, name: str
) -> Any:
    async def fn(**arguments: Any) -> _T:
        return await call(wire_name, name, arguments)

    fn.__name__ = fn.__qualname__ = name
    return fn


def _closed(spec: Mapping[str, Any], name: str) -> ToolError:
    msg = (
        f"the session with the MCP server {describe_server(spec)} is closed: "
        "call its tools inside the `with c.mcp_tools(...)` block"
    )
    return ToolError(msg, tool_name=name)


# --- the two lifetimes ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def amcp_tools(
    server: Any,
    *,
    prefix: str = "",
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = 60.0,
) -> AsyncIterator[tuple[PMap[str, Any], ...]]:
    """The async twin of :func:`mcp_tools`: ``async with c.amcp_tools(server) as tools:``.

    The tools' ``fn`` are coroutine functions on the caller's event loop: use them with
    ``c.aagent``. The session closes when the block ends, on an exception too.
    """
    spec = server_spec(server, env=env, cwd=cwd, headers=headers)
    _require()
    state = {"open": True}

    async def call(wire_name: str, name: str, arguments: dict[str, Any]) -> Any:
        if not state["open"]:
            raise _closed(spec, name)
        return await _call(session, wire_name, name, arguments, spec, timeout)

    async with _session(spec, timeout) as (session, listed):
        try:
            yield _tools(spec, listed, prefix, call, _abind)
        finally:
            state["open"] = False


@contextlib.contextmanager
def mcp_tools(
    server: Any,
    *,
    prefix: str = "",
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = 60.0,
) -> Iterator[tuple[PMap[str, Any], ...]]:
    """Start the MCP server *server*, yield its tools as tool maps, close it on exit.

    *server* is a command (``["python", "server.py"]`` or ``"npx -y some-server"``; *env* adds
    to the safe environment the SDK passes, *cwd* sets its folder), an ``http(s)://.../mcp``
    URL (*headers* for its authentication, masked in errors), or an ``mcpServers`` config map.
    *prefix* goes before every tool name, to tell two servers apart. *timeout* (seconds)
    bounds the start and each call. Each ``fn`` calls the server and returns its result for
    the model; an ``isError`` result or a failed call raises ``ToolError``, which the agent
    loop hands the model as an error tool result.

    The session runs on a private event loop in a background thread, so the tools work from
    synchronous code, ``c.agent`` and ``c.aagent`` alike; the server stops when the block
    ends, on an exception or ``KeyboardInterrupt`` too.

    >>> import sys, conduit as c
    >>> with c.mcp_tools([sys.executable, "tests/mcp_server.py"], prefix="calc_") as tools:
    ...     add = {t["name"]: t for t in tools}["calc_add"]
    ...     add["fn"](a=2, b=3)
    '5'
    """
    spec = server_spec(server, env=env, cwd=cwd, headers=headers)
    _require()
    with _in_thread(_session(spec, timeout)) as ((session, listed), submit, is_open):

        def call(wire_name: str, name: str, arguments: dict[str, Any]) -> Any:
            if not is_open():
                raise _closed(spec, name)
            return submit(_call(session, wire_name, name, arguments, spec, timeout))

        yield _tools(spec, listed, prefix, call, _bind)


@contextlib.contextmanager
def _in_thread(
    acm: contextlib.AbstractAsyncContextManager[_T],
) -> Iterator[tuple[_T, Callable[[Any], Any], Callable[[], bool]]]:
    """Hold *acm* open on a private event loop in a daemon thread.

    Yields its value, ``submit(coro)`` (run *coro* there, wait for its result) and
    ``is_open()``. On exit the context closes in its own task and the loop shuts down.
    """
    loop = asyncio.new_event_loop()
    started: concurrent.futures.Future[_T] = concurrent.futures.Future()
    stop = asyncio.Event()
    closing = threading.Event()

    async def hold() -> None:
        async with acm as value:
            started.set_result(value)
            await stop.wait()

    def failed(task: asyncio.Task[None]) -> None:
        if not started.done():
            started.set_exception(task.exception() if not task.cancelled() else KeyboardInterrupt())

    def shut() -> None:
        if not started.done():
            task.cancel()  # still starting: stop the start
        stop.set()

    def submit(coro: Any) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    task = loop.create_task(hold())
    task.add_done_callback(failed)
    thread = threading.Thread(target=_run, args=(loop, task), name="conduit-mcp", daemon=True)
    thread.start()
    try:
        yield started.result(), submit, lambda: not closing.is_set()
    finally:
        closing.set()
        with contextlib.suppress(RuntimeError):  # the loop is closed already: the start failed
            loop.call_soon_threadsafe(shut)
        thread.join()


def _run(loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> None:
    """Run *loop* until *task* ends, then cancel what is left and close it (as asyncio.run)."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(asyncio.wait([task]))
        left = asyncio.all_tasks(loop)
        for pending in left:
            pending.cancel()
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
