"""A griffe extension for the API reference: docstrings written for Python, shown as Markdown.

Conduit's docstrings hold doctests (``>>>`` lines and their output), which the test suite runs.
Markdown would read them as prose (``['a', 'b']`` looks like a link), so this wraps every run
of doctest lines in a ``pycon`` fence before mkdocstrings renders the docstring, and turns
Sphinx cross-reference roles (``:func:`run_graph```) into code spans.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|data|mod|meth|attr|exc|obj):`(~?[^`]+)`")


def roles(text: str) -> str:
    """Return *text* with Sphinx roles as code spans (``:func:`~a.b``` becomes `` `b` ``).

    >>> roles("see :func:`run_graph` and :class:`~conduit.workflow.Step`")
    'see `run_graph` and `Step`'
    """
    return ROLE.sub(_code, text)


def _code(match: re.Match[str]) -> str:
    target = match.group(1).lstrip("~")
    short = "~" in match.group(0)  # Sphinx's ~: show only the last component
    return f"`{target.split('.')[-1] if short else target}`"


def fence(text: str) -> str:
    """Return *text* with each doctest block (``>>>`` to the next blank line) fenced."""
    out: list[str] = []
    inside = False
    for line in text.splitlines():
        stripped = line.strip()
        if not inside and stripped.startswith(">>>"):
            out.append("```pycon")
            inside = True
        elif inside and not stripped:
            out.append("```")
            inside = False
        out.append(line)
    if inside:
        out.append("```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence doctest blocks in every docstring griffe loads."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = roles(fence(obj.docstring.value))
