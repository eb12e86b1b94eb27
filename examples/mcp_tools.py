"""Tools from an MCP server: start a server as a subprocess, give its tools to an agent.

Offline: the server is a small script written with the official MCP SDK (pip install
"conduit-llm[mcp]"), started over stdio from a temporary folder, and a mock script plays the
model. With OPENAI_API_KEY set, gpt-4o-mini drives the same tools.
"""

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import conduit as c

SERVER = '''
try:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as MCPServer
    from mcp.server.fastmcp.exceptions import ToolError

server = MCPServer("notes", log_level="ERROR")
NOTES = {"groceries": "eggs, milk", "ideas": "a data-first LLM library"}


@server.tool()
def list_notes() -> list[str]:
    """The titles of all notes."""
    return sorted(NOTES)


@server.tool()
def read_note(title: str) -> str:
    """The text of the note called *title*."""
    if title not in NOTES:
        raise ToolError(f"no note {title!r}; list the notes for their titles")
    return NOTES[title]


if __name__ == "__main__":
    server.run()
'''


def script():
    """The model, played offline: a wrong title first, then the list, then the right one."""
    return c.mock_script(
        [
            {"tool_calls": [{"name": "notes_read_note", "arguments": {"title": "shopping"}}]},
            {"tool_calls": [{"name": "notes_list_notes", "arguments": {}}]},
            {"tool_calls": [{"name": "notes_read_note", "arguments": {"title": "groceries"}}]},
            lambda req: "You need " + req["messages"][-1]["content"] + ".",
        ]
    )


def show(event):
    if event["type"] == "tool_call":
        call = event["tool_call"]
        print(f"  -> {call['name']}({dict(call['arguments'])})")
    elif event["type"] == "tool_result":
        mark = "error" if event["is_error"] else "ok"
        print(f"  <- {mark}: {event['content']}")


def main(folder: Path) -> None:
    path = folder / "notes_server.py"
    path.write_text(SERVER)
    online = bool(os.environ.get("OPENAI_API_KEY"))
    call = c.openai_call if online else c.mock_call
    model = "gpt-4o-mini" if online else "mock"

    with c.mcp_tools([sys.executable, str(path)], prefix="notes_") as tools:
        print("tools:", ", ".join(t["name"] for t in tools))
        agent = c.agent(call, tools, on_event=show)
        ctx = agent(c.request(model, "What is on my shopping list?", mock=script()))
        print("answer:", c.content(ctx))

    async def run_async() -> str:
        async with c.amcp_tools([sys.executable, str(path)], prefix="notes_") as tools:
            acall = c.openai_acall if online else c.mock_acall
            req = c.request(model, "What is on my shopping list?", mock=script())
            return c.content(await c.aagent(acall, tools)(req))

    print("async answer:", asyncio.run(run_async()))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
