"""The ``conduit`` command (also ``python -m conduit``): chat, index, ask, models.

Offline by default: with no API key and no local server configured, ``chat`` talks to the mock
(which echoes), ``index`` uses the hash embedder and a store file, and ``ask`` prints the
passages it retrieved with a note on how to add a model. Set ``OPENAI_API_KEY`` (or another
provider's key), or pass ``-m provider:model`` (``ollama:llama3.2`` for a local server).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from conduit._data import mask_url
from conduit.registry import PROVIDERS

__all__ = ["EXIT_CODES", "UsageError", "default_model", "main"]
DEFAULT_STORE = "conduit-index.npz"

#: Every exit status of the command, documented in docs/cli.md (tests check the two agree).
EXIT_CODES = {
    0: "success",
    1: "the provider or Conduit refused the call (an error the message explains)",
    2: "usage: a missing or wrong argument, a missing file or index",
    3: "authentication: no key, or the key was refused (401/403)",
    4: "the service could not be reached or did not answer in time, retries included",
    5: "rate limited or over budget, retries included",
    6: "a file could not be read or written",
    70: "an internal error (a bug in Conduit: please report it)",
    130: "interrupted (Ctrl-C)",
    141: "the reader of the output went away (a closed pipe)",
}


class UsageError(Exception):
    """A command used wrongly; the message says how to use it (exit status 2)."""


def exit_code(exc: BaseException) -> int:
    """Return the documented exit status for *exc* (see :data:`EXIT_CODES`).

    >>> import conduit as c
    >>> exit_code(c.AuthenticationError("no key")), exit_code(c.RateLimitError("slow"))
    (3, 5)
    >>> exit_code(FileNotFoundError("x")), exit_code(KeyError("bug"))
    (6, 70)
    """
    import conduit as c

    if isinstance(exc, UsageError | c.ValidationError):
        return 2
    if isinstance(exc, c.AuthenticationError | c.PermissionDeniedError):
        return 3
    if isinstance(exc, c.ConnectionError | c.TimeoutError | c.ServerError):
        return 4
    if isinstance(exc, c.RateLimitError | c.BudgetExceededError):
        return 5
    if isinstance(exc, c.ConduitError):
        return 1
    if isinstance(exc, OSError):
        return 6
    return 70


_KEYS = list(dict.fromkeys(info.env_key for info in PROVIDERS if info.env_key))
_LOCAL = next(info for info in PROVIDERS if info.base_url and not info.env_key)
HOW_TO_ADD_A_MODEL = (
    f"No model is configured, so Conduit is running offline. To get written answers, set "
    f"{_KEYS[0]} (or {', '.join(_KEYS[1:])}), or start a local server and pass "
    f"-m {_LOCAL.name}:{_LOCAL.default_model} (any OpenAI-compatible server: set "
    f"{PROVIDERS[0].base_url_env}, and CONDUIT_MODEL={PROVIDERS[0].name}:NAME for its model)."
)


def default_model(env: dict[str, str] | None = None) -> str | None:
    """Return ``provider:model`` for the first configured provider, or None when offline.

    ``CONDUIT_MODEL`` wins; then the providers in the registry's order: one whose variables
    are all set, or (one that needs a single key) whose base URL variable points at a server of
    your own, which may need no key.

    >>> default_model({"ANTHROPIC_API_KEY": "k"})
    'anthropic:claude-haiku-4-5'
    >>> default_model({"OPENAI_BASE_URL": "http://localhost:8000/v1"})
    'openai:gpt-4o-mini'
    >>> default_model({}) is None
    True
    """
    env = dict(os.environ) if env is None else env
    if env.get("CONDUIT_MODEL"):
        return env["CONDUIT_MODEL"]
    for info in PROVIDERS:
        if info.needs and all(env.get(var) for var in info.needs):
            return f"{info.name}:{info.default_model}"
    for info in PROVIDERS:
        own = info.base_url_env and env.get(info.base_url_env)
        if own and not info.requires and own.rstrip("/") != (info.base_url or "").rstrip("/"):
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


def _reporter(err: TextIO, attempts: int) -> Any:
    """A middleware, inside the retry, that says on stderr why an attempt failed and that
    another follows (the last failure is left to the one-line error)."""
    import conduit as c

    tried = [0]

    def report(req: Any) -> Any:
        tried[0] += 1
        try:
            return (yield req)
        except c.ConduitError as exc:
            if c.is_retryable(exc) and tried[0] < attempts:
                err.write(f"\n(attempt {tried[0]} failed: {_one_line(exc)}; retrying)\n")
                err.flush()
            raise

    return c.with_middleware(report)


def _stacked(req: Any, args: argparse.Namespace, err: TextIO) -> Any:
    """The request with the CLI's reliability: a deadline, retries that say so, the cost."""
    from toolz import pipe

    import conduit as c
    from conduit.cost import price_for

    layers = [c.with_cost] if price_for(str(req["model"])) is not None else []
    if args.timeout > 0:
        layers.append(c.with_timeout(args.timeout))
    if args.retries > 0:
        layers.append(c.with_retry(max_attempts=args.retries + 1))
        layers.append(_reporter(err, args.retries + 1))
    return pipe(req, *layers)


