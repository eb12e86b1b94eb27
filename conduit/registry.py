"""The provider registry: every provider Conduit knows, as data, in one table.

Dispatch, the CLI, cost, the docs and the exchange all read this table; nothing else names a
provider. It imports nothing heavy (no httpx), so the CLI can read it at start-up. A model
string ``"provider:model"`` names its provider by prefix; any other name goes to the default
provider of the handler that was called (OpenAI for ``c.call``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import attrs

from conduit._data import basic_forms, is_credential, url_secrets
from conduit.errors import ValidationError

__all__ = [
    "PROVIDERS",
    "ProviderInfo",
    "bare_model",
    "lookup",
    "provider_names",
    "secret_values",
    "split_model",
]


@attrs.frozen(kw_only=True)
class ProviderInfo:
    """One provider: how it is named, reached and configured, and what it can do."""

    name: str
    title: str
    prefixes: tuple[str, ...]
    codec: str  # the module holding its pure codec and its ``SPEC`` (imported when first used)
    env_key: str | None = None  # the environment variable holding its API key
    base_url: str | None = None
    base_url_env: str | None = None  # the environment variable overriding ``base_url``
    default_model: str = ""
    embed_model: str | None = None  # the default model of ``<name>_embed``, if it embeds
    streaming: bool = True
    tools: bool = True
    vision: bool = False
    json_schema: bool = False
    #: the environment variables that must all be set for the provider to count as configured
    #: (``conduit models``, the CLI's default model); default: its key, else its base URL's
    requires: tuple[str, ...] = ()
    setup: str | None = None  # how to configure it, when one variable does not say it all
    #: other environment variables that carry or choose its credentials (a second key name,
    #: AWS's keys and profiles); with ``env_key`` they name the tenant of a cached answer
    credential_env: tuple[str, ...] = ()
    #: the output limit its wire sends when a request sets none (Anthropic requires one), to
    #: which a thinking budget is added; None: the request's limit, or none, is sent
    default_max_tokens: int | None = None

    @property
    def needs(self) -> tuple[str, ...]:
        """The variables that make the provider usable (none: always available)."""
        if self.requires:
            return self.requires
        var = self.env_key or self.base_url_env
        return (var,) if var else ()

    @property
    def embeddings(self) -> bool:
        """Whether the provider embeds texts."""
        return self.embed_model is not None


PROVIDERS: tuple[ProviderInfo, ...] = (
    ProviderInfo(
        name="openai",
        title="OpenAI's chat completions (or any compatible server at base_url)",
        prefixes=("openai",),
        codec="conduit.providers.openai",
        env_key="OPENAI_API_KEY",
        base_url="https://api.openai.com/v1",
        base_url_env="OPENAI_BASE_URL",
        default_model="gpt-4o-mini",
        embed_model="text-embedding-3-small",
        vision=True,
        json_schema=True,
    ),
    ProviderInfo(
        name="anthropic",
        title="Anthropic's Messages API",
        prefixes=("anthropic",),
        codec="conduit.providers.anthropic",
        env_key="ANTHROPIC_API_KEY",
        base_url="https://api.anthropic.com/v1",
        base_url_env="ANTHROPIC_BASE_URL",
        default_model="claude-haiku-4-5",
        vision=True,
        json_schema=True,
        default_max_tokens=4096,  # fits every current model's output limit
    ),
    ProviderInfo(
        name="groq",
        title="Groq",
        prefixes=("groq",),
        codec="conduit.providers.groq",
        env_key="GROQ_API_KEY",
        base_url="https://api.groq.com/openai/v1",
        base_url_env="GROQ_BASE_URL",
        default_model="llama-3.3-70b-versatile",
        json_schema=True,
    ),
    ProviderInfo(
        name="grok",
        title="xAI's Grok",
        prefixes=("grok", "xai"),
        codec="conduit.providers.grok",
        env_key="XAI_API_KEY",
        base_url="https://api.x.ai/v1",
        base_url_env="XAI_BASE_URL",
        default_model="grok-3-mini",
        vision=True,
        json_schema=True,
    ),
    ProviderInfo(
        name="ollama",
        title="a local Ollama server",
        prefixes=("ollama",),
        codec="conduit.providers.ollama",
        base_url="http://localhost:11434/v1",
        base_url_env="OLLAMA_BASE_URL",
        default_model="llama3.2",
        embed_model="all-minilm",
        vision=True,
        json_schema=True,
    ),
    ProviderInfo(
        name="responses",
        title="OpenAI's Responses API",
        prefixes=("responses",),
        codec="conduit.providers.responses",
        env_key="OPENAI_API_KEY",
        base_url="https://api.openai.com/v1",
        base_url_env="OPENAI_BASE_URL",
        default_model="gpt-5-mini",
        vision=True,
        json_schema=True,
    ),
    ProviderInfo(
        name="azure",
        title="Azure OpenAI (a deployment's chat completions)",
        prefixes=("azure",),
        codec="conduit.providers.azure",
        env_key="AZURE_OPENAI_API_KEY",
        credential_env=("AZURE_OPENAI_AD_TOKEN",),
        base_url=None,
        base_url_env="AZURE_OPENAI_ENDPOINT",
        default_model="gpt-4o-mini",
        requires=("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY"),
        setup="set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY (or pass token_provider=); "
        "the model is your deployment's name",
        embed_model="text-embedding-3-small",
        vision=True,
        json_schema=True,
    ),
    ProviderInfo(
        name="gemini",
        title="Google's Gemini API",
        prefixes=("gemini", "google"),
        codec="conduit.providers.gemini",
        env_key="GEMINI_API_KEY",
        credential_env=("GOOGLE_API_KEY",),
        base_url="https://generativelanguage.googleapis.com/v1beta",
        base_url_env="GEMINI_BASE_URL",
        default_model="gemini-2.5-flash",
        embed_model="gemini-embedding-001",
        vision=True,
        json_schema=True,
    ),
    ProviderInfo(
        name="bedrock",
        title="Amazon Bedrock's Converse API",
        prefixes=("bedrock",),
        codec="conduit.providers.bedrock",
        base_url=None,
        base_url_env="BEDROCK_BASE_URL",
        default_model="us.anthropic.claude-haiku-4-5-20251001-v1:0",
        requires=("AWS_ACCESS_KEY_ID", "AWS_REGION"),
        credential_env=(
            "AWS_BEARER_TOKEN_BEDROCK",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ),
        setup="give AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile or a "
        "role) and AWS_REGION, and pip install 'conduit-llm[bedrock]'",
        vision=True,
    ),
    ProviderInfo(
        name="mistral",
        title="Mistral AI",
        prefixes=("mistral",),
        codec="conduit.providers.mistral",
        env_key="MISTRAL_API_KEY",
        base_url="https://api.mistral.ai/v1",
        base_url_env="MISTRAL_BASE_URL",
        default_model="mistral-small-latest",
        embed_model="mistral-embed",
        vision=True,
        json_schema=True,
    ),
    ProviderInfo(
        name="deepseek",
        title="DeepSeek",
        prefixes=("deepseek",),
        codec="conduit.providers.deepseek",
        env_key="DEEPSEEK_API_KEY",
        base_url="https://api.deepseek.com",
        base_url_env="DEEPSEEK_BASE_URL",
        default_model="deepseek-chat",
    ),
    ProviderInfo(
        name="openrouter",
        title="OpenRouter (many providers' models behind one key)",
        prefixes=("openrouter",),
        codec="conduit.providers.openrouter",
        env_key="OPENROUTER_API_KEY",
        base_url="https://openrouter.ai/api/v1",
        base_url_env="OPENROUTER_BASE_URL",
        default_model="openai/gpt-4o-mini",
        vision=True,
        json_schema=True,
    ),
    ProviderInfo(
        name="together",
        title="Together AI",
        prefixes=("together",),
        codec="conduit.providers.together",
        env_key="TOGETHER_API_KEY",
        base_url="https://api.together.xyz/v1",
        base_url_env="TOGETHER_BASE_URL",
        default_model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
        json_schema=True,
    ),
    ProviderInfo(
        name="fireworks",
        title="Fireworks AI",
        prefixes=("fireworks",),
        codec="conduit.providers.fireworks",
        env_key="FIREWORKS_API_KEY",
        base_url="https://api.fireworks.ai/inference/v1",
        base_url_env="FIREWORKS_BASE_URL",
        default_model="accounts/fireworks/models/llama-v3p3-70b-instruct",
        json_schema=True,
    ),
    ProviderInfo(
        name="mock",
        title="the mock provider (scripted, echoing or function-backed; offline)",
        prefixes=("mock",),
        codec="conduit.providers.mock",
        default_model="echo",
        embed_model="mock-embed",
        vision=True,
        json_schema=True,
    ),
)

_BY_PREFIX: dict[str, ProviderInfo] = {p: info for info in PROVIDERS for p in info.prefixes}


def provider_names() -> tuple[str, ...]:
    """Return the providers' names, in the registry's order.

    >>> provider_names()[:2]
    ('openai', 'anthropic')
    """
    return tuple(info.name for info in PROVIDERS)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Return the values of the environment variables that hold provider credentials, for the
    sinks that mask them in text they did not build (the call log, a batch checkpoint): every
    provider's key variable and the credentials among its other variables (a second key name,
    AWS's keys and tokens; not a profile's name nor a file's path), and the credentials in its
    base URL variable (``user:password@``, with its Basic form, and ``?key=...``), longest first.

    >>> secret_values({"GOOGLE_API_KEY": "AIza-1234", "AWS_PROFILE": "dev", "HOME": "/h"})
    ['AIza-1234']
    >>> secret_values({"MISTRAL_BASE_URL": "https://gw.example/v1?key=k-1234"})
    ['k-1234']
    """
    env = os.environ if environ is None else environ
    found = {env[n] for n in _SECRET_VARIABLES if env.get(n)}
    for name in _BASE_URL_VARIABLES:
        if env.get(name):
            found.update(url_secrets(env[name]), basic_forms(env[name]))
    return sorted(found, key=len, reverse=True)


