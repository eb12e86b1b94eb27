"""The three shapes of function in Conduit, named once."""

from collections.abc import Awaitable, Callable, Generator
from typing import Any

from pyrsistent import PMap

__all__ = ["AsyncHandler", "Flow", "Handler", "Request", "Transform"]

Request = PMap[str, Any]
Transform = Callable[[Request], Request]
Handler = Callable[[Request], Request]
AsyncHandler = Callable[[Request], Awaitable[Request]]
Flow = Generator[Any, Any, Request]  # yields requests or Effects; receives their results