def _run_stream(req: Any, out: TextIO) -> Any:
    """Print the answer token by token as it streams; return the final context (the response
    and what the middleware added: cost, attempts)."""
    from functools import partial

    from conduit._drive import Done
    from conduit.exchange import exchange_stream
    from conduit.middleware import stream_with

    final = None
    for item in stream_with(partial(exchange_stream, "openai"), req, keep_done=True):
        if isinstance(item, Done):
            final = item.ctx
        elif item["type"] == "content_delta":
            out.write(item["text"])
            out.flush()
    out.write("\n")
    out.flush()
    assert final is not None, "a stream ends with its Done"
    return final


SLASH = {
    "/help": "list these commands",
    "/exit": "leave (also /quit, Ctrl-D)",
    "/reset": "forget the conversation (the system prompt stays)",
    "/save FILE": "write the conversation to FILE (JSON)",
    "/model NAME": "talk to another model from the next turn",
    "/history": "print the conversation so far",
}


def _slash(text: str, state: dict[str, Any], err: TextIO, out: TextIO) -> bool | None:
    """Handle a slash command locally; return False to leave, True if handled, None if *text*
    is a message (``//x`` sends ``/x``)."""
    import conduit as c

    if not text.startswith("/") or text.startswith("//"):
        return None
    word, _, rest = text.partition(" ")
    rest = rest.strip()
    if word in ("/exit", "/quit"):
        return False
    if word == "/help":
        for name, what in SLASH.items():
            err.write(f"  {name:<12} {what}\n")
        err.write("  //text       send a message that starts with /\n")
    elif word == "/reset":
        state["history"] = [m for m in state["history"] if m["role"] == "system"]
        err.write("(history cleared)\n")
    elif word == "/save":
        target = str(Path(rest or "conversation.json").expanduser())
        folder = Path(target).resolve().parent
        if not folder.is_dir():
            err.write(f"error: {folder} is not a folder (nothing was saved; try another path)\n")
            return True
        _save(state, target)
        err.write(f"(saved to {target})\n")
    elif word == "/model":
        if not rest:
            err.write(f"(model: {state['model'] or 'mock:echo'})\n")
            return True
        from conduit.registry import split_model

        try:
            split_model(rest)
        except c.ValidationError as exc:
            err.write(
                f"error: {_one_line(exc)} (the model is still {state['model'] or 'mock:echo'})\n"
            )
            return True
        state["model"] = rest
        err.write(f"(model: {rest})\n")
        _prefix_note(rest, err)
    elif word == "/history":
        for m in state["history"]:
            out.write(f"{m['role']}: {c.content(m)}\n")
    else:
        err.write(f"(unknown command {word}; /help lists them, //text sends text)\n")
    return True


def _turn(state: dict[str, Any], text: str, args: argparse.Namespace, io: Any) -> None:
    """One turn: send, stream the answer, then keep it (history file and log) at once."""
    import time

    import conduit as c
    from conduit.request import response_message

    out, err = io
    sent = [*state["history"], c.user(text)]
    started, clock = time.time(), time.monotonic()
    ctx, failure = None, None
    try:
        ctx = _run_stream(_stacked(_chat_request(state["model"], sent), args, err), out)
    except BaseException as exc:  # Ctrl-C included: the log says the call was interrupted
        failure = exc
        raise
    finally:
        log = state.get("log")
        if log is not None:
            try:
                log.record(
                    conversation=state["conversation"],
                    command="chat",
                    model=state["model"] or "mock:echo",
                    prompt=text,
                    messages=sent if ctx is None else [*sent, response_message(ctx["response"])],
                    ctx=ctx,
                    error=failure,
                    started=started,
                    latency=time.monotonic() - clock,
                    system=_system_of(sent),
                )
            except Exception as exc:  # the log is a convenience: the answer still counts
                out.flush()
                err.write(f"warning: the call was not logged: {_one_line(exc)}\n")
    state["history"] = [*sent, response_message(ctx["response"])]
    if args.history:  # written after every turn, atomically: a crash keeps what was answered
        _save(state, args.history)


