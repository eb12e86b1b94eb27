"""A small MCP server for the tests and the docs, written with the official SDK.

Run it over stdio with ``python tests/mcp_server.py``, or over streamable HTTP with
``python -m uvicorn tests.mcp_server:app --port N`` (the endpoint is ``/mcp``).
"""

from __future__ import annotations

import os
from typing import Any

import anyio
from mcp.types import EmbeddedResource, TextResourceContents

try:
    from mcp.server.mcpserver import Image, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError:  # mcp 1.x calls it FastMCP
    from mcp.server.fastmcp import FastMCP as MCPServer  # type: ignore[no-redef]
    from mcp.server.fastmcp import Image  # type: ignore[no-redef]
    from mcp.server.fastmcp.exceptions import ToolError  # type: ignore[no-redef]

server = MCPServer("calc", log_level=os.environ.get("MCP_TEST_LOG", "CRITICAL"))


@server.tool()
def add(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return a + b


@server.tool()
def divide(a: float, b: float) -> float:
    """Divide a by b."""
    if b == 0:
        raise ToolError("division by zero: ask for another divisor")
    return a / b


@server.tool()
def stats(numbers: list[float]) -> dict[str, Any]:
    """Count, total and mean of some numbers (structured content)."""
    return {"count": len(numbers), "total": sum(numbers), "mean": sum(numbers) / len(numbers)}


@server.tool(name="pid.of-server")
def pid() -> int:
    """The server's process id (its name has a dot, which providers refuse)."""
    return os.getpid()


@server.tool()
def echo_env(name: str) -> str:
    """The value of an environment variable in the server process."""
    return os.environ.get(name, "")


@server.tool()
async def sleep(seconds: float) -> str:
    """Wait, then say so (for timeouts)."""
    await anyio.sleep(seconds)
    return "awake"


@server.tool(structured_output=False)
def report() -> list[Any]:
    """A text block, an image and an embedded text resource."""
    return [
        "the report",
        Image(data=b"\x89PNG....", format="png"),
        EmbeddedResource(
            type="resource",
            resource=TextResourceContents(uri="file:///notes.txt", text="the notes"),
        ),
    ]


def _app() -> Any:
    """The HTTP app; with MCP_TEST_TOKEN set it wants ``Authorization: Bearer <token>``."""
    app = server.streamable_http_app()
    token = os.environ.get("MCP_TEST_TOKEN")
    if not token:
        return app

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or ())
        if scope["type"] == "http" and headers.get(b"authorization") != f"Bearer {token}".encode():
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await app(scope, receive, send)

    return guarded


app = _app()

if __name__ == "__main__":
    server.run()
