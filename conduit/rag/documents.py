"""Documents: ``{"id", "text", "metadata"}`` maps, and loading them from files and folders."""

from __future__ import annotations

import codecs
import hashlib
import html.parser
import os
import re
import unicodedata
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
from pyrsistent import PMap, PVector, pvector

from conduit._data import freeze_map
from conduit.errors import ConduitError, ValidationError

__all__ = [
    "PDF_EXTRA",
    "REASONS",
    "SKIP_FOLDERS",
    "SUFFIXES",
    "Loaded",
    "Skipped",
    "as_documents",
    "decode_text",
    "document",
    "html_text",
    "load_documents",
    "load_folder",
    "skip_summary",
]

#: what load_documents reads, by file suffix
SUFFIXES = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".py": "python",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}


def document(
    text: str, id: str | None = None, metadata: Mapping[str, Any] | None = None
) -> PMap[str, Any]:
    """Return a document map; without an *id*, one is derived from the text.

    >>> document("hello", metadata={"lang": "en"})["id"]
    'doc-2cf24dba5fb0'
    """
    if not isinstance(text, str):
        raise ValidationError(f"a document's text is a string, got {type(text).__name__}")
    ident = id or "doc-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    return freeze_map({"id": ident, "text": text, "metadata": dict(metadata or {})})


def as_documents(docs: Any) -> PVector[Any]:
    """Return *docs* (a string, a document, or an iterable of either) as a vector of documents."""
    if isinstance(docs, str | Mapping):
        docs = [docs]
    out = []
    for d in docs:
        if isinstance(d, str):
            out.append(document(d))
        elif isinstance(d, Mapping) and "text" in d:
            out.append(document(d["text"], d.get("id"), d.get("metadata")))
        else:
            raise ValidationError(f"expected a document map or a string, got {d!r:.60}")
    return pvector(out)


class _TextOf(html.parser.HTMLParser):
    SKIP = frozenset({"script", "style", "head", "noscript"})
    BLOCK = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "section",
            "article",
            "pre",
            "table",
            "ul",
            "ol",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if not self.skipping:
            self.parts.append(data)


def html_text(markup: str) -> tuple[str, str]:
    """Return (visible text, title) of an HTML page: scripts, styles and tags removed.

    >>> html_text("<html><head><title>T</title><style>p{}</style></head>"
    ...           "<body><p>Hello <b>world</b></p><script>x()</script></body></html>")
    ('Hello world', 'T')
    """
    parser = _TextOf()
    parser.feed(markup)
    raw = "".join(parser.parts)
    paragraphs = [" ".join(p.split()) for p in raw.split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p), parser.title.strip()


#: what a PDF needs when pypdf is missing
PDF_EXTRA = "needs the pdf extra: pip install 'conduit-llm[pdf]'"


def _pdf_text(path: Path) -> str:
    try:
        import pypdf
    except ImportError:
        raise ConduitError(f"{path} {PDF_EXTRA}", data={"reason": PDF_EXTRA}) from None
    reader = pypdf.PdfReader(str(path))
    return "\n\n".join(page.extract_text() or "" for page in reader.pages)


