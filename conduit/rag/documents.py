"""Documents: ``{"id", "text", "metadata"}`` maps, and loading them from files and folders."""

from __future__ import annotations

import hashlib
import html.parser
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pyrsistent import PMap, PVector, pvector

from conduit._data import freeze_map
from conduit.errors import ConduitError, ValidationError

__all__ = ["SUFFIXES", "as_documents", "document", "html_text", "load_documents"]

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


def _pdf_text(path: Path) -> str:
    try:
        import pypdf
    except ImportError:
        raise ConduitError(
            f"reading {path} needs the pdf extra: pip install 'conduit-llm[pdf]'"
        ) from None
    reader = pypdf.PdfReader(str(path))
    return "\n\n".join(page.extract_text() or "" for page in reader.pages)


def _load(path: Path, root: Path | None) -> PMap[str, Any] | None:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        return None
    meta: dict[str, Any] = {"source": str(path), "type": kind}
    if kind == "pdf":
        text = _pdf_text(path)
    else:
        text = path.read_text(encoding="utf-8", errors="replace")
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


def _walk(root: Path, follow_symlinks: bool) -> tuple[list[Path], list[Path]]:
    """The files under *root* (as seen from it), each real file once; and the symlinks left
    out because they lead outside *root*.

    Real folders are walked first and symlinked ones after, so a file reached both ways keeps
    its own path; a folder is never entered twice, so a loop of symlinks ends.
    """
    real_root = root.resolve()
    seen_dirs = {real_root}
    stack: list[tuple[Path, Path]] = [(root, real_root)]
    links: list[tuple[Path, Path]] = []  # symlinked folders, walked last
    found: list[tuple[Path, Path]] = []  # (path, real path): plain entries
    linked: list[tuple[Path, Path]] = []  # the same, reached through a symlinked file
    outside: list[Path] = []
    while stack or links:
        if stack:
            folder, real_folder = stack.pop()
        else:
            folder, real_folder = links.pop(0)
            if real_folder in seen_dirs:
                continue
            seen_dirs.add(real_folder)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue  # unreadable, or gone since it was listed
        for entry in entries:
            path = Path(entry.path)
            if not entry.is_symlink():
                real = real_folder / entry.name
                if entry.is_dir(follow_symlinks=False) and real not in seen_dirs:
                    seen_dirs.add(real)
                    stack.append((path, real))
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
                links.append((path, real))
            elif real.is_file():
                linked.append((path, real))
    files, seen = [], set()
    for path, real in found + linked:
        if real not in seen:
            seen.add(real)
            files.append(path)
    return files, outside


def _wanted(path: Path, root: Path, pattern: re.Pattern[str]) -> bool:
    rel = path.relative_to(root).as_posix()
    return path.suffix.lower() in SUFFIXES and pattern.fullmatch(rel) is not None


def load_documents(
    paths: str | Path | Iterable[str | Path], *, glob: str = "**/*", follow_symlinks: bool = False
) -> PVector[Any]:
    """Return the documents in *paths*: files, or folders searched with *glob*, sorted by path.

    Text, Markdown, reStructuredText and Python files are read as they are; HTML is reduced to
    its visible text; PDF needs the ``pdf`` extra. Other files in a folder are skipped; a file
    named explicitly with an unknown suffix is an error. ``metadata["source"]`` is the path.

    In a folder, a symlink leading outside it (a key linked into ``docs/``) is skipped with a
    warning unless *follow_symlinks* is true; symlinks that stay inside are followed. Each real
    file is read once, however many links lead to it, and a loop of symlinks ends.
    """
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    wanted = _pattern(glob)
    out = []
    for item in map(Path, items):
        if item.is_dir():
            files, outside = _walk(item, follow_symlinks)
            deep = "**" in glob or "/" in glob  # whether a folder could hold wanted files
            skipped = [p for p in outside if (deep and p.is_dir()) or _wanted(p, item, wanted)]
            if skipped:
                warnings.warn(
                    f"load_documents skipped {len(skipped)} symlink(s) leading outside {item} "
                    f"(first: {skipped[0]}); pass follow_symlinks=True to read them",
                    stacklevel=2,
                )
            for path in sorted(files):
                if wanted.fullmatch(path.relative_to(item).as_posix()):
                    loaded = _load(path, item)
                    if loaded is not None:
                        out.append(loaded)
        elif item.is_file():
            loaded = _load(item, None)
            if loaded is None:
                raise ValidationError(
                    f"{item}: unknown file type; load_documents reads {', '.join(SUFFIXES)}"
                )
            out.append(loaded)
        else:
            raise ValidationError(f"{item}: no such file or folder")
    return pvector(out)
