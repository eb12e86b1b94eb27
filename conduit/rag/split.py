"""Splitters: documents into chunks that never exceed ``chunk_size``, as spans of the original.

Every chunk is ``text[start:end]`` of its source (whitespace trimmed), so chunks keep the text's
order, can never glue two words together, and the text is recoverable from chunks and offsets.
Chunk metadata: ``source`` (the parent's source, e.g. its file path, else its id), ``parent``
(the parent document's id), ``start``, ``end``, ``index``, and ``line`` and ``column`` (where
the chunk starts in the parent's text, 1-based and 0-based, so a source can print as
``path:line`` and code can be shown with its first line's indentation).
Separators are regular expressions, tried coarsest first; a text is cut after each match.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

from pyrsistent import PMap, PVector, pvector

from conduit._data import freeze_map
from conduit.errors import ValidationError
from conduit.rag.documents import as_documents

__all__ = [
    "CODE_SEPARATORS",
    "MARKDOWN_SEPARATORS",
    "SEPARATORS",
    "split_character",
    "split_code",
    "split_markdown",
    "split_recursive",
    "split_sentences",
    "split_spans",
]

Length = Callable[[str], int]
Span = tuple[int, int]

#: paragraphs, lines, sentences, words, then characters
SEPARATORS: tuple[str, ...] = ("\n\n", "\n", r"(?<=[.!?])\s+", " ", "")
MARKDOWN_SEPARATORS: tuple[str, ...] = (
    r"\n(?=#{1,6} )",
    r"\n(?=```)",
    "\n\n",
    r"\n(?=[-*+] |\d+\. )",
    "\n",
    r"(?<=[.!?])\s+",
    " ",
    "",
)
CODE_SEPARATORS: tuple[str, ...] = (
    r"\n(?=(?:async\s+)?def |class |@)",
    r"\n(?=\s+(?:async\s+)?def )",
    "\n\n",
    "\n",
    " ",
    "",
)


_SPECIAL = frozenset(".^$*+?{}[]\\|()")


@functools.lru_cache(maxsize=64)
def _literal(separator: str) -> str | None:
    """The plain text *separator* matches, if it is one (then ``str.split`` finds the cuts)."""
    if not _SPECIAL.intersection(separator):
        return separator
    plain = re.sub(r"\\(.)", r"\1", separator, flags=re.S)
    return plain if plain and re.escape(plain) == separator else None


def _pieces(text: str, start: int, end: int, separator: str) -> list[Span]:
    """Cut [start, end) after each separator match; the pieces cover the span exactly."""
    if separator == "":
        return [(i, i + 1) for i in range(start, end)]
    plain = _literal(separator)
    if plain is not None:  # the same cuts as the pattern, found by str.split in C
        parts = text[start:end].split(plain)
        step = len(plain)
        bounds = list(
            itertools.accumulate(
                map(operator.add, map(len, parts[:-1]), itertools.repeat(step)), initial=start
            )
        )
        if bounds[-1] != end:
            bounds.append(end)
    else:
        pattern = re.compile(separator)
        bounds = [start]
        bounds.extend(e for m in pattern.finditer(text, start, end) if start < (e := m.end()) < end)
        bounds.append(end)
        return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]
    return list(itertools.pairwise(bounds))


def _trim(text: str, span: Span) -> Span | None:
    a, b = span
    piece = text[a:b]
    body = piece.strip()
    if not body:
        return None
    a += len(piece) - len(piece.lstrip())
    return (a, a + len(body))


def split_spans(
    text: str,
    chunk_size: int = 1000,
    chunk_overlap: int = 0,
    separators: Sequence[str] = SEPARATORS,
    length: Length = len,
) -> list[Span]:
    """Return the (start, end) spans of the chunks of *text* (pure; the splitters' engine).

    >>> text = "One two three. Four five six. Seven."
    >>> [text[a:b] for a, b in split_spans(text, chunk_size=16)]
    ['One two three.', 'Four five six.', 'Seven.']
    """
    if chunk_size < 1:
        raise ValidationError(f"chunk_size must be at least 1, got {chunk_size}")
    if not 0 <= chunk_overlap < chunk_size:
        raise ValidationError(
            f"chunk_overlap must be at least 0 and below chunk_size ({chunk_size}), "
            f"got {chunk_overlap}"
        )
    atoms = _atoms(text, 0, len(text), list(separators), chunk_size, length)
    return _merge(text, atoms, chunk_size, chunk_overlap, length)


def _atoms(
    text: str, start: int, end: int, separators: list[str], size: int, length: Length
) -> list[Span]:
    """Split [start, end) into pieces each within *size*, coarsest separators first."""
    if length(text[start:end].strip()) <= size:  # separators around a piece do not count
        return [(start, end)]
    if not separators:
        return [(start, end)]  # unreachable with "" as the last separator
    head, *rest = separators
    pieces = _pieces(text, start, end, head)
    if length is len:  # only pieces longer than size need a second look: find them in one pass
        long = [k for k, (a, b) in enumerate(pieces) if b - a > size]
        if not long:
            return pieces
    else:
        long = list(range(len(pieces)))
    out: list[Span] = []
    done = 0
    for k in long:
        a, b = pieces[k]
        if length(text[a:b].strip()) > size:  # separators around a piece do not count
            out.extend(pieces[done:k])
            out.extend(_atoms(text, a, b, rest, size, length))
            done = k + 1
    out.extend(pieces[done:])
    return out


_NON_SPACE = re.compile(r"\S")


def _merge_fast(text: str, atoms: list[Span], size: int, overlap: int) -> list[Span]:
    """:func:`_merge` for character lengths: one binary search per chunk, not a step per atom.

    A chunk's trimmed length is at most its last atom's end minus its first non-space offset,
    so every atom whose end is within ``lead + size`` fits; only the next few need the exact
    (trailing-space-trimmed) check.
    """
    ends = [b for _, b in atoms]
    n = len(atoms)
    chunks: list[Span] = []
    i = 0
    while i < n:
        found = _NON_SPACE.search(text, atoms[i][0])
        lead = found.start() if found else len(text)
        j = max(bisect.bisect_right(ends, lead + size, i) - 1, i)
        while j + 1 < n:
            a, b = atoms[j + 1]
            tail = len(text[a:b].rstrip())
            if tail and a + tail - lead > size:
                break
            j += 1
        chunks.append((atoms[i][0], ends[j]))
        if j + 1 >= n:
            break
        if overlap:
            kept = _tail(text, atoms[i : j + 1], overlap, atoms[j + 1], size, len)
            i = max(j + 1 - len(kept), i + 1)  # always moves on
        else:
            i = j + 1
    return _trimmed(text, chunks)


def _trimmed(text: str, chunks: list[Span]) -> list[Span]:
    out: list[Span] = []
    for span in chunks:
        trimmed = _trim(text, span)
        if trimmed is not None and (not out or trimmed != out[-1]):
            out.append(trimmed)
    return out


def _merge(text: str, atoms: list[Span], size: int, overlap: int, length: Length) -> list[Span]:
    if length is len:
        return _merge_fast(text, atoms, size, overlap)
    chunks: list[Span] = []
    current: list[Span] = []
    fast = length is len  # then a chunk's trimmed length follows from offsets: no slicing
    lead, lead_of = 0, -1  # with fast: the first non-space offset of the chunk starting at lead_of
    for atom in atoms:
        if current:
            if fast:
                end = atom[1]
                while end > lead and text[end - 1].isspace():
                    end -= 1
                used = max(end - lead, 0)
            else:
                used = length(text[current[0][0] : atom[1]].strip())
            if used > size:
                chunks.append((current[0][0], current[-1][1]))
                current = _tail(text, current, overlap, atom, size, length)
        current.append(atom)
        if fast and current[0][0] != lead_of:
            lead_of = lead = current[0][0]
            while lead < len(text) and text[lead].isspace():
                lead += 1
    if current:
        chunks.append((current[0][0], current[-1][1]))
    trimmed = (_trim(text, span) for span in chunks)
    out: list[Span] = []
    for span in trimmed:
        if span is not None and (not out or span != out[-1]):
            out.append(span)
    return out


def _tail(
    text: str, current: list[Span], overlap: int, nxt: Span, size: int, length: Length
) -> list[Span]:
    """The last pieces of the previous chunk to repeat: within *overlap*, leaving room."""
    kept: list[Span] = []
    for span in reversed(current):
        candidate = [span, *kept]
        carried = length(text[candidate[0][0] : candidate[-1][1]].strip())
        if carried > overlap or length(text[candidate[0][0] : nxt[1]].strip()) > size:
            break
        kept = candidate
    return kept


def _lines(text: str, spans: list[Span]) -> list[tuple[int, int]]:
    """The (line, column) each span starts at, counted in one pass (spans start in order).

    >>> _lines("a\\nb\\n\\n  c", [(0, 1), (2, 3), (7, 8)])
    [(1, 0), (2, 0), (4, 2)]
    """
    out, pos, line = [], 0, 1
    for start, _ in spans:
        if start < pos:
            pos, line = 0, 1
        line += text.count("\n", pos, start)
        pos = start
        out.append((line, start - text.rfind("\n", 0, start) - 1))
    return out


def _chunk(doc: PMap[str, Any], span: Span, index: int, at: tuple[int, int]) -> PMap[str, Any]:
    start, end = span
    parent = doc.get("metadata", {})
    meta = {
        **parent,
        "source": parent.get("source", doc["id"]),
        "parent": doc["id"],
        "start": start,
        "end": end,
        "index": index,
        "line": at[0],
        "column": at[1],
    }
    return freeze_map(
        {"id": f"{doc['id']}#{index}", "text": doc["text"][start:end], "metadata": meta}
    )


def _split(docs: Any, spans: Callable[[str], list[Span]]) -> PVector[Any]:
    out: list[PMap[str, Any]] = []
    for doc in as_documents(docs):
        found = spans(doc["text"])
        lines = _lines(doc["text"], found)
        out.extend(_chunk(doc, span, i, lines[i]) for i, span in enumerate(found))
    return pvector(out)


def split_recursive(
    docs: Any,
    chunk_size: int = 1000,
    chunk_overlap: int = 200,
    separators: Sequence[str] = SEPARATORS,
    length: Length = len,
) -> PVector[Any]:
    """Return the chunks of *docs* (documents, or plain strings), split along *separators*.

    *length* measures a chunk (characters by default; pass a tokenizer's count for tokens).

    >>> chunks = split_recursive("First paragraph here.\\n\\nSecond one.", chunk_size=25,
    ...                          chunk_overlap=0)
    >>> [(c["text"], c["metadata"]["start"], c["metadata"]["line"]) for c in chunks]
    [('First paragraph here.', 0, 1), ('Second one.', 23, 3)]
    """
    return _split(docs, lambda t: split_spans(t, chunk_size, chunk_overlap, separators, length))


def split_character(
    docs: Any, chunk_size: int = 1000, chunk_overlap: int = 200, separator: str = "\n\n"
) -> PVector[Any]:
    """Split on one *separator*, falling back to words and characters for oversized pieces."""
    seps = (separator, " ", "")
    return _split(docs, lambda t: split_spans(t, chunk_size, chunk_overlap, seps))


def split_sentences(docs: Any, chunk_size: int = 1000, chunk_overlap: int = 0) -> PVector[Any]:
    """Split into runs of whole sentences (words, then characters, only for a giant sentence)."""
    seps = (r"(?<=[.!?])\s+", "\n", " ", "")
    return _split(docs, lambda t: split_spans(t, chunk_size, chunk_overlap, seps))


def split_markdown(docs: Any, chunk_size: int = 1000, chunk_overlap: int = 0) -> PVector[Any]:
    """Split Markdown at headings first, then fences, paragraphs, list items, lines, sentences;
    each chunk records the headings it sits under (``metadata["headings"]``).

    >>> chunks = split_markdown("# Guide\\n\\nIntro.\\n\\n## Install\\n\\nRun pip.", chunk_size=20)
    >>> [list(c["metadata"]["headings"]) for c in chunks]
    [['Guide'], ['Guide', 'Install']]
    """
    out: list[PMap[str, Any]] = []
    for doc in as_documents(docs):
        spans = split_spans(doc["text"], chunk_size, chunk_overlap, MARKDOWN_SEPARATORS)
        lines = _lines(doc["text"], spans)
        for i, span in enumerate(spans):
            chunk = _chunk(doc, span, i, lines[i])
            heads = pvector(_headings(doc["text"], span[0]))
            out.append(chunk.set("metadata", chunk["metadata"].set("headings", heads)))
    return pvector(out)


_HEADING = re.compile(r"^(#{1,6}) +(.+?)\s*$", re.MULTILINE)


def _headings(text: str, position: int) -> list[str]:
    trail: list[tuple[int, str]] = []
    line_end = text.find("\n", position)
    for m in _HEADING.finditer(text[: len(text) if line_end < 0 else line_end]):
        level = len(m.group(1))
        trail = [(lv, t) for lv, t in trail if lv < level] + [(level, m.group(2))]
    return [t for _, t in trail]


def split_code(docs: Any, chunk_size: int = 1500, chunk_overlap: int = 0) -> PVector[Any]:
    """Split source code at top-level definitions, then methods, blank lines, lines."""
    return _split(docs, lambda t: split_spans(t, chunk_size, chunk_overlap, CODE_SEPARATORS))