def _save(state: dict[str, Any], target: str) -> None:
    """Write the chat to *target* with its model and conversation id (a chat resumed from the
    file goes on under the same id in the log)."""
    import conduit as c

    c.save_conversation(
        state["history"],
        target,
        model=state["model"] or "mock:echo",
        conversation=state["conversation"],
    )


def _system_of(messages: Sequence[Any]) -> str | None:
    """The system prompt a turn sent (what the log records), or None."""
    first = messages[0] if messages else None
    return str(first["content"]) if first is not None and first["role"] == "system" else None


def _prefix_note(model: str, err: TextIO) -> None:
    """Say so when a model named without a provider prefix is known as another provider's:
    unprefixed, it goes to OpenAI (or the server OPENAI_BASE_URL names)."""
    from conduit import catalog
    from conduit.registry import split_model

    provider, bare = split_model(model)
    if bare != model or os.environ.get(provider.base_url_env or ""):
        return  # a prefix was given, or the default provider is the user's own server
    info, goes = catalog.lookup(model), provider.name
    if info is not None and info.provider != goes:
        err.write(
            f"(note: {model} has no provider prefix, so it goes to {goes}; "
            f"for {info.provider}'s, use -m {info.provider}:{model})\n"
        )


def _stdin_text(inp: TextIO | None) -> str | None:
    """Piped input (None at a terminal, or with standard input closed)."""
    if inp is None or inp.closed or inp.isatty():
        return None
    return inp.read()


def cmd_chat(args: argparse.Namespace, out: TextIO, err: TextIO, inp: TextIO) -> int:
    import conduit as c
    from conduit import calllog

    log = None if args.no_log else _open_log(err)
    state: dict[str, Any] = {
        "model": args.model or default_model(),
        "history": [c.system(args.system)] if args.system else [],
        "conversation": calllog.new_conversation(),
        "log": log,
    }
    if args.continue_:
        if log is None:
            raise UsageError("-c continues the last chat from the log, which is turned off")
        latest = log.latest_conversation()
        if latest is None:
            raise UsageError("-c: no earlier chat in the log to continue")
        state["conversation"], logged_model, state["history"] = latest
        state["model"] = args.model or logged_model
    if args.history and Path(args.history).exists():
        saved = c.load_conversation(args.history)
        state["history"] = list(saved["messages"])
        kept = saved.get("model")  # the chat goes on with its model, unless -m says otherwise
        if not args.model and kept and not str(kept).startswith("mock:"):
            state["model"] = kept
        if isinstance(saved.get("conversation"), str) and not args.continue_:
            state["conversation"] = saved["conversation"]
    if args.system and (args.continue_ or args.history):  # -s wins over the resumed prompt
        rest = [m for m in state["history"] if m["role"] != "system"]
        state["history"] = [c.system(args.system), *rest]
    if state["model"] is None:
        err.write("(offline: the mock echoes what you type)\n")
        _offline_note(err)
    else:
        _prefix_note(str(state["model"]), err)
    prompt = " ".join(args.prompt).strip()
    interactive = inp.isatty() or args.interactive
    piped = None if interactive else _stdin_text(inp)
    if piped and piped.strip():  # `cat notes.txt | conduit chat "summarize:"`, as llm does
        prompt = f"{prompt}\n\n{piped.strip()}" if prompt else piped.strip()
    if prompt:
        _turn(state, prompt, args, (out, err))
        return 0
    if not interactive:
        raise UsageError('chat needs a prompt: conduit chat "Hello", or pipe text in')
    if inp.isatty():
        _readline()
        model = state["model"] or "mock:echo"
        err.write(f"Conduit chat with {model} — /help for commands, /exit to leave.\n")
    prompted = inp.isatty() and inp is sys.stdin
    status = 0  # a scripted chat (input not a terminal) ends with its last turn's status
    while True:
        try:
            line = input("you> ") if prompted else inp.readline()
        except EOFError:
            break
        if not line and not prompted:  # readline's end of input ("" from input() is Enter)
            break
        text = line.strip()
        if not text:
            continue
        try:
            handled = _slash(text, state, err, out)
        except OSError as exc:  # /save to a path that cannot be written: say so, go on
            err.write(f"error: {_one_line(exc)} (nothing was saved; try another path)\n")
            continue
        if handled is False:
            break
        if handled:
            continue
        if text.startswith("//"):
            text = text[1:]
        if inp.isatty():
            out.write("assistant> ")
        try:
            _turn(state, text, args, (out, err))
            status = 0
        except KeyboardInterrupt:  # Ctrl-C stops the answer, not the chat
            out.flush()
            err.write("\n(interrupted: the turn was not kept; Ctrl-D or /exit leaves)\n")
            status = 130
        except c.ConduitError as exc:  # the turn failed: say so, keep the chat going
            again = "" if isinstance(exc, c.AuthenticationError) else "; try again"
            err.write(f"error: {_one_line(exc)} (the turn was not kept{again})\n")
            status = exit_code(exc)
        except OSError as exc:  # the answer came, the history file could not be written
            err.write(f"error: {_one_line(exc)} (the answer is in the chat, not in the file)\n")
            status = exit_code(exc)
    if prompted:
        err.write("\n")  # Ctrl-D leaves the prompt's line: the shell starts on its own
        return 0
    return status