_BASE_URL_VARIABLES = tuple(sorted({p.base_url_env for p in PROVIDERS if p.base_url_env}))


_SECRET_VARIABLES = tuple(
    sorted(
        {
            v
            for p in PROVIDERS
            for v in (p.env_key, *p.credential_env)
            if v and is_credential(v) and not v.endswith("_FILE")
        }
    )
)


def lookup(name: str) -> ProviderInfo:
    """Return the provider named (or prefixed) *name*; an unknown one is a ``ValidationError``.

    >>> lookup("xai").name
    'grok'
    >>> lookup("antropic")
    Traceback (most recent call last):
    conduit.errors.ValidationError: unknown provider 'antropic': did you mean 'anthropic'? ...
    """
    found = _BY_PREFIX.get(name)
    if found is None:
        raise ValidationError(_unknown(name))
    return found


def _close(name: str) -> list[str]:
    import difflib  # deferred: only a misspelt name needs it

    return difflib.get_close_matches(name.lower(), _BY_PREFIX, n=1, cutoff=0.75)


def _unknown(name: str) -> str:
    close = _close(name)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"unknown provider {name!r}: {hint}known providers are {', '.join(sorted(_BY_PREFIX))}; "
        "for any OpenAI-compatible server use openai with base_url"
    )


def split_model(model: str, default: str = "openai") -> tuple[ProviderInfo, str]:
    """Return (provider, bare model) for ``"provider:model"``; other names go to *default*.

    Model names with colons of their own keep working (``ollama:llama3.2:3b``,
    ``ft:gpt-4o-mini:org::id``, ``llama3:8b``); a prefix of letters only that is close to a
    known provider's is an error with a did-you-mean rather than a silent trip to the default.

    >>> info, bare = split_model("anthropic:claude-sonnet-4-5")
    >>> info.name, bare
    ('anthropic', 'claude-sonnet-4-5')
    >>> split_model("ollama:llama3.2:3b")[1]
    'llama3.2:3b'
    >>> [x.name if hasattr(x, "name") else x for x in split_model("ft:gpt-4o-mini:org::id")]
    ['openai', 'ft:gpt-4o-mini:org::id']
    >>> split_model("llama3:8b")[1]
    'llama3:8b'
    >>> split_model("OpenAI:gpt-4o")
    Traceback (most recent call last):
    conduit.errors.ValidationError: unknown provider 'OpenAI': did you mean 'openai'? ...
    >>> split_model("antropic:claude-haiku-4-5")
    Traceback (most recent call last):
    conduit.errors.ValidationError: unknown provider 'antropic': did you mean 'anthropic'? ...
    """
    prefix, sep, rest = model.partition(":")
    if sep:
        found = _BY_PREFIX.get(prefix)
        if found is not None:
            if not rest:
                raise ValidationError(
                    f"{model!r} names the provider but no model: write e.g. "
                    f"'{prefix}:{found.default_model}'"
                )
            return found, rest
        if prefix.isalpha() and _close(prefix):  # "llama3:8b", "org/model:tag" are models
            raise ValidationError(_unknown(prefix))
    return lookup(default), model


def bare_model(model: str) -> str:
    """Return *model* without a known ``provider:`` prefix (other colons stay).

    >>> bare_model("xai:grok-4"), bare_model("ft:gpt-4o-mini:org::id")
    ('grok-4', 'ft:gpt-4o-mini:org::id')
    """
    prefix, sep, rest = model.partition(":")
    return rest if sep and prefix in _BY_PREFIX else model
