"""The model catalog: what Conduit knows of each model, as data, in one file.

``conduit/models.json`` holds one entry per model: its provider (a name in
:mod:`conduit.registry`), id and dated snapshots, context window and maximum output, list prices
(USD per million tokens, cached input and cache writes where priced), capabilities, how it
takes its output limit, the options it refuses, and the page and date its figures came from.
``with_cost``, ``with_token_limit``, the budget and rate-limit estimates, ``conduit models`` and
the codecs' parameter mapping all read it. The file is read on the first lookup, not at import.

Your own entries win over the file's: :func:`register_model` in code, or JSON files named in
the ``CONDUIT_MODELS`` environment variable (paths separated by ``os.pathsep``), read with the
file. An entry for a model the catalog has replaces only the fields it gives.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from pyrsistent import PMap, pmap

from conduit._options import PRICE_KEYS, check_keywords, number
from conduit.errors import ValidationError
from conduit.registry import lookup as provider_info
from conduit.registry import split_model

__all__ = [
    "CAPABILITIES",
    "ModelInfo",
    "asked_output",
    "sent_output",
    "thinking_budget",
    "context_window",
    "drop_unsupported",
    "lookup",
    "model_info",
    "models",
    "register_model",
    "wire_options",
    "entry_for",
]

log = logging.getLogger("conduit")

CAPABILITIES = ("tools", "vision", "documents", "reasoning", "json_schema", "temperature")
ENTRY_KEYS = (
    "provider",
    "id",
    "aliases",
    "kind",
    "context_window",
    "max_output",
    "prices",
    "capabilities",
    "max_tokens_param",
    "unsupported_options",
    "source",
    "gathered",
    "verified",
    "notes",
)
MAX_TOKENS_PARAMS = ("max_tokens", "max_completion_tokens")


def asked_output(options: Mapping[str, Any] | None) -> int | None:
    """Return the output limit *options* set, under either name (``max_completion_tokens``, the
    o-series and gpt-5 spelling, wins when both are given, as on the wire), or None.

    >>> asked_output({"max_tokens": 100}), asked_output({"max_completion_tokens": 900})
    (100, 900)
    >>> asked_output({}) is None
    True
    """
    if not options:
        return None
    asked = options.get("max_completion_tokens") or options.get("max_tokens")
    return int(asked) if asked else None


def thinking_budget(options: Mapping[str, Any] | None) -> int | None:
    """Return the thinking budget *options* set (``{"thinking": {"budget_tokens": N}}``), or None.

    >>> thinking_budget({"thinking": {"type": "enabled", "budget_tokens": 2048}})
    2048
    """
    thinking = options.get("thinking") if options else None
    budget = thinking.get("budget_tokens") if isinstance(thinking, Mapping) else None
    return budget if type(budget) is int else None


def sent_output(model: str, options: Mapping[str, Any] | None) -> int | None:
    """Return the output limit a call of *model* with *options* sends: the one asked for, else
    its provider's default (Anthropic requires one) with room for a thinking budget, else None.

    >>> sent_output("anthropic:claude-haiku-4-5", {}), sent_output("gpt-4o", {})
    (4096, None)
    >>> sent_output("anthropic:claude-sonnet-4-5", {"thinking": {"budget_tokens": 1024}})
    5120
    >>> sent_output("anthropic:claude-haiku-4-5", {"max_tokens": 300})
    300
    """
    asked = asked_output(options)
    if asked is not None:
        return asked
    default = split_model(model)[0].default_max_tokens
    if default is None:
        return None
    return default + (thinking_budget(options) or 0)


@attrs.frozen(kw_only=True)
class ModelInfo:
    """One model: its limits, prices, capabilities and where they came from.

    A capability is True, False, or None when not known.
    """

    provider: str
    id: str
    aliases: tuple[str, ...] = ()
    kind: str = "chat"  # or "embedding"
    context_window: int | None = None
    max_output: int | None = None
    prices: PMap[str, float] | None = None  # USD per million tokens; PRICE_KEYS
    tools: bool | None = None
    vision: bool | None = None
    documents: bool | None = None
    reasoning: bool | None = None
    json_schema: bool | None = None
    temperature: bool | None = None
    max_tokens_param: str = "max_tokens"
    unsupported_options: tuple[str, ...] = ()
    source: str | None = None
    gathered: str | None = None
    verified: bool = False
    notes: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The id and the aliases."""
        return (self.id, *self.aliases)