#: What to do about a provider's failure at the command line (the library's own advice, "add
#: c.with_retry", means nothing here: the command retried already).
_CLI_HINTS = {
    "RateLimitError": "the provider is rate limiting: wait a little, or raise --retries",
    "ServerError": "the provider kept failing: try again later, or raise --retries",
    "ContextLengthError": "the chat is too long for the model: /reset, or start a new chat",
}


#: The library's advice in error messages, as a command-line user acts on it.
_CLI_WORDS = (
    # the library's Python alternative to an environment variable: the variable is the advice
    (re.compile(r",? or pass [^;()]*?(\([^)]*\)[^;()]*?)? to c\.request"), ""),
    (re.compile(r"pass [^;]*? to c\.request, or "), ""),
    (re.compile(r"use openai with base_url"), "use -m openai:MODEL with OPENAI_BASE_URL set"),
    (re.compile(r"check base_url and the network, or add c\.with_retry"), "is the server up?"),
    (
        re.compile(r"raise the request's timeout or add c\.with_retry"),
        "try again, or raise --retries",
    ),
    (re.compile(r"raise the timeout given to c\.with_timeout"), "raise --timeout"),
)


def _one_line(exc: BaseException) -> str:
    from conduit.errors import AuthenticationError

    text = " ".join(str(exc).split()) or type(exc).__name__
    for library, cli in _CLI_WORDS:
        text = library.sub(cli, text)
    if isinstance(exc, AuthenticationError) and text.startswith(("no API key", "no credentials")):
        text += " (or choose another model with -m: conduit models lists them)"
    data = getattr(exc, "data", None)
    hint = data.get("hint") if isinstance(data, Mapping) else None
    if hint and text.endswith(f" ({hint})"):
        cli_hint = _CLI_HINTS.get(type(exc).__name__)
        text = text[: -len(hint) - 3] + (f" ({cli_hint})" if cli_hint else f" ({hint})")
    return text


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


