"""A MkDocs hook: the CLI reference, generated from hmarl's own argument parser at build time.

``docs/reference/cli.md`` holds the marker ``<!-- hmarl-cli -->``; this hook replaces it
with every command of :func:`hmarl.cli.build_parser`, each flag with its help text, and
the settings of every built-in task (the flags a task's config adds). Nothing of it is
written by hand, so it cannot drift from the code. ``cli_markdown()`` needs no MkDocs:
``tests/test_docs.py`` checks it against the parser.

The same hook turns the Sphinx roles in docstrings (``:class:`Task```) into plain code
spans in the rendered pages.

argparse has no public way to walk a parser, so this reads its private names
(``_actions``, ``_SubParsersAction``, ``_choices_actions``, ``_action_groups`` and their
``_group_actions``, and the formatter's ``_format_args`` and ``_expand_help``; read in
Python 3.11's argparse). ``tests/test_docs.py`` fails if they change.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

MARKER = "<!-- hmarl-cli -->"

# Sphinx roles as mkdocstrings renders them: ":class:<code>Task</code>".
_ROLE = re.compile(r":(?:mod|class|func|meth|attr|data|exc|obj):(<code>)")


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's commands by name, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each command's one-line help, as `hmarl --help` lists it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {choice.dest: choice.help or "" for choice in action._choices_actions}
    return {}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _argument(action: argparse.Action, formatter: argparse.HelpFormatter) -> str:
    if action.option_strings:
        names = ", ".join(f"`{o}`" for o in action.option_strings)
        if action.nargs != 0:
            names += f" `{formatter._format_args(action, action.dest.upper())}`"
        return names
    return f"`{action.metavar or action.dest}`"


def _help(action: argparse.Action, formatter: argparse.HelpFormatter) -> str:
    text = formatter._expand_help(action) if action.help else ""
    if action.choices is not None and action.option_strings and action.metavar is not None:
        text += " (one of: " + ", ".join(f"`{c}`" for c in action.choices) + ")"  # else shown
    if action.required and action.option_strings:
        text += " **required**"
    return text


def command_markdown(name: str, help: str, parser: argparse.ArgumentParser) -> str:
    """One command: its help, description, usage and a table of its arguments."""
    formatter = parser._get_formatter()
    lines = [f"## hmarl {name}", "", help + ".", ""]
    if parser.description:
        lines += [parser.description, ""]
    usage = parser.format_usage().removeprefix("usage: ").strip()
    lines += ["```text", usage, "```", ""]
    rows = [
        f"| {_argument(action, formatter)} | {_cell(_help(action, formatter))} |"
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction)  # every command has -h, --help
    ]
    lines += ["| argument | what it does |", "|---|---|", *rows] if rows else ["No arguments."]
    for group in parser._action_groups:
        if group.title not in ("positional arguments", "options") and group.title:
            flags = ", ".join(f"`{a.option_strings[0]}`" for a in group._group_actions)
            lines += ["", f"{flags}: {group.title}."]
    return "\n".join(lines) + "\n"


def task_settings_markdown() -> str:
    """The settings of every built-in task: the flags its config dataclass adds."""
    from hmarl.cli import task_help
    from hmarl.registry import BUILT_IN

    parts = [
        "## Task settings",
        "",
        "A task's config fields are flags of `random`, `train`, `evaluate`, `watch` and "
        "`check` (and an `[env]` table in `train --config`). For the built-in tasks:",
        "",
    ]
    for name in BUILT_IN:
        parts += [f"### {name}", "", "```text", task_help(name, "train"), "```", ""]
    return "\n".join(parts)


def cli_markdown() -> str:
    """The whole CLI reference as Markdown."""
    from hmarl.cli import build_parser

    parser = build_parser()
    helps = command_helps(parser)
    parts = [parser.description or "", ""]
    parts += [f"- [`hmarl {name}`](#hmarl-{name}): {help}" for name, help in helps.items()]
    parts.append("")
    for name, sub in subcommands(parser).items():
        parts.append(command_markdown(name, helps.get(name, ""), sub))
    parts.append(task_settings_markdown())
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs event: fill the CLI page's marker."""
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_markdown())
    return markdown


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs event: Sphinx roles in rendered docstrings become plain code spans."""
    return _ROLE.sub(r"\1", html)