def _flag(where: str, value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ValidationError(f"{where} must be true, false or null, not {value!r:.40}")
    return value


def _text(where: str, value: Any, *, optional: bool = True) -> Any:
    if (value is None and optional) or (isinstance(value, str) and value):
        return value
    raise ValidationError(f"{where} must be a non-empty string, not {value!r:.40}")


def _texts(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(f"{where} must be a list of strings, not {value!r:.40}")
    return tuple(_text(where, v, optional=False) for v in value)


def _whole(where: str, name: str, value: Any) -> int | None:
    found: int | None = number(where, name, value, whole=True, optional=True)
    return found


def _prices(where: str, value: Any) -> PMap[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"{where} must be a map like {{'input': 1.0, 'output': 2.0}}")
    check_keywords(where, value, PRICE_KEYS)
    if not {"input", "output"} <= set(value):
        raise ValidationError(f"{where} needs 'input' and 'output' (USD per million tokens)")
    return pmap({k: number(where, k, v, zero=True) for k, v in value.items() if v is not None})


def model_info(entry: Mapping[str, Any] | ModelInfo) -> ModelInfo:
    """Return the :class:`ModelInfo` of a catalog *entry* (a map as in ``models.json``), or
    raise ``ValidationError`` naming what is wrong with it.

    >>> info = model_info({"provider": "xai", "id": "my-grok", "context_window": 8000,
    ...                    "capabilities": {"temperature": False}})
    >>> info.provider, info.context_window, info.unsupported_options
    ('grok', 8000, ('temperature',))
    >>> model_info({"provider": "openai", "id": "m", "context": 8000})
    Traceback (most recent call last):
    conduit.errors.ValidationError: model entry 'm' has no option 'context' (did you mean \
'context_window'?); its options are provider, id, aliases, kind, context_window, max_output, \
prices, capabilities, max_tokens_param, unsupported_options, source, gathered, verified, notes
    """
    if isinstance(entry, ModelInfo):
        return entry
    if not isinstance(entry, Mapping):
        raise ValidationError(f"a model entry is a map with provider and id, not {entry!r:.40}")
    where = f"model entry {entry.get('id')!r}"
    check_keywords(where, entry, ENTRY_KEYS)
    caps = entry.get("capabilities") or {}
    check_keywords(f"{where} capabilities", caps, CAPABILITIES)
    param = entry.get("max_tokens_param", "max_tokens")
    if param not in MAX_TOKENS_PARAMS:
        raise ValidationError(f"{where} max_tokens_param must be one of {MAX_TOKENS_PARAMS}")
    unsupported = _texts(f"{where} unsupported_options", entry.get("unsupported_options", ()))
    if caps.get("temperature") is False and "temperature" not in unsupported:
        unsupported = ("temperature", *unsupported)
    provider = _text(f"{where} provider", entry.get("provider"), optional=False)
    return ModelInfo(
        provider=provider_info(provider).name,
        id=_text(f"{where} id", entry.get("id"), optional=False),
        aliases=_texts(f"{where} aliases", entry.get("aliases", ())),
        kind=_text(f"{where} kind", entry.get("kind", "chat")),
        context_window=_whole(where, "context_window", entry.get("context_window")),
        max_output=_whole(where, "max_output", entry.get("max_output")),
        prices=_prices(f"{where} prices", entry.get("prices")),
        **{c: _flag(f"{where} capabilities[{c!r}]", caps.get(c)) for c in CAPABILITIES},
        max_tokens_param=param,
        unsupported_options=unsupported,
        source=_text(f"{where} source", entry.get("source")),
        gathered=_text(f"{where} gathered", entry.get("gathered")),
        verified=bool(_flag(f"{where} verified", entry.get("verified", False))),
        notes=_text(f"{where} notes", entry.get("notes")),
    )


def _merge(base: ModelInfo, entry: Mapping[str, Any]) -> ModelInfo:
    """*base* with the fields *entry* gives (capabilities merged one by one)."""
    fields = attrs.asdict(base, recurse=False)
    caps = {c: fields.pop(c) for c in CAPABILITIES}
    fields["prices"] = None if base.prices is None else dict(base.prices)
    if "temperature" in (entry.get("capabilities") or {}) and "unsupported_options" not in entry:
        fields["unsupported_options"] = [o for o in base.unsupported_options if o != "temperature"]
    merged = {**fields, **entry, "capabilities": {**caps, **(entry.get("capabilities") or {})}}
    return model_info(merged)


# -- the table: the file, read on first use, under what users add ------------------------------

_lock = threading.Lock()
_added: list[Mapping[str, Any] | ModelInfo] = []  # register_model's entries, in order
_table: tuple[ModelInfo, ...] | None = None
_found: dict[str, ModelInfo | None] = {}  # lookup's answers for the table _found_in
_found_in: tuple[ModelInfo, ...] | None = None


def _read(path: Any) -> list[Any]:
    import json  # deferred: only the first lookup reads a file

    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    entries = data.get("models") if isinstance(data, Mapping) else data
    if not isinstance(entries, list):
        raise ValidationError(f'{path}: a model file is {{"models": [entry, ...]}} or a list')
    return entries


def _shipped() -> list[Any]:
    return _read(os.path.join(os.path.dirname(__file__), "models.json"))


def _user_files() -> list[Any]:
    paths = [p for p in os.environ.get("CONDUIT_MODELS", "").split(os.pathsep) if p]
    return [entry for path in paths for entry in _read(path)]


def _build() -> tuple[ModelInfo, ...]:
    table = {(i.provider, i.id): i for i in map(model_info, _shipped())}
    order = list(table)
    for entry in [*_user_files(), *_added]:
        info = entry if isinstance(entry, ModelInfo) else None
        if info is None:
            provider = provider_info(str(entry.get("provider"))).name
            base = table.get((provider, str(entry.get("id"))))
            info = model_info(entry) if base is None else _merge(base, entry)
        key = (info.provider, info.id)
        order = [key, *(k for k in order if k != key)]  # the user's entries come first
        table[key] = info
    return tuple(table[k] for k in order)


def models() -> tuple[ModelInfo, ...]:
    """Return every model in the catalog, yours first (reads the file on first use).

    >>> any(m.id == "gpt-4o-mini" for m in models())
    True
    """
    global _table
    with _lock:
        if _table is None:
            _table = _build()
        return _table


def register_model(entry: Mapping[str, Any] | ModelInfo) -> ModelInfo:
    """Add a model to the catalog, or change one it has (the fields you give replace its own),
    for this process; return its entry. It wins over the shipped file and ``CONDUIT_MODELS``.

    >>> info = register_model({"provider": "ollama", "id": "qwen3:8b", "context_window": 40960,
    ...                        "prices": {"input": 0, "output": 0}})
    >>> context_window("ollama:qwen3:8b")
    40960
    """
    global _table
    info = model_info(entry)  # validate now, so a mistake is reported where it was made
    with _lock:
        _added.append(entry if isinstance(entry, ModelInfo) else dict(entry))
        _table = None
    return next(m for m in models() if (m.provider, m.id) == (info.provider, info.id))


def _matches(name: str, candidates: Iterable[ModelInfo]) -> ModelInfo | None:
    pool = list(candidates)
    for info in pool:
        if name in info.names:
            return info
    prefixed = [
        (len(n), info)
        for info in pool
        for n in info.names
        if name.startswith(n + "-") or name.startswith(n + "@")
    ]
    return max(prefixed, key=lambda x: x[0])[1] if prefixed else None


def lookup(model: str) -> ModelInfo | None:
    """Return the catalog entry of *model*, or None when the catalog does not know it.

    An exact id or alias first, else the longest id or alias that the name extends with ``-``
    or ``@`` (dated snapshots: ``gpt-4o-2024-08-06``, ``claude-sonnet-4-5@20250929``). With a
    ``provider:`` prefix that provider's entries are searched first, then all.

    >>> lookup("claude-haiku-4-5-20251001").id, lookup("xai:grok-4").provider
    ('claude-haiku-4-5', 'grok')
    >>> lookup("o3-mini-2025-01-31").max_tokens_param
    'max_completion_tokens'
    >>> lookup("my-finetune") is None
    True
    """
    global _found, _found_in
    table = _table if _table is not None else models()
    if _found_in is table and model in _found:  # codecs ask on every call: answers are kept
        return _found[model]
    found = _search(model, table)
    with _lock:
        if _found_in is not table or len(_found) >= 4096:
            _found, _found_in = {}, table
        _found[model] = found
    return found


def _search(model: str, table: tuple[ModelInfo, ...]) -> ModelInfo | None:
    try:
        info, name = split_model(model)
    except ValidationError:
        return None
    own = [m for m in table if m.provider == info.name] if ":" in model else []
    return (_matches(name, own) if own else None) or _matches(name, table)


def entry_for(provider: str, model: str) -> ModelInfo | None:
    """Return *provider*'s own catalog entry for *model* (a bare name), or None.

    Codecs ask this, not :func:`lookup`, so a model another provider also serves is mapped
    only by the entry of the provider the request goes to.

    >>> entry_for("openai", "o3-2025-04-16").max_tokens_param
    'max_completion_tokens'
    >>> entry_for("groq", "o3") is None
    True
    """
    info = lookup(f"{provider}:{model}")
    return info if info is not None and info.provider == provider else None


def context_window(model: str) -> int | None:
    """Return the context window (input plus output tokens) of *model*, or None if unknown.

    >>> context_window("anthropic:claude-haiku-4-5"), context_window("gpt-4o-mini")
    (200000, 128000)
    >>> context_window("my-finetune") is None
    True
    """
    info = lookup(model)
    return None if info is None else info.context_window


_warned: set[tuple[str, ...]] = set()  # what drop_unsupported has said


def drop_unsupported(model: str, options: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return *options* without those *model* refuses, logging a warning that names them
    (once per model and set of names in a process, so a loop of calls warns once).

    >>> drop_unsupported("o3", {"temperature": 0.2, "seed": 1}) == {"seed": 1}
    True
    >>> drop_unsupported("gpt-4o", {"temperature": 0.2})["temperature"]
    0.2
    """
    info = lookup(model)
    refused = sorted(k for k in options if info is not None and k in info.unsupported_options)
    if not refused:
        return options
    said = (model, *refused)
    if said not in _warned:
        _warned.add(said)
        log.warning(
            "%s does not accept %s: left out of the request (conduit.catalog)",
            model,
            ", ".join(refused),
        )
    if isinstance(options, PMap):
        return options.discard(refused[0]) if len(refused) == 1 else _without(options, refused)
    return {k: v for k, v in options.items() if k not in refused}


def _without(options: PMap[str, Any], keys: Iterable[str]) -> PMap[str, Any]:
    e = options.evolver()
    for k in keys:
        e.remove(k)
    return e.persistent()


def wire_options(model: str, options: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return *options* as *model* takes them: refused options left out (one warning), and
    ``max_tokens`` sent as ``max_completion_tokens`` where the model wants that.

    >>> wire_options("gpt-5-mini", {"max_tokens": 50, "temperature": 0}) == {
    ...     "max_completion_tokens": 50}
    True
    >>> wire_options("gpt-4o-mini", {"max_tokens": 50}) == {"max_tokens": 50}
    True
    """
    options = drop_unsupported(model, options)
    info = lookup(model)
    if info is None or info.max_tokens_param == "max_tokens" or "max_tokens" not in options:
        return options
    limit = options["max_tokens"]
    if isinstance(options, PMap):
        return options.remove("max_tokens").set(info.max_tokens_param, limit)
    rest = {k: v for k, v in options.items() if k != "max_tokens"}
    return {**rest, info.max_tokens_param: limit}
