"""The ``conduit`` command (also ``python -m conduit``): chat, index, ask, models.

Offline by default: with no API key and no local server configured, ``chat`` talks to the mock
(which echoes), ``index`` uses the hash embedder and a store file, and ``ask`` prints the
passages it retrieved with a note on how to add a model. Set ``OPENAI_API_KEY`` (or another
provider's key), or pass ``-m provider:model`` (``ollama:llama3.2`` for a local server).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from conduit.registry import PROVIDERS

__all__ = ["default_model", "main"]
DEFAULT_STORE = "conduit-index.npz"
_KEYS = [info.env_key for info in PROVIDERS if info.env_key]
_LOCAL = next(info for info in PROVIDERS if info.base_url and not info.env_key)
HOW_TO_ADD_A_MODEL = (
    f"No model is configured, so Conduit is running offline. To get written answers, set "
    f"{_KEYS[0]} (or {', '.join(_KEYS[1:])}), or start a local server and pass "
    f"-m {_LOCAL.name}:{_LOCAL.default_model} (any OpenAI-compatible server: set "
    f"{PROVIDERS[0].base_url_env})."
)


def default_model(env: dict[str, str] | None = None) -> str | None:
    """Return ``provider:model`` for the first configured provider, or None when offline.

    ``CONDUIT_MODEL`` wins; then the providers in the registry's order.

    >>> default_model({"ANTHROPIC_API_KEY": "k"})
    'anthropic:claude-haiku-4-5'
    >>> default_model({}) is None
    True
    """
    env = dict(os.environ) if env is None else env
    if env.get("CONDUIT_MODEL"):
        return env["CONDUIT_MODEL"]
    for info in PROVIDERS:
        if info.needs and all(env.get(var) for var in info.needs):
            return f"{info.name}:{info.default_model}"
    return None


def _offline_note(err: TextIO) -> None:
    err.write(f"note: {HOW_TO_ADD_A_MODEL}\n")


# -- chat ---------------------------------------------------------------------------------------


def _chat_request(model: str | None, messages: Sequence[Any]) -> Any:
    import conduit as c

    if model is None or model.split(":", 1)[0] == "mock":
        echo = c.mock_script(lambda req: c.content(req["messages"][-1]), chunk_delay=0.04)
        return c.request(model if model and ":" in model else "mock:echo", messages, mock=echo)
    return c.request(model, messages)


def _run_stream(req: Any, out: TextIO) -> Any:
    """Print the answer token by token as it streams; return the context with its response."""
    import conduit as c

    events = []
    for event in c.stream(req):
        events.append(event)
        if event["type"] == "content_delta":
            out.write(event["text"])
            out.flush()
    out.write("\n")
    out.flush()
    return req.set("response", c.collect(events))


def cmd_chat(args: argparse.Namespace, out: TextIO, err: TextIO, inp: TextIO) -> int:
    import conduit as c
    from conduit.request import response_message

    model = args.model or default_model()
    if model is None:
        err.write("(offline: the mock echoes what you type)\n")
        _offline_note(err)
    history: list[Any] = [c.system(args.system)] if args.system else []
    if args.history and Path(args.history).exists():
        history = list(c.load_conversation(args.history)["messages"])
    prompt = " ".join(args.prompt).strip()
    if prompt:
        ctx = _run_stream(_chat_request(model, [*history, c.user(prompt)]), out)
        _save(args, ctx)
        return 0
    interactive = inp.isatty()
    if interactive:
        _readline()
        err.write("Conduit chat — /exit to leave, /reset to forget, /save FILE to keep it.\n")
    while True:
        try:
            line = input("you> ") if interactive and inp is sys.stdin else inp.readline()
        except EOFError:
            break
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            break
        if text == "/reset":
            history = [m for m in history if m["role"] == "system"]
            err.write("(history cleared)\n")
            continue
        if text.startswith("/save"):
            target = text[5:].strip() or "conversation.json"
            c.save_conversation(history, target, model=model or "mock:echo")
            err.write(f"(saved to {target})\n")
            continue
        history.append(c.user(text))
        if interactive:
            out.write("assistant> ")
        ctx = _run_stream(_chat_request(model, history), out)
        history.append(response_message(ctx["response"]))
    if args.history:
        c.save_conversation(history, args.history, model=model or "mock:echo")
    return 0


def _save(args: argparse.Namespace, ctx: Any) -> None:
    if args.history and ctx is not None:
        import conduit as c

        c.save_conversation(ctx, args.history, model=ctx["model"])


def _readline() -> None:
    import importlib

    with contextlib.suppress(ImportError):  # line editing and up-arrow history for input()
        importlib.import_module("readline")


# -- index and ask ------------------------------------------------------------------------------


def _meta_path(store: Path) -> Path:
    return store.with_name(store.name + ".json")


def _embedder(meta: dict[str, Any]) -> Any:
    import conduit as c

    if meta["embedder"] == "hash":
        return c.hash_embedder(int(meta["dim"]))
    return c.provider_embedder(meta["embedder"])


def _digest(doc: Any) -> str:
    import hashlib

    return hashlib.sha256(doc["text"].encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _previous(store: Path, settings: dict[str, Any], err: TextIO) -> tuple[Any, dict[str, str]]:
    """The store and file digests of an earlier index built with the same settings, if any;
    an earlier index that cannot be read is rebuilt from scratch, with a note saying so."""
    import conduit as c

    meta_file = _meta_path(store)
    if not (store.exists() and meta_file.exists()):
        return None, {}
    try:
        meta = json.loads(meta_file.read_text())
    except ValueError:
        return None, {}
    if not isinstance(meta, dict) or not isinstance(meta.get("digests"), dict):
        return None, {}
    if any(meta.get(k) != v for k, v in settings.items()):
        return None, {}
    try:
        return c.load_store(store), meta["digests"]
    except c.ConduitError:
        err.write(f"note: {store} is damaged or not a Conduit store; rebuilding it from scratch\n")
        return None, {}


def _notes(err: TextIO, caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        err.write(f"note: {w.message} (on the command line: --follow-symlinks)\n")


def cmd_index(args: argparse.Namespace, out: TextIO, err: TextIO, inp: TextIO) -> int:
    import conduit as c
    from conduit._files import write_atomic
    from conduit.batching import Progress

    folder = Path(args.folder)
    if not folder.exists():
        err.write(f"error: no such file or folder: {folder}\n")
        return 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs = c.load_documents(folder, follow_symlinks=args.follow_symlinks)
    _notes(err, caught)
    if not docs:
        err.write(
            f"error: found no readable documents under {folder} (text, Markdown, rST, "
            "Python, HTML; PDF with the pdf extra)\n"
        )
        return 2
    settings = {
        "embedder": args.embedder,
        "dim": args.dim,
        "folder": str(folder.resolve()),
        "chunk_size": args.chunk_size,
        "overlap": args.overlap,
    }
    target = Path(args.store)
    store, before = (None, {}) if args.rebuild else _previous(target, settings, err)
    digests = {d["id"]: _digest(d) for d in docs}
    changed = [d for d in docs if before.get(d["id"]) != digests[d["id"]]]
    gone = set(before) - set(digests)
    stale = {d["id"] for d in changed} | gone
    if store is None:
        store = c.memory_store()
    elif stale:  # drop the chunks of files that changed or went away
        old = [x["id"] for x in store.documents if x["metadata"].get("parent") in stale]
        store = c.delete_documents(store, old)
    chunks = c.split_recursive(changed, chunk_size=args.chunk_size, chunk_overlap=args.overlap)
    embed = _embedder(settings)
    kept = len(docs) - len(changed)
    err.write(
        f"indexing {len(changed)} of {len(docs)} files as {len(chunks)} chunks"
        + (f" ({kept} unchanged, {len(gone)} removed)" if before else "")
        + "\n"
    )
    if chunks:
        bar = Progress(len(chunks), stream=err)
        store = c.add_documents(store, chunks, embed, batch_size=64, progress=bar)
    c.save_store(store, target)  # atomic: a failed or killed run leaves the old index whole
    meta = {**settings, "files": len(docs), "chunks": len(store), "digests": digests}
    write_atomic(_meta_path(target), json.dumps(meta, indent=1))
    out.write(f"wrote {target} ({len(store)} chunks from {len(docs)} files)\n")
    return 0


def _settings(meta_file: Path) -> dict[str, Any]:
    """The settings an index was built with (the hash embedder's, without its settings file)."""
    from conduit._files import corrupt

    if not meta_file.exists():
        return {"embedder": "hash", "dim": 384}
    try:
        meta = json.loads(meta_file.read_text())
        embedder = meta.get("embedder") if isinstance(meta, dict) else None
        if isinstance(embedder, str) and (embedder != "hash" or isinstance(meta.get("dim"), int)):
            return meta  # type: ignore[no-any-return]
    except ValueError:
        pass
    raise corrupt(meta_file, "is not an index's settings", "re-run `conduit index FOLDER`")


def _source(hit: Any) -> str:
    meta = hit["document"]["metadata"]
    where = meta.get("source") or hit["document"]["id"]
    start = meta.get("start")
    return f"{where}" + (f" @{start}" if start is not None else "")


def cmd_ask(args: argparse.Namespace, out: TextIO, err: TextIO, inp: TextIO) -> int:
    import conduit as c

    store_path = Path(args.store)
    if not store_path.exists():
        err.write(f"error: no index at {store_path}; build one first: conduit index FOLDER\n")
        return 2
    meta = _settings(_meta_path(store_path))
    question = " ".join(args.question).strip()
    if not question:
        err.write('error: ask needs a question: conduit ask "How do retries work?"\n')
        return 2
    find = c.retriever(_embedder(meta), c.load_store(store_path), k=args.k)
    hits = find(question)
    model = args.model or default_model()
    if model is None or model.startswith("mock"):
        out.write(f"Passages for: {question}\n\n")
        for i, hit in enumerate(hits, 1):
            text = " ".join(hit["document"]["text"].split())
            out.write(f"[{i}] {_source(hit)} (score {hit['score']:.2f})\n    {text[:400]}\n\n")
        _offline_note(out)
        return 0
    req = c.with_retrieval(lambda q: hits)(c.request(model, question))
    _run_stream(req, out)
    out.write("\nSources:\n")
    for i, hit in enumerate(hits, 1):
        out.write(f"[{i}] {_source(hit)}\n")
    return 0


# -- models -------------------------------------------------------------------------------------


def _caps(info: Any) -> str:
    flags = ("tools", "vision", "documents", "reasoning", "json_schema")
    if info.kind != "chat":
        return str(info.kind)
    have = [f for f in flags if getattr(info, f)]
    if info.temperature is False:
        have.append("no-temperature")
    return " ".join(have)


def _model_line(info: Any) -> str:
    price = info.prices
    cost = f"{price['input']:>7.3f} / {price['output']:.3f}" if price else f"{'-':>7} / -    "
    cached = f"{price['cache_read']:.3f}" if price and "cache_read" in price else "-"
    ctx = f"{info.context_window:,}" if info.context_window else "-"
    out = f"{info.max_output:,}" if info.max_output else "-"
    mark = "" if info.verified else " (unverified)"
    return f"  {info.id:<28} {cost:<17} {cached:>7} {ctx:>10} {out:>8}  {_caps(info)}{mark}\n"


def cmd_models(args: argparse.Namespace, out: TextIO, err: TextIO, inp: TextIO) -> int:
    from conduit import catalog

    chosen = default_model()
    out.write(f"default model: {chosen or 'none (offline: mock)'}\n\n")
    for info in PROVIDERS:
        if not info.needs:
            state = "always available (offline)"
        elif all(os.environ.get(var) for var in info.needs):
            state = "configured"
        else:
            state = info.setup or f"set {' and '.join(info.needs)} to use"
        out.write(f"{info.name:<10} {state}\n    e.g. -m {info.name}:{info.default_model}\n")
    out.write(
        "\nModels (conduit.catalog; USD per million tokens: input / output, cached input; "
        "context and maximum output in tokens):\n"
    )
    known = catalog.models()
    for info in PROVIDERS:
        listed = [m for m in known if m.provider == info.name]
        if listed:
            out.write(f"{info.name}\n")
            out.writelines(_model_line(m) for m in listed)
    return 0


# -- entry point --------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``conduit`` command."""
    top = argparse.ArgumentParser(
        prog="conduit", description="Chat with models and ask questions over your files."
    )
    sub = top.add_subparsers(dest="command", required=True)
    chat = sub.add_parser("chat", help="chat with a model, streaming its answer")
    chat.add_argument("prompt", nargs="*", help="one message (none: interactive)")
    chat.add_argument("-m", "--model", help="provider:model, e.g. anthropic:claude-haiku-4-5")
    chat.add_argument("-s", "--system", help="a system prompt")
    chat.add_argument("--history", help="a JSON file to continue from and save to")
    chat.set_defaults(run=cmd_chat)
    index = sub.add_parser("index", help="index a folder into a store file")
    index.add_argument("folder")
    index.add_argument("-o", "--store", default=DEFAULT_STORE, help=f"(default {DEFAULT_STORE})")
    index.add_argument("--chunk-size", type=int, default=800)
    index.add_argument("--overlap", type=int, default=100)
    index.add_argument("--embedder", default="hash", help="hash, or provider:model")
    index.add_argument("--dim", type=int, default=384, help="hash embedder dimensions")
    index.add_argument(
        "--rebuild", action="store_true", help="re-embed every file (default: only changed ones)"
    )
    index.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="also read files that symlinks in the folder lead to outside it",
    )
    index.set_defaults(run=cmd_index)
    ask = sub.add_parser("ask", help="answer a question from an index, citing sources")
    ask.add_argument("question", nargs="*")
    ask.add_argument("-s", "--store", default=DEFAULT_STORE)
    ask.add_argument("-k", type=int, default=4, help="passages to retrieve")
    ask.add_argument("-m", "--model", help="provider:model")
    ask.set_defaults(run=cmd_ask)
    models = sub.add_parser("models", help="list providers, which are configured, and prices")
    models.set_defaults(run=cmd_models)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``conduit`` command; return its exit status."""
    import conduit as c

    args = parser().parse_args(argv)
    try:
        status: int = args.run(args, sys.stdout, sys.stderr, sys.stdin)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
    except BrokenPipeError:  # e.g. `conduit models | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except c.ConduitError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return status
