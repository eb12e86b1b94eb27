"""Conduit: a simple, data-first LLM orchestration library.

A request is an immutable map; builders, middleware, providers, tools and agents are plain
functions over it::

    >>> from toolz import pipe
    >>> import conduit as c
    >>> ctx = pipe(c.request("gpt-4o-mini", [c.user("Hi")], mock="Hello!"), c.mock_call)
    >>> c.content(ctx)
    'Hello!'

Modules that pull in heavy dependencies (httpx, numpy) load on first use of one of their names.
"""

import importlib as _importlib
import typing as _typing

from conduit._data import Secret, freeze, thaw
from conduit.errors import (
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ConduitError,
    ConnectionError,
    ContextLengthError,
    MaxIterationsError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServerError,
    TimeoutError,
    ToolError,
    ValidationError,
    error_from_response,
    is_retryable,
    retry_after,
)
from conduit.middleware import (
    Middleware,
    middleware,
    on_request,
    on_response,
    with_middleware,
)
from conduit.providers.mock import (
    MockScript,
    mock_acall,
    mock_astream,
    mock_call,
    mock_script,
    mock_stream,
)
from conduit.request import (
    add_message,
    assistant,
    content,
    image_base64,
    image_url,
    last_message,
    reply,
    request,
    set_model,
    set_options,
    system,
    text_block,
    tool_calls,
    tool_result,
    usage,
    user,
)
from conduit.response import make_response, make_tool_call, make_usage
from conduit.stream import collect, response_events
from conduit.tokens import estimate_tokens

__version__ = "0.1.0"

# name -> module, imported on first attribute access (keeps `import conduit` fast).
_LAZY: dict[str, str] = {}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conduit' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ConduitError",
    "ConnectionError",
    "ContextLengthError",
    "MaxIterationsError",
    "Middleware",
    "MockScript",
    "NotFoundError",
    "PermissionDeniedError",
    "ProviderError",
    "RateLimitError",
    "Secret",
    "ServerError",
    "TimeoutError",
    "ToolError",
    "ValidationError",
    "add_message",
    "assistant",
    "collect",
    "content",
    "error_from_response",
    "estimate_tokens",
    "freeze",
    "image_base64",
    "image_url",
    "is_retryable",
    "last_message",
    "make_response",
    "make_tool_call",
    "make_usage",
    "middleware",
    "mock_acall",
    "mock_astream",
    "mock_call",
    "mock_script",
    "mock_stream",
    "on_request",
    "on_response",
    "reply",
    "request",
    "response_events",
    "retry_after",
    "set_model",
    "set_options",
    "system",
    "text_block",
    "thaw",
    "tool_calls",
    "tool_result",
    "usage",
    "user",
    "with_middleware",
]
