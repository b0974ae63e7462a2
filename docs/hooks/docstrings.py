"""A Griffe extension for mkdocstrings: hmarl's reST-flavoured docstrings read as Markdown.

hmarl's docstrings are written for ``help()`` and Sphinx habits: doctests where they
explain (``>>> env.reset(seed=0)``), reST simple tables (``=====  =====`` borders) and
``::`` before literal blocks. Markdown would read ``>>>`` as nested quotes,
``obs["a"]["b"]`` as a link and the tables as text. Before rendering, each run of
doctest lines with its output is fenced as ``pycon``, each simple table becomes a
Markdown table, and a closing ``::`` becomes ``:``. Listed under the Python handler's
``extensions`` in ``mkdocs.yml``.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import griffe

FENCE = "```"
BORDER = re.compile(r"^(\s*)(=+)(\s+=+)+\s*$")


def fence_doctests(text: str) -> str:
    """The docstring with each doctest block (prompt lines and output) fenced."""
    out: list[str] = []
    in_fence = in_doctest = False
    indent = ""
    for line in text.splitlines():
        stripped = line.lstrip()
        if in_doctest and not stripped:
            out.append(indent + FENCE)
            in_doctest = False
        if not in_doctest and stripped.startswith(FENCE):
            in_fence = not in_fence
        if not in_fence and not in_doctest and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(indent + FENCE + "pycon")
            in_doctest = True
        out.append(line)
    if in_doctest:
        out.append(indent + FENCE)
    return "\n".join(out)


def _table(lines: list[str], border: str) -> list[str]:
    """A reST simple table (its lines between the first and last border) as Markdown."""
    starts = [m.start() for m in re.finditer(r"=+", border)]
    bounds = [*itertools.pairwise(starts), (starts[-1], None)]
    rows: list[list[str]] = []
    header: list[str] | None = None
    for line in lines:
        if BORDER.match(line):
            header, rows = rows[0] if rows else None, []
            continue
        cells = [line[a:b].strip() if b else line[a:].strip() for a, b in bounds]
        if rows and not cells[0]:  # a continuation line: its text joins the row above
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    header = header or [""] * len(bounds)
    indent = border[: len(border) - len(border.lstrip())]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(bounds)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return [indent + line for line in out]


def markdown_tables(text: str) -> str:
    """The docstring with each reST simple table as a Markdown table."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = BORDER.match(lines[i])
        borders = [j for j in range(i + 1, len(lines)) if lines[j] == lines[i]]
        # A table: borders alike on top, under a one-line header, and at the bottom; or
        # with no header, on top and at the bottom.
        if match and borders:
            end = borders[1] if borders[0] == i + 2 and len(borders) > 1 else borders[0]
            out += ["", *_table(lines[i + 1 : end], lines[i]), ""]
            i = end + 1
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def markdown(text: str) -> str:
    """A docstring as Markdown: tables, doctests, literal-block colons."""
    text = fence_doctests(markdown_tables(text))
    return re.sub(r"::$", ":", text, flags=re.MULTILINE)


class ReadableDocstrings(griffe.Extension):
    """Rewrite every object's docstring as Markdown before mkdocstrings renders it."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