def _check_store(target: Path) -> None:
    """Fail now, before any embedding work, if the index cannot be written at *target*."""
    folder = target.parent
    if target.is_dir():
        raise UsageError(f"-o {target} is a folder; name a file, e.g. -o {target / DEFAULT_STORE}")
    if not folder.is_dir():
        raise UsageError(f"-o {target}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"-o {target}: cannot write in the folder {folder}")


class _Eta:
    """The indexing progress bar on stderr, redrawn in place on a terminal (one line per tenth
    of the work elsewhere). The time left follows from characters embedded per second since
    the first batch, whose warm-up (a model load, a connection) would skew it for long, and
    is averaged with the previous estimate counted down, so it settles instead of jumping."""

    width = 30

    def __init__(self, chunks: Sequence[Any], err: TextIO, clock: Any = None) -> None:
        import itertools
        import time

        self.err, self.clock = err, clock or time.monotonic
        self.start = self.clock()
        self.sizes = list(itertools.accumulate((len(c["text"]) for c in chunks), initial=0))
        self.mark: tuple[float, int] | None = None  # (time, characters) after the first batch
        self.left: float | None = None
        self.at = self.start  # when self.left was estimated
        self.live = bool(getattr(err, "isatty", None) and err.isatty())
        self.tenth = -1

    def __call__(self, done: int, total: int) -> None:
        now, chars = self.clock(), self.sizes[done]
        if self.mark is None:
            self.mark = (now, chars)
        elif chars > self.mark[1]:
            rate = (chars - self.mark[1]) / max(now - self.mark[0], 1e-9)
            new = (self.sizes[-1] - chars) / rate
            if self.left is not None:  # the last estimate, counted down since, weighs half
                new = (new + max(self.left - (now - self.at), 0.0)) / 2
            self.left, self.at = new, now
        tenth = 10 * done // max(total, 1)
        if not self.live and tenth == self.tenth and done < total:
            return
        self.tenth = tenth
        self.err.write(("\r" if self.live else "") + self.line(done, total, now))
        self.err.write("\x1b[K" if self.live and done < total else "\n")
        self.err.flush()

    def line(self, done: int, total: int, now: float) -> str:
        filled = self.width * done // max(total, 1)
        if done >= total:
            left = f"done in {_duration(now - self.start)}"
        else:
            left = "estimating" if self.left is None else f"~{_duration(self.left)} left"
        return f"[{'#' * filled}{'-' * (self.width - filled)}] {done}/{total} chunks, {left}"


def _duration(seconds: float) -> str:
    """Seconds as ``42s`` or ``3m05s``.

    >>> _duration(4.4), _duration(185)
    ('4s', '3m05s')
    """
    whole = round(seconds)
    return f"{whole}s" if whole < 60 else f"{whole // 60}m{whole % 60:02d}s"


def _load_folder(folder: Path, args: argparse.Namespace, err: TextIO) -> Any:
    """The documents to index, after one line per file that could not be read and one summary
    of what was skipped."""
    import conduit as c
    from conduit.rag.documents import Loaded, load_folder, skip_summary

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if folder.is_dir():
            found = load_folder(
                folder,
                follow_symlinks=args.follow_symlinks,
                ignore=not args.no_ignore,
                hidden=args.include_hidden,
            )
        else:
            found = Loaded(documents=c.load_documents(folder))
    _notes(err, caught)
    for s in found.skipped:
        if s.reason in ("binary", "unreadable"):
            kind = "note" if s.reason == "binary" else "warning"
            err.write(f"{kind}: skipped {s.path}: {s.detail}\n")
    listed = [s for s in found.skipped if s.reason != "symlink outside"]  # noted above
    if listed:
        err.write(f"{skip_summary(listed)} (--include-hidden, --no-ignore: read them)\n")
    return found.documents


def cmd_index(args: argparse.Namespace, out: TextIO, err: TextIO, inp: TextIO) -> int:
    import conduit as c
    from conduit._files import write_atomic

    folder = Path(args.folder)
    if not folder.exists():
        err.write(f"error: no such file or folder: {folder}\n")
        return 2
    target = Path(args.store)
    _check_store(target)
    docs = _load_folder(folder, args, err)
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
        store = c.add_documents(store, chunks, embed, batch_size=64, progress=_Eta(chunks, err))
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


#: passages from files with these suffixes print with their line breaks and indentation
CODE_SUFFIXES = frozenset({
    ".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".go", ".rs", ".java", ".kt", ".c", ".h", ".cc",
    ".cpp", ".hpp", ".cs", ".rb", ".php", ".swift", ".sh", ".bash", ".sql", ".toml", ".yaml",
    ".yml", ".json", ".ini", ".cfg",
})  # fmt: skip


def _source(hit: Any) -> str:
    """Where a passage comes from: ``path:line`` where the line is known (HTML and PDF text is
    extracted, so its lines are not the file's), ``path @offset`` for an older index."""
    meta = hit["document"]["metadata"]
    where = meta.get("source") or hit["document"]["id"]
    if meta.get("type") in ("html", "pdf"):
        return f"{where}"
    if meta.get("line") is not None:
        return f"{where}:{meta['line']}"
    start = meta.get("start")
    return f"{where}" + (f" @{start}" if start is not None else "")


def _passage(hit: Any, lines: int = 12, chars: int = 400) -> str:
    """A passage as ``ask`` prints it, indented: code keeps its lines and indentation (the
    first *lines* of them), prose is one wrapped run of words (its first *chars*)."""
    import textwrap

    meta, text = hit["document"]["metadata"], hit["document"]["text"]
    if Path(str(meta.get("source") or "")).suffix.lower() in CODE_SUFFIXES:
        code = " " * int(meta.get("column") or 0) + text  # the first line's indentation too
        kept = [line.rstrip() for line in code.splitlines()]
        shown = textwrap.dedent("\n".join(kept[:lines] + (["..."] if len(kept) > lines else [])))
        return textwrap.indent(shown, "    ")
    if "```" in text or "~~~" in text:  # Markdown code: fenced lines stay lines, prose wraps
        return _fenced(text, lines, chars)
    words = " ".join(text.split())
    return _wrapped(words[:chars] + ("..." if len(words) > chars else ""))


def _wrapped(prose: str) -> str:
    """Prose as ``ask`` prints it: wrapped at 96 columns, indented."""
    import textwrap

    return textwrap.fill(prose, width=96, initial_indent="    ", subsequent_indent="    ")


def _fenced(text: str, lines: int, chars: int) -> str:
    """A Markdown passage holding fenced code: prose wrapped, code lines kept (at most *lines*
    of them), about *chars* characters in all. A passage cut from inside a code block (an odd
    number of fences, the first one bare) starts in the code."""
    fences = [ln.strip() for ln in text.splitlines() if ln.lstrip().startswith(_FENCES)]
    fenced = len(fences) % 2 == 1 and fences[0] in _FENCES
    out: list[str] = []
    prose: list[str] = []
    code_lines, used = 0, 0

    def flush() -> None:
        if prose:
            out.append(_wrapped(" ".join(prose)))
            prose.clear()

    for line in text.splitlines():
        left = chars - used
        fence = line.lstrip().startswith(_FENCES)
        if left <= 0 or (fenced and not fence and code_lines >= lines):
            flush()
            out.append("    ...")
            break
        shown = line if len(line) <= left else line[:left] + "..."
        if fence:
            flush()
            fenced = not fenced
            out.append("    " + shown.strip())
        elif fenced:
            out.append("    " + shown.rstrip())
            code_lines += 1
        else:
            prose.extend(shown.split())
        used += len(shown)
    flush()
    return "\n".join(out)


_FENCES = ("```", "~~~")


def cmd_ask(args: argparse.Namespace, out: TextIO, err: TextIO, inp: TextIO) -> int:
    import conduit as c

    store_path = Path(args.store)
    if not store_path.exists():
        raise UsageError(f"no index at {store_path}; build one first: conduit index FOLDER")
    if store_path.is_dir():
        raise UsageError(
            f"{store_path} is a folder: -s takes the index file (conduit index writes "
            "conduit-index.npz)"
        )
    meta = _settings(_meta_path(store_path))
    question = " ".join(args.question).strip()
    if not args.question:  # echo "how do retries work?" | conduit ask (an empty "" is not this)
        question = (_stdin_text(inp) or "").strip()
    if not question:
        raise UsageError('ask needs a question: conduit ask "How do retries work?"')
    store = c.load_store(store_path)
    if args.vector_only:
        find = c.retriever(_embedder(meta), store, k=args.k)
    else:  # BM25 and the embedder's ranking, fused (recall@5 0.933 offline; benchmarks/)
        find = c.hybrid_retriever(_embedder(meta), store, k=args.k)
    hits = find(question)
    model = args.model or default_model()
    if model is None or model.startswith("mock"):
        out.write(f"Passages for: {question}\n\n")
        for i, hit in enumerate(hits, 1):
            out.write(f"[{i}] {_source(hit)} (score {hit['score']:.3f})\n{_passage(hit)}\n\n")
        _offline_note(out)
        return 0
    import time

    from conduit import calllog

    req = _stacked(c.with_retrieval(lambda q: hits)(c.request(model, question)), args, err)
    log = None if args.no_log else _open_log(err)
    started, clock, ctx, failure = time.time(), time.monotonic(), None, None
    try:
        ctx = _run_stream(req, out)
    except Exception as exc:
        failure = exc
        raise
    finally:
        if log is not None:
            log.record(
                conversation=calllog.new_conversation(),
                command="ask",
                model=model,
                prompt=question,
                messages=[c.user(question)],
                ctx=ctx,
                error=failure,
                started=started,
                latency=time.monotonic() - clock,
            )
    out.write("\nSources:\n")
    for i, hit in enumerate(hits, 1):
        out.write(f"[{i}] {_source(hit)}\n")
    return 0


# -- logs ---------------------------------------------------------------------------------------


def _when(started: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))


