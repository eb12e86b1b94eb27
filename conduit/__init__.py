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

from conduit import display as _display
from conduit._data import Secret, freeze, thaw
from conduit.agent import aagent, aagent_stream, agent, agent_stream
from conduit.budget import Budget, with_budget
from conduit.cache import MemoryCache, SQLiteCache, cache_key, with_cache
from conduit.catalog import register_model
from conduit.checkpoints import MemoryCheckpoints, SQLiteCheckpoints
from conduit.conversation import (
    conversation_from_json,
    conversation_to_json,
    load_conversation,
    save_conversation,
)
from conduit.cost import PRICES, with_cost
from conduit.display import show
from conduit.embeddings import Embeddings, embedding_request, vectors
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
from conduit.exchange import (
    acall,
    aembed,
    anthropic_acall,
    anthropic_astream,
    anthropic_call,
    anthropic_stream,
    astream,
    call,
    embed,
    grok_acall,
    grok_astream,
    grok_call,
    grok_stream,
    groq_acall,
    groq_astream,
    groq_call,
    groq_stream,
    mock_acall,
    mock_aembed,
    mock_astream,
    mock_call,
    mock_embed,
    mock_stream,
    ollama_acall,
    ollama_aembed,
    ollama_astream,
    ollama_call,
    ollama_embed,
    ollama_stream,
    openai_acall,
    openai_aembed,
    openai_astream,
    openai_call,
    openai_embed,
    openai_stream,
    stream,
)
from conduit.fallback import with_fallback
from conduit.graphs import (
    END,
    Graph,
    arun_graph,
    graph,
    route,
    run_graph,
    to_mermaid,
    validate_graph,
)
from conduit.log import with_logging
from conduit.memory import (
    summarize,
    summary_prompt,
    token_window,
    window,
    with_summary,
    with_token_limit,
    with_window,
)
from conduit.middleware import (
    Middleware,
    middleware,
    on_request,
    on_response,
    with_middleware,
)
from conduit.rag.documents import document, load_documents
from conduit.rag.split import (
    split_character,
    split_code,
    split_markdown,
    split_recursive,
    split_sentences,
)
from conduit.ratelimit import RateLimiter, with_rate_limit
from conduit.replay import ReplayFile, with_replay
from conduit.request import (
    add_message,
    assistant,
    content,
    document_base64,
    document_url,
    image_base64,
    image_url,
    input_audio,
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
from conduit.retry import with_retry
from conduit.script import MockScript, mock_script
from conduit.streams import collect, response_events
from conduit.structured import classify, extract, with_schema
from conduit.timeout import with_timeout
from conduit.tokens import estimate_tokens
from conduit.tools import arun_tool_calls, run_tool_calls, tool, with_tools
from conduit.workflow import Step, branch, llm_step, parallel, pipeline, step

__version__ = "0.1.0"

_display._auto()  # readable maps at an interactive prompt (conduit.display)

if _typing.TYPE_CHECKING:
    from conduit.batching import abatch, batch
    from conduit.rag.embed import hash_embedder, provider_embedder, sentence_transformer_embedder
    from conduit.rag.retrieve import retriever, with_retrieval
    from conduit.rag.store import (
        MemoryStore,
        QdrantStore,
        SQLiteStore,
        add_documents,
        delete_documents,
        load_store,
        memory_store,
        save_store,
        search,
    )
    from conduit.redis_backend import RedisBudget, RedisCache, RedisRateLimiter

# name -> module, imported on first attribute access (keeps `import conduit` fast).
_LAZY: dict[str, str] = {
    "batch": "conduit.batching",
    "abatch": "conduit.batching",
    "hash_embedder": "conduit.rag.embed",
    "provider_embedder": "conduit.rag.embed",
    "sentence_transformer_embedder": "conduit.rag.embed",
    "MemoryStore": "conduit.rag.store",
    "SQLiteStore": "conduit.rag.store",
    "QdrantStore": "conduit.rag.store",
    "add_documents": "conduit.rag.store",
    "delete_documents": "conduit.rag.store",
    "load_store": "conduit.rag.store",
    "memory_store": "conduit.rag.store",
    "save_store": "conduit.rag.store",
    "search": "conduit.rag.store",
    "retriever": "conduit.rag.retrieve",
    "with_retrieval": "conduit.rag.retrieve",
    "RedisBudget": "conduit.redis_backend",
    "RedisCache": "conduit.redis_backend",
    "RedisRateLimiter": "conduit.redis_backend",
}


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
    "Budget",
    "BudgetExceededError",
    "ConduitError",
    "ConnectionError",
    "ContextLengthError",
    "END",
    "Embeddings",
    "Graph",
    "MaxIterationsError",
    "MemoryCache",
    "MemoryCheckpoints",
    "MemoryStore",
    "Middleware",
    "MockScript",
    "NotFoundError",
    "PRICES",
    "PermissionDeniedError",
    "ProviderError",
    "QdrantStore",
    "RateLimitError",
    "RateLimiter",
    "RedisBudget",
    "RedisCache",
    "RedisRateLimiter",
    "ReplayFile",
    "SQLiteCache",
    "SQLiteCheckpoints",
    "SQLiteStore",
    "Secret",
    "ServerError",
    "Step",
    "TimeoutError",
    "ToolError",
    "ValidationError",
    "aagent",
    "aagent_stream",
    "abatch",
    "acall",
    "add_documents",
    "add_message",
    "aembed",
    "agent",
    "agent_stream",
    "anthropic_acall",
    "anthropic_astream",
    "anthropic_call",
    "anthropic_stream",
    "arun_graph",
    "arun_tool_calls",
    "assistant",
    "astream",
    "batch",
    "branch",
    "cache_key",
    "call",
    "classify",
    "collect",
    "content",
    "conversation_from_json",
    "conversation_to_json",
    "delete_documents",
    "document",
    "document_base64",
    "document_url",
    "embed",
    "embedding_request",
    "error_from_response",
    "estimate_tokens",
    "extract",
    "freeze",
    "graph",
    "grok_acall",
    "grok_astream",
    "grok_call",
    "grok_stream",
    "groq_acall",
    "groq_astream",
    "groq_call",
    "groq_stream",
    "hash_embedder",
    "image_base64",
    "image_url",
    "input_audio",
    "is_retryable",
    "last_message",
    "llm_step",
    "load_conversation",
    "load_documents",
    "load_store",
    "make_response",
    "make_tool_call",
    "make_usage",
    "memory_store",
    "middleware",
    "mock_acall",
    "mock_aembed",
    "mock_astream",
    "mock_call",
    "mock_embed",
    "mock_script",
    "mock_stream",
    "ollama_acall",
    "ollama_aembed",
    "ollama_astream",
    "ollama_call",
    "ollama_embed",
    "ollama_stream",
    "on_request",
    "on_response",
    "openai_acall",
    "openai_aembed",
    "openai_astream",
    "openai_call",
    "openai_embed",
    "openai_stream",
    "parallel",
    "pipeline",
    "provider_embedder",
    "register_model",
    "reply",
    "request",
    "response_events",
    "retriever",
    "retry_after",
    "route",
    "run_graph",
    "run_tool_calls",
    "save_conversation",
    "save_store",
    "search",
    "sentence_transformer_embedder",
    "set_model",
    "set_options",
    "show",
    "split_character",
    "split_code",
    "split_markdown",
    "split_recursive",
    "split_sentences",
    "step",
    "stream",
    "summarize",
    "summary_prompt",
    "system",
    "text_block",
    "thaw",
    "to_mermaid",
    "token_window",
    "tool",
    "tool_calls",
    "tool_result",
    "usage",
    "user",
    "validate_graph",
    "vectors",
    "window",
    "with_budget",
    "with_cache",
    "with_cost",
    "with_fallback",
    "with_logging",
    "with_middleware",
    "with_rate_limit",
    "with_replay",
    "with_retrieval",
    "with_retry",
    "with_schema",
    "with_summary",
    "with_timeout",
    "with_token_limit",
    "with_tools",
    "with_window",
]
