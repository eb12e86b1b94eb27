"""Serving a loopback test server on a thread for the length of a fixture."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import HTTPServer
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