def _row_line(row: dict[str, Any]) -> str:
    said = row["error"] or row["answer"] or ""
    said = " ".join(said.split())
    prompt = " ".join(row["prompt"].split())
    cost = f" ${row['cost']:.4f}" if row.get("cost") else ""
    return (
        f"{row['id']}  {_when(row['started'])}  {row['command']:<4} {row['model']}{cost}\n"
        f"    > {prompt[:100]}\n    {'!' if row['error'] else '<'} {said[:100]}\n"
    )


def _shown(value: Any) -> str:
    """A logged value as the terminal shows it: what is not known is "-", never "None"."""
    return "-" if value is None else str(value)


def cmd_logs(args: argparse.Namespace, out: TextIO, err: TextIO, inp: TextIO) -> int:
    from conduit import calllog

    path = calllog.default_path()
    if args.action == "path":
        out.write(f"{path if path is not None else 'off (CONDUIT_LOGS)'}\n")
        return 0
    if path is None:
        raise UsageError("the log is off (CONDUIT_LOGS); unset it to record calls")
    if not path.exists():
        out.write(f"(no calls logged yet; the log will be at {path})\n")
        return 0
    log = calllog.open_log(path)
    assert log is not None
    text = " ".join(args.text)  # several words need no quotes
    if args.action == "show":
        if not text:
            raise UsageError("logs show needs a call's id (from `conduit logs`)")
        row = log.show(text)
        if row is None:
            raise UsageError(f"no single logged call has an id starting {text!r}")
        if args.json:
            out.write(calllog.as_json(row) + "\n")
            return 0
        for key in ("id", "conversation", "command", "model", "input_tokens", "output_tokens"):
            out.write(f"{key}: {_shown(row[key])}\n")
        out.write(f"started: {_when(row['started'])}\nlatency: {_shown(row['latency_ms'])} ms\n")
        out.write(f"cost: {_shown(row['cost'])}\nattempts: {_shown(row['attempts'])}\n")
        if row["system"]:
            out.write(f"system: {row['system']}\n")
        out.write(f"\nprompt:\n{row['prompt']}\n\n")
        out.write(f"error:\n{row['error']}\n" if row["error"] else f"answer:\n{row['answer']}\n")
        return 0
    if args.action == "search":
        if not text:
            raise UsageError("logs search needs text to look for")
        rows = log.search(text, args.n)
    else:
        rows = log.recent(args.n)
    if args.json:  # JSON Lines: one compact object a line, for jq and log tools
        out.write("".join(calllog.as_json(r, indent=None) + "\n" for r in rows))
        return 0
    for row in rows:
        out.write(_row_line(row))
    if not rows:
        out.write("(nothing found)\n")
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