_BOMS = (  # UTF-32's marks first: UTF-16's little-endian mark is a prefix of one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(data: bytes) -> str | None:
    """Return the text in *data*, or None when it is binary (not text in any encoding).

    A byte-order mark decides; then a NUL byte in the first 8 KB means binary; then UTF-8; else
    the encoding is detected (charset-normalizer), Western European (cp1252, a superset of
    Latin-1's printable characters) winning a tie, as browsers do.

    >>> decode_text("naïve".encode())
    'naïve'
    >>> decode_text("Café crème brûlée, naïve façade.".encode("latin-1"))
    'Café crème brûlée, naïve façade.'
    >>> decode_text("Straße, crème".encode("latin-1"))
    'Straße, crème'
    >>> decode_text(b"GIF89a\\x00\\x01") is None
    True
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _detected(data)


def _detected(data: bytes) -> str | None:
    import charset_normalizer

    matches = list(charset_normalizer.from_bytes(data))
    if not matches:
        return None
    best = matches[0]
    try:
        western: str | None = data.decode("cp1252")
    except UnicodeDecodeError:
        western = None
    if western is None:
        return str(best)
    # short Western text fits many code pages equally well; cp1250 would turn "è" into "č",
    # cp775 "ö" into "÷", big5 "Très" into "Tr鋊": the code page that reads as words wins
    if best.encoding.startswith(("utf_16", "utf_32")):  # no BOM and no NUL: 8-bit text
        return western
    if _oddities(western) < _oddities(str(best)):
        return western
    tied = [m for m in matches if m.chaos <= best.chaos and m.coherence >= best.coherence]
    if any(str(m) == western for m in tied):
        return western
    return str(best)


def _script(ch: str) -> str:
    return unicodedata.name(ch, "?").split(" ", 1)[0]


def _oddities(text: str) -> int:
    """How many words of *text* read oddly: a symbol or control character between two letters
    (``sch÷n``), or letters of two scripts (``crﻟme``, ``Tr鋊``). Words of one language in the
    right code page have none (apostrophes and dashes are punctuation, not symbols).

    >>> _oddities("Das Wetter ist heute schön, l\u2019été."), _oddities("sch÷n"), _oddities("crﻟme")
    (0, 1, 1)
    """
    odd = 0
    for word in text.split():
        letters = {_script(ch) for ch in word if ch.isalpha()}
        inner = word[1:-1]
        strange = any(ord(ch) > 127 and unicodedata.category(ch)[0] in "SC" for ch in inner)
        odd += len(letters) > 1 or strange
    return odd


def _load(path: Path, root: Path | None) -> PMap[str, Any] | None:
    """The document of a file with a known suffix; None when the file holds binary data."""
    kind = SUFFIXES[path.suffix.lower()]
    meta: dict[str, Any] = {"source": str(path), "type": kind}
    if kind == "pdf":
        text = _pdf_text(path)
    else:
        decoded = decode_text(path.read_bytes())
        if decoded is None:
            return None
        text = decoded
        if kind == "html":
            text, title = html_text(text)
            if title:
                meta["title"] = title
    ident = str(path.relative_to(root)) if root else str(path)
    return document(text, ident, meta)


def _pattern(glob: str) -> re.Pattern[str]:
    """The regular expression of a ``Path.glob`` pattern over ``/``-separated relative paths.

    >>> [bool(_pattern("**/*.md").fullmatch(p)) for p in ("a.md", "x/y/a.md", "a.txt")]
    [True, True, False]
    >>> bool(_pattern("*.md").fullmatch("x/a.md"))
    False
    """
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[" and "]" in glob[i + 2 :]:
            end = glob.index("]", i + 2)
            body = glob[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out))


# -- what a folder walk leaves out -------------------------------------------------------------

#: folders left out by default (``ignore=True``), by name, with the reason recorded
SKIP_FOLDERS = {
    "node_modules": "dependencies",
    "__pycache__": "cache",
    "build": "build output",
    "dist": "build output",
    "site": "build output",
    "target": "build output",
}
#: every reason :class:`Skipped` records, in the order :func:`skip_summary` lists them
REASONS = (
    "hidden",
    "virtual environment",
    "dependencies",
    "cache",
    "build output",
    "in .gitignore",
    "binary",
    "unreadable",
    "symlink outside",
)
_ENVIRONMENT = ("pyvenv.cfg", "conda-meta")  # what a virtual environment holds at its top


@attrs.frozen(kw_only=True)
class Skipped:
    """A file or folder :func:`load_folder` left out: its path, why (one of :data:`REASONS`),
    and for an unreadable file what went wrong (``"needs the pdf extra: ..."``)."""

    path: str
    reason: str
    detail: str = ""
    folder: bool = False


@attrs.frozen(kw_only=True)
class Loaded:
    """What :func:`load_folder` read: the documents, sorted by path, and what it skipped."""

    documents: PVector[Any]
    skipped: tuple[Skipped, ...] = ()


# (prefix, strip, spec): a path relative to the walked folder is matched as prefix + path[strip:]
_Rule = tuple[str, int, Any]


def _ignore_file(path: Path, prefix: str, strip: int) -> tuple[_Rule, ...]:
    import pathspec

    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ()
    return ((prefix, strip, pathspec.GitIgnoreSpec.from_lines(lines)),)


def _outer_rules(root: Path) -> tuple[_Rule, ...]:
    """The ignore rules that reach *root* from above: ``.git/info/exclude`` and the
    ``.gitignore`` files of the folders between the repository's top and *root*."""
    real = root.resolve()
    top = next((p for p in (real, *real.parents) if (p / ".git").exists()), None)
    if top is None:
        return ()

    def prefix(folder: Path) -> str:
        return "" if folder == real else real.relative_to(folder).as_posix() + "/"

    rules = _ignore_file(top / ".git" / "info" / "exclude", prefix(top), 0)
    for folder in reversed(real.parents):
        if folder.is_relative_to(top):
            rules += _ignore_file(folder / ".gitignore", prefix(folder), 0)
    return rules


def _ignored(rules: tuple[_Rule, ...], rel: str) -> bool:
    verdict = None  # the last rule that matches decides, as in git; "!" rules re-include
    for prefix, strip, spec in rules:
        include = spec.check_file(prefix + rel[strip:]).include
        if include is not None:
            verdict = include
    return bool(verdict)


def _reason(
    entry: os.DirEntry[str], is_dir: bool, rel: str, rules: tuple[_Rule, ...] | None, hidden: bool
) -> str | None:
    """Why the walk leaves *entry* out, if it does (*rules* None: only for being hidden)."""
    name = entry.name
    if rules is not None and is_dir:
        if name in SKIP_FOLDERS:
            return SKIP_FOLDERS[name]
        if name.endswith(".egg-info"):
            return "build output"
        if any(os.path.lexists(os.path.join(entry.path, m)) for m in _ENVIRONMENT):
            return "virtual environment"
    if not hidden and name.startswith("."):
        return "hidden"
    if rules and _ignored(rules, rel + "/" if is_dir else rel):
        return "in .gitignore"
    return None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a loop of symlinks
        return False


_Folder = tuple[Path, Path, str, "tuple[_Rule, ...] | None"]


def _walk(
    root: Path, follow_symlinks: bool, ignore: bool, hidden: bool
) -> tuple[list[Path], list[Path], list[Skipped]]:
    """The files under *root* with a known suffix (as seen from it), each real file once; the
    symlinks left out because they lead outside *root*; and what the skip rules left out.

    Real folders are walked first and symlinked ones after, so a file reached both ways keeps
    its own path; a folder is never entered twice, so a loop of symlinks ends.
    """
    real_root = root.resolve()
    seen_dirs = {real_root}
    stack: list[_Folder] = [(root, real_root, "", _outer_rules(root) if ignore else None)]
    links: list[_Folder] = []  # symlinked folders, walked last
    found: list[tuple[Path, Path]] = []  # (path, real path): plain entries
    linked: list[tuple[Path, Path]] = []  # the same, reached through a symlinked file
    outside: list[Path] = []
    skipped: list[Skipped] = []
    while stack or links:
        if stack:
            folder, real_folder, rel, rules = stack.pop()
        else:
            folder, real_folder, rel, rules = links.pop(0)
            if real_folder in seen_dirs:
                continue
            seen_dirs.add(real_folder)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue  # unreadable, or gone since it was listed
        if rules is not None and any(e.name == ".gitignore" for e in entries):
            rules = rules + _ignore_file(folder / ".gitignore", "", len(rel) + 1 if rel else 0)
        for entry in entries:
            is_dir = _is_dir(entry)
            if not is_dir and os.path.splitext(entry.name)[1].lower() not in SUFFIXES:
                continue  # never read: not worth a rule, nor a line in the summary
            path = Path(entry.path)
            sub = f"{rel}/{entry.name}" if rel else entry.name
            why = _reason(entry, is_dir, sub, rules, hidden)
            if why is not None:
                skipped.append(Skipped(path=str(path), reason=why, folder=is_dir))
                continue
            if not entry.is_symlink():
                real = real_folder / entry.name
                if entry.is_dir(follow_symlinks=False) and real not in seen_dirs:
                    seen_dirs.add(real)
                    stack.append((path, real, sub, rules))
                elif entry.is_file(follow_symlinks=False):
                    found.append((path, real))
                continue
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError):
                continue  # a broken link, or a loop of links
            if not follow_symlinks and not real.is_relative_to(real_root):
                outside.append(path)
            elif real.is_dir():
                links.append((path, real, sub, rules))
            elif real.is_file():
                linked.append((path, real))
    files, seen = [], set()
    for path, real in found + linked:
        if real not in seen:
            seen.add(real)
            files.append(path)
    return files, outside, skipped


