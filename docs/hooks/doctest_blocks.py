"""A Griffe extension for mkdocstrings: doctests in docstrings render as code blocks.

hmarl's docstrings hold doctests (``>>> env.reset(seed=0)``) where they explain, not in
an ``Examples:`` section; Markdown would read ``>>>`` as nested quotes and
``obs["a"]["b"]`` as a link. Each run of doctest lines, with its output up to the next
blank line, is fenced as ``pycon`` before rendering. Listed under the Python handler's
``extensions`` in ``mkdocs.yml``.
"""

from __future__ import annotations

from typing import Any

import griffe

FENCE = "```"


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


class DoctestBlocks(griffe.Extension):
    """Fence the doctests of every object's docstring."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