def _model_line(info: Any, width: int = 28) -> str:
    price = info.prices
    cost = f"{price['input']:>7.3f} / {price['output']:.3f}" if price else f"{'-':>7} / -    "
    cached = f"{price['cache_read']:.3f}" if price and "cache_read" in price else "-"
    ctx = f"{info.context_window:,}" if info.context_window else "-"
    out = f"{info.max_output:,}" if info.max_output else "-"
    mark = "" if info.verified else " (unverified)"
    return f"  {info.id:<{width}} {cost:<17} {cached:>7} {ctx:>10} {out:>8}  {_caps(info)}{mark}\n"


def cmd_models(args: argparse.Namespace, out: TextIO, err: TextIO, inp: TextIO) -> int:
    from conduit import catalog

    chosen = default_model()
    out.write(f"default model: {chosen or 'none (offline: mock)'}\n\n")
    for info in PROVIDERS:
        if not info.needs:
            state = "always available (offline)"
        elif all(os.environ.get(var) for var in info.needs):
            state = "configured"
        elif info.base_url_env and os.environ.get(info.base_url_env):
            where = mask_url(os.environ[info.base_url_env])
            state = f"the server at {where} ({info.base_url_env}; it may need no key)"
        elif info.env_key is None and info.base_url:  # a local server: tried where it usually is
            state = f"a local server at {info.base_url} (set {info.base_url_env} for another)"
        else:
            state = info.setup or f"set {' and '.join(info.needs)} to use"
        out.write(f"{info.name:<10} {state}\n    e.g. -m {info.name}:{info.default_model}\n")
    out.write(
        "\nModels (conduit.catalog; USD per million tokens: input / output, cached input; "
        "context and maximum output in tokens):\n"
    )
    known = catalog.models()
    width = max([28, *(len(m.id) for m in known)])
    for info in PROVIDERS:
        listed = [m for m in known if m.provider == info.name]
        if listed:
            out.write(f"{info.name}\n")
            out.writelines(_model_line(m, width) for m in listed)
    if any(not m.verified for m in known):
        out.write(
            "\n(unverified): limits and prices not yet checked against the provider's own page "
            "(docs/models.md); register your own with CONDUIT_MODELS\n"
        )
    return 0


# -- entry point --------------------------------------------------------------------------------


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("conduit-llm")
    except PackageNotFoundError:  # run from a checkout without installing
        return "unknown"