def _wanted(path: Path, root: Path, pattern: re.Pattern[str]) -> bool:
    rel = path.relative_to(root).as_posix()
    return path.suffix.lower() in SUFFIXES and pattern.fullmatch(rel) is not None


def _try_load(path: Path, root: Path) -> PMap[str, Any] | Skipped:
    try:
        loaded = _load(path, root)
    except ConduitError as exc:
        return Skipped(path=str(path), reason="unreadable", detail=exc.data.get("reason", str(exc)))
    except OSError as exc:
        return Skipped(path=str(path), reason="unreadable", detail=exc.strerror or str(exc))
    except Exception as exc:  # a damaged PDF: pypdf raises many kinds of error
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        return Skipped(path=str(path), reason="unreadable", detail=detail)
    if loaded is None:
        return Skipped(path=str(path), reason="binary", detail="binary data, not text")
    return loaded


def load_folder(
    folder: str | Path,
    *,
    glob: str = "**/*",
    follow_symlinks: bool = False,
    ignore: bool = True,
    hidden: bool = False,
) -> Loaded:
    """Return the documents under *folder*, and what was skipped with the reason for each.

    A file that cannot be read (binary data under a text suffix, a PDF without the ``pdf``
    extra, a permission error, a damaged file) is skipped and reported, never an error.
    Text is decoded as UTF-8 or in its detected encoding (:func:`decode_text`).

    Args:
        glob: which files, as a ``Path.glob`` pattern relative to *folder*.
        follow_symlinks: also read what symlinks leading outside *folder* point to (else they
            are skipped with a warning; symlinks that stay inside are followed).
        ignore: leave out what ``.gitignore`` files ignore (nested ones, negations, those of
            the enclosing repository), virtual environments (a folder holding ``pyvenv.cfg``),
            ``node_modules``, ``__pycache__`` and build output (``build``, ``dist``, ``site``,
            ``target``, ``*.egg-info``).
        hidden: also read dot-files and dot-folders (``.git``, ``.venv``, ``.tox``, ...).
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValidationError(f"{root}: no such folder")
    wanted = _pattern(glob)
    deep = "**" in glob or "/" in glob  # whether a folder could hold wanted files
    files, outside, left_out = _walk(root, follow_symlinks, ignore, hidden)
    links = [p for p in outside if (deep and p.is_dir()) or _wanted(p, root, wanted)]
    if links:
        warnings.warn(
            f"load_documents skipped {len(links)} symlink(s) leading outside {root} "
            f"(first: {links[0]}); pass follow_symlinks=True to read them",
            stacklevel=3,
        )
    skipped = [s for s in left_out if (deep if s.folder else _wanted(Path(s.path), root, wanted))]
    skipped += [Skipped(path=str(p), reason="symlink outside", folder=p.is_dir()) for p in links]
    docs: list[PMap[str, Any]] = []
    for path in sorted(files):
        if wanted.fullmatch(path.relative_to(root).as_posix()):
            got = _try_load(path, root)
            if isinstance(got, Skipped):
                skipped.append(got)
            else:
                docs.append(got)
    return Loaded(documents=pvector(docs), skipped=tuple(skipped))


def skip_summary(skipped: Iterable[Skipped], examples: int = 3) -> str:
    """Return one line saying how many folders and files were skipped and why ("" for none).

    >>> skip_summary([Skipped(path=".git", reason="hidden", folder=True),
    ...               Skipped(path="a.txt", reason="binary"),
    ...               Skipped(path="b.txt", reason="binary")])
    'skipped 1 folder and 2 files: 1 hidden (.git/), 2 binary (a.txt, b.txt)'
    """
    items = sorted(skipped, key=lambda s: REASONS.index(s.reason) if s.reason in REASONS else 99)
    if not items:
        return ""
    by_reason: dict[str, list[str]] = {}
    for s in items:
        by_reason.setdefault(s.reason, []).append(s.path + ("/" if s.folder else ""))
    folders = sum(s.folder for s in items)
    counts = [_plural(folders, "folder"), _plural(len(items) - folders, "file")]
    parts = [
        f"{len(paths)} {reason} ({', '.join(paths[:examples])}"
        + (", ...)" if len(paths) > examples else ")")
        for reason, paths in by_reason.items()
    ]
    return f"skipped {' and '.join(c for c in counts if c)}: {', '.join(parts)}"


def _plural(n: int, noun: str) -> str:
    return "" if n == 0 else f"{n} {noun}" + ("" if n == 1 else "s")


def load_documents(
    paths: str | Path | Iterable[str | Path],
    *,
    glob: str = "**/*",
    follow_symlinks: bool = False,
    ignore: bool = True,
    hidden: bool = False,
) -> PVector[Any]:
    """Return the documents in *paths*: files, or folders searched with *glob*, sorted by path.

    Text, Markdown, reStructuredText and Python files are read as they are (UTF-8, or their
    detected encoding); HTML is reduced to its visible text; PDF needs the ``pdf`` extra. Other
    files in a folder are skipped; a file named explicitly with an unknown suffix, or holding
    binary data, is an error. ``metadata["source"]`` is the path.

    Folders are read by :func:`load_folder`, with its *follow_symlinks*, *ignore* and *hidden*:
    ``.gitignore``, dot-folders, virtual environments, ``node_modules`` and build output are
    left out by default, and each file that cannot be read is skipped with a warning.
    """
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    out: list[PMap[str, Any]] = []
    for item in map(Path, items):
        if item.is_dir():
            found = load_folder(
                item, glob=glob, follow_symlinks=follow_symlinks, ignore=ignore, hidden=hidden
            )
            for s in found.skipped:
                if s.reason in ("binary", "unreadable"):
                    warnings.warn(f"load_documents skipped {s.path}: {s.detail}", stacklevel=2)
            out.extend(found.documents)
        elif item.is_file():
            if item.suffix.lower() not in SUFFIXES:
                raise ValidationError(
                    f"{item}: unknown file type; load_documents reads {', '.join(SUFFIXES)}"
                )
            loaded = _load(item, None)
            if loaded is None:
                raise ValidationError(f"{item}: binary data, not text")
            out.append(loaded)
        else:
            raise ValidationError(f"{item}: no such file or folder")
    return pvector(out)
