"""Serving a loopback test server on a thread for the length of a fixture, and the test MCP
server over streamable HTTP in a uvicorn process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import HTTPServer
from pathlib import Path
from typing import TypeVar

S = TypeVar("S", bound=HTTPServer)


def serving(srv: S) -> Iterator[S]:
    """Yield *srv* answering on a daemon thread; shut it down and close it afterwards."""
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def mcp_over_http(token: str) -> Iterator[int]:
    """Yield the port of ``tests/mcp_server.py`` served by uvicorn on loopback, wanting *token*
    as its bearer token; stop it afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    uvicorn = [sys.executable, "-m", "uvicorn", "tests.mcp_server:app", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*uvicorn, "--port", str(port), "--log-level", "warning"],
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "MCP_TEST_TOKEN": token},
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