def _at_least(low: float, kind: Any) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _open_log(err: TextIO) -> Any:
    """The call log, or None (with one warning) when it cannot be opened: a chat goes on."""
    from conduit import calllog

    try:
        return calllog.open_log()
    except (OSError, Exception) as exc:  # sqlite3.Error is not an OSError
        err.write(f"warning: not logging this call: {_one_line(exc)} (set CONDUIT_LOGS)\n")
        return None


def _reliability(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--retries", type=_at_least(0, int), default=3,
        help="retries of a failed call that may succeed again (429, 5xx, network); default 3",
    )  # fmt: skip
    cmd.add_argument(
        "--timeout", type=_at_least(0, float), default=120.0,
        help="seconds for a whole answer, retries included (0: none); default 120",
    )  # fmt: skip
    cmd.add_argument("--no-log", action="store_true", help="do not record this call in the log")


def parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``conduit`` command."""
    top = argparse.ArgumentParser(
        prog="conduit", description="Chat with models and ask questions over your files."
    )
    top.add_argument("--version", action="version", version=f"conduit {_version()}")
    sub = top.add_subparsers(dest="command", required=True)
    chat = sub.add_parser(
        "chat",
        help="chat with a model, streaming its answer",
        description="Piped text is added to the prompt (or is the prompt). Every turn is kept "
        "as soon as it is answered: in the log, and in --history FILE if given.",
    )
    chat.add_argument("prompt", nargs="*", help="one message (none: interactive)")
    chat.add_argument("-m", "--model", help="provider:model, e.g. anthropic:claude-haiku-4-5")
    chat.add_argument("-s", "--system", help="a system prompt")
    chat.add_argument("--history", help="a JSON file to continue from and save to")
    chat.add_argument(
        "-c", "--continue", dest="continue_", action="store_true",
        help="continue the last chat in the log",
    )  # fmt: skip
    chat.add_argument(
        "-i", "--interactive", action="store_true",
        help="read turns line by line from stdin even when it is not a terminal",
    )  # fmt: skip
    _reliability(chat)
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
    index.add_argument(
        "--include-hidden", action="store_true", help="also read dot-files and dot-folders"
    )
    index.add_argument(
        "--no-ignore",
        action="store_true",
        help="also read what .gitignore ignores, virtual environments, node_modules and build "
        "output (skipped by default)",
    )
    index.set_defaults(run=cmd_index)
    ask = sub.add_parser("ask", help="answer a question from an index, citing sources")
    ask.add_argument("question", nargs="*")
    ask.add_argument("-s", "--store", default=DEFAULT_STORE)
    ask.add_argument("-k", type=int, default=4, help="passages to retrieve")
    ask.add_argument("-m", "--model", help="provider:model")
    ask.add_argument(
        "--vector-only",
        action="store_true",
        help="rank by the embedder alone (default: BM25 and the embedder, fused)",
    )
    _reliability(ask)
    ask.set_defaults(run=cmd_ask)
    logs = sub.add_parser("logs", help="list, show or search the calls the command made")
    actions = ("list", "show", "search", "path")
    logs.add_argument("action", nargs="?", default="list", choices=actions)
    logs.add_argument("text", nargs="*", help="show: a call's id (or its start); search: text")
    logs.add_argument("-n", type=int, default=20, help="how many calls to list (default 20)")
    logs.add_argument(
        "--json", action="store_true", help="print rows as JSON Lines (one object a line)"
    )
    logs.set_defaults(run=cmd_logs)
    models = sub.add_parser("models", help="list providers, which are configured, and prices")
    models.set_defaults(run=cmd_models)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``conduit`` command; return its exit status (see :data:`EXIT_CODES`).

    Every failure is one line on stderr, ``error: ...``, never a traceback.
    """
    args = parser().parse_args(argv)
    try:
        stdin = sys.stdin if sys.stdin is not None else io.StringIO()  # `<&-`: nothing to read
        status: int = args.run(args, sys.stdout, sys.stderr, stdin)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
    except BrokenPipeError:  # e.g. `conduit models | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # one line and a documented status, whatever it was
        code = exit_code(exc)
        text = _one_line(exc)
        if code == 70:
            text = f"{type(exc).__name__}: {text} (a bug in Conduit: please report it)"
        elif code == 6 and isinstance(exc, OSError) and exc.filename is not None:
            text = f"{exc.strerror or text}: {exc.filename}"
        sys.stderr.write(f"error: {text}\n")
        return code
    return status
