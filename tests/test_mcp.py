"""MCP tools: a real server (tests/mcp_server.py, the official SDK) over stdio and over HTTP."""

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

import conduit as c
from conduit.errors import ConnectionError, ToolError, ValidationError
from conduit.mcp import decode_result, decode_tool, server_spec, tool_name
from tests.serving import mcp_over_http

pytest.importorskip("mcp")

HERE = Path(__file__).resolve().parent
SERVER = [sys.executable, str(HERE / "mcp_server.py")]
TOKEN = "sk-mcp-0123456789abcdefWXYZ"


def gone(pid: int) -> bool:
    """True once *pid* has exited and been reaped (a zombie still answers kill 0)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


def start(server, **options):
    """Open and close a session (for the tests of what fails at the start)."""
    with c.mcp_tools(server, **options):
        pass


def by_name(tools):
    return {t["name"]: t for t in tools}


def pid_tool(tools):
    return next(t for t in tools if t["name"].startswith(("pid", "calc_pid")))


@pytest.fixture(scope="module")
def calc():
    """One stdio session with the test server for the tests that only call tools."""
    with c.mcp_tools(SERVER, prefix="calc_") as tools:
        yield tools


@pytest.fixture(scope="module")
def http_url():
    """The test server on a loopback port with uvicorn, wanting a bearer token."""
    for port in mcp_over_http(TOKEN):
        yield f"http://127.0.0.1:{port}/mcp"


# --- listing ---------------------------------------------------------------------------------


def test_tools_are_listed_with_their_schemas(calc):
    tools = by_name(calc)
    assert {"calc_add", "calc_divide", "calc_stats", "calc_echo_env"} <= set(tools)
    add = tools["calc_add"]
    assert add["description"] == "Add two numbers."
    assert add["parameters"]["type"] == "object"
    assert list(add["parameters"]["required"]) == ["a"]
    assert add["parameters"]["properties"]["a"]["type"] == "integer"
    assert add["parameters"]["properties"]["b"]["default"] == 1
    stats = tools["calc_stats"]["parameters"]["properties"]["numbers"]
    assert (stats["type"], stats["items"]["type"]) == ("array", "number")
    odd = pid_tool(calc)["name"]  # the server calls it "pid.of-server"
    assert odd.startswith("calc_pid_of-server_") and c.tool(pid_tool(calc)) is not None
    req = c.with_tools(calc)(c.request("m", "hi"))  # every name and schema is one Conduit takes
    assert len(req["tools"]) == len(calc)


def test_a_tool_fn_calls_the_server(calc):
    tools = by_name(calc)
    assert tools["calc_add"]["fn"](a=2, b=3) == "5"
    assert tools["calc_stats"]["fn"](numbers=[1, 2, 3]) == {"count": 3, "total": 6.0, "mean": 2.0}
    assert tools["calc_report"]["fn"]() == "the report\n[image: image/png, 8 bytes]\nthe notes"
    with pytest.raises(ToolError, match="division by zero"):
        tools["calc_divide"]["fn"](a=1, b=0)


# --- agents ----------------------------------------------------------------------------------

SCRIPT = [
    {
        "tool_calls": [
            {"name": "{p}divide", "arguments": {"a": 1, "b": 0}},
            {"name": "{p}stats", "arguments": {"numbers": [2, 4]}},
        ]
    },
    {"tool_calls": [{"name": "{p}divide", "arguments": {"a": 1, "b": 4}}]},
    lambda req: "done: " + req["messages"][-1]["content"],
]


def script(prefix):
    turns = json.loads(json.dumps(SCRIPT[:2]).replace("{p}", prefix))
    return c.mock_script([*turns, SCRIPT[2]])


def check_conversation(ctx):
    """The error came back as a tool result, the model tried again and got its answer."""
    tool_msgs = [m for m in ctx["messages"] if m["role"] == "tool"]
    assert tool_msgs[0]["is_error"] and "division by zero" in tool_msgs[0]["content"]
    assert json.loads(tool_msgs[1]["content"]) == {"count": 2, "total": 6.0, "mean": 3.0}
    assert not tool_msgs[2].get("is_error") and tool_msgs[2]["content"] == "0.25"
    assert c.content(ctx) == "done: 0.25" and ctx["iterations"] == 3


def test_an_agent_calls_the_tools_over_stdio(calc):
    ctx = c.agent(c.mock_call, calc)(c.request("m", "divide", mock=script("calc_")))
    check_conversation(ctx)


async def test_aagent_with_the_sync_tools(calc):
    ctx = await c.aagent(c.mock_acall, calc)(c.request("m", "divide", mock=script("calc_")))
    check_conversation(ctx)


async def test_aagent_with_async_tools_and_the_server_stops_after():
    async with c.amcp_tools(SERVER) as tools:
        assert all(asyncio.iscoroutinefunction(t["fn"]) for t in tools)
        ctx = await c.aagent(c.mock_acall, tools)(c.request("m", "divide", mock=script("")))
        pid = int(await pid_tool(tools)["fn"]())
    check_conversation(ctx)
    assert gone(pid)
    with pytest.raises(ToolError, match="closed"):
        await by_name(tools)["add"]["fn"](a=1)


# --- lifetime --------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [KeyboardInterrupt, ValueError])
def test_the_server_stops_on_an_exception(error):
    """A string command line, env for the server, and the process gone however the block ends."""
    command = f"{sys.executable} mcp_server.py"
    env = {"CONDUIT_MCP_TEST": "from env"}
    with pytest.raises(error), c.mcp_tools(command, cwd=HERE, env=env) as tools:
        assert by_name(tools)["echo_env"]["fn"](name="CONDUIT_MCP_TEST") == "from env"
        pid = int(pid_tool(tools)["fn"]())
        raise error()
    assert gone(pid)
    out = c.run_tool_calls(
        c.mock_call(c.request("m", "x", mock={"tool_calls": [{"name": "add", "arguments": {}}]})),
        tools,
    )
    assert out[0]["is_error"]
    assert "invalid arguments" in out[0]["content"]
    with pytest.raises(ToolError, match=r"closed: call its tools inside the `with c.mcp_tools"):
        by_name(tools)["add"]["fn"](a=1)


def test_timeouts_and_a_dead_server_become_tool_errors():
    # the timeout bounds the start too: 1.5 s leaves a loaded machine room to start Python
    with c.mcp_tools(SERVER, timeout=1.5) as tools:
        fns = by_name(tools)
        with pytest.raises(ToolError, match=r"did not answer within 1.5 s"):
            fns["sleep"]["fn"](seconds=5)
        assert fns["add"]["fn"](a=1) == "2"  # the session goes on after a timeout
        pid = int(pid_tool(tools)["fn"]())
        os.kill(pid, signal.SIGKILL)
        assert gone(pid)
        mock = {"tool_calls": [{"name": "add", "arguments": {"a": 1}}]}
        script_ = c.mock_script([mock, lambda req: req["messages"][-1]["content"]])
        ctx = c.agent(c.mock_call, tools)(c.request("m", "add", mock=script_))
        assert ctx["messages"][-1]["is_error"]
        assert "the MCP server" in c.content(ctx) and "failed" in c.content(ctx)


def test_a_server_that_does_not_start_is_a_connection_error():
    with pytest.raises(ConnectionError, match=r"could not start a session .* no-such-mcp-server"):
        start(["no-such-mcp-server", "--flag"])
    with pytest.raises(ConnectionError, match="could not start"):
        start([sys.executable, "-c", "pass"])


# --- HTTP ------------------------------------------------------------------------------------


def test_an_agent_calls_the_tools_over_http(http_url):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with c.mcp_tools(http_url, headers=headers, prefix="web-") as tools:
        assert by_name(tools)["web-add"]["parameters"]["required"] == ["a"]
        ctx = c.agent(c.mock_call, tools)(c.request("m", "divide", mock=script("web-")))
    check_conversation(ctx)


async def test_aagent_over_http(http_url):
    config = {"url": http_url, "headers": {"Authorization": f"Bearer {TOKEN}"}}
    async with c.amcp_tools(config) as tools:
        ctx = await c.aagent(c.mock_acall, tools)(c.request("m", "divide", mock=script("")))
    check_conversation(ctx)


def _chain_text(err: BaseException) -> list[str]:
    """The texts an error and every error chained to it show."""
    seen = [str(err), repr(err), str(getattr(err, "data", ""))]
    cause = err.__cause__ or err.__context__
    while cause is not None:
        seen.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    return seen


@pytest.mark.parametrize("value", [f"Bearer {TOKEN}x", f"Bearer {TOKEN}\n"])
def test_http_headers_are_masked_in_errors(http_url, value):
    with pytest.raises(ConnectionError) as info:
        start(http_url, headers={"Authorization": value}, timeout=5)
    assert not any(TOKEN in text for text in _chain_text(info.value))
    assert "check the URL and the headers" in str(info.value)


def test_a_key_in_a_servers_command_line_or_url_query_is_masked_in_errors(http_url):
    """A key given as a server's option (``--api-key KEY``, ``--token=KEY``) or in its URL's
    query (``?key=KEY``) never appears in the error naming that server."""
    for argv in (
        [sys.executable, "-c", "pass", "--api-key", TOKEN],
        [sys.executable, "-c", "pass", f"--token={TOKEN}"],
        [sys.executable, "-c", "pass", "-e", f"GITHUB_PERSONAL_ACCESS_TOKEN={TOKEN}"],
        [sys.executable, "-c", "pass", "--header", f"Authorization: Bearer {TOKEN}"],
    ):
        with pytest.raises(
            ConnectionError, match=r"could not start .*(api-key|token|TOKEN|Auth)"
        ) as info:
            start(argv)
        assert not any(TOKEN in text for text in _chain_text(info.value))
    with pytest.raises(ConnectionError) as info:
        start(f"{http_url}?key={TOKEN}", timeout=5)  # the server wants a header: refused
    assert "?key=***" in str(info.value)
    assert not any(TOKEN in text for text in _chain_text(info.value))


# --- pure parts ------------------------------------------------------------------------------


def test_the_sdk_missing_says_which_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mcp", None)
    with pytest.raises(ValidationError, match=r'pip install "conduit-llm\[mcp\]"'):
        start(SERVER)


def test_server_specs():
    assert server_spec(["python", Path("s.py")])["args"] == ["s.py"]
    config = server_spec({"command": "uvx", "args": ["srv"], "env": {"A": "1"}}, env={"B": "2"})
    assert dict(config["env"]) == {"A": "1", "B": "2"}
    for bad in ([], "", 3, ["python", 3]):
        with pytest.raises(ValidationError, match="command"):
            server_spec(bad)
    with pytest.raises(ValidationError, match="headers are for an HTTP server"):
        server_spec(["python"], headers={"a": "b"})
    with pytest.raises(ValidationError, match="env and cwd"):
        server_spec("https://x/mcp", env={})
    with pytest.raises(ValidationError, match="'command' or 'url'"):
        server_spec({"args": []})


def test_tool_names_are_valid_and_distinct():
    names = {tool_name(n, "srv.") for n in ("read file", "read_file", "read.file", "x" * 80)}
    assert len(names) == 4
    assert all(c.tool(lambda: 0, name=n)["name"] == n for n in names)
    assert tool_name("read_file", "fs_") == "fs_read_file"
    assert decode_tool({"name": "t"})["parameters"] == {"type": "object", "properties": {}}


def test_results_of_every_kind():
    blob = {"uri": "file:///a.bin", "mimeType": "application/octet-stream", "blob": "AAAA"}
    wire = {
        "content": [
            {"type": "audio", "data": "AAA=", "mimeType": "audio/wav"},
            {"type": "resource", "resource": blob},
            {"type": "resource_link", "uri": "file:///b", "name": "b"},
            {"type": "resource_link", "uri": "file:///c"},
            {"type": "future", "x": 1},
        ]
    }
    assert decode_result(wire).splitlines() == [
        "[audio: audio/wav, 2 bytes]",
        "[resource file:///a.bin: application/octet-stream, 3 bytes]",
        "[resource link file:///b: b]",
        "[resource link file:///c]",
        '{"type": "future", "x": 1}',
    ]
    assert decode_result({"content": [], "structuredContent": {"n": 1}}) == {"n": 1}
    with pytest.raises(ToolError, match="the MCP tool t reported an error"):
        decode_result({"content": [], "isError": True}, "t")
