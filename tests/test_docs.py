"""The documentation site's generated parts: the CLI reference and the API reference's reach.

Fast and without MkDocs: the hook that writes the CLI reference is imported as a
module, and the reference pages' ``:::`` directives are read as text.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import hmarl

DOCS = Path(__file__).parent.parent / "docs"
DIRECTIVE = re.compile(r"^::: ([\w.]+)$", re.MULTILINE)


def _hook(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DOCS / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _resolve(path: str) -> object:
    """The object a directive names: the longest importable module, then attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(path)


def _directives() -> list[str]:
    pages = sorted((DOCS / "reference").glob("*.md"))
    return [d for page in pages for d in DIRECTIVE.findall(page.read_text())]


def test_the_cli_reference_has_every_command_and_flag() -> None:
    from hmarl.cli import build_parser

    hook = _hook("cli_reference")
    text = hook.cli_markdown()
    commands = hook.subcommands(build_parser())
    assert {"train", "evaluate", "check", "new-task", "export"} <= set(commands)
    for name, parser in commands.items():
        section = text.split(f"## hmarl {name}\n", 1)[1].split("\n## ", 1)[0]
        for action in parser._actions:
            if action.dest == "help":
                continue  # every command has -h, --help
            for flag in action.option_strings:
                assert f"`{flag}" in section, f"hmarl {name} {flag}"
            if action.help:
                assert action.help.split("(")[0][:40].replace("|", "\\|") in section
    assert "--num-robots" in text  # a built-in task's settings


def test_every_public_name_and_core_module_is_in_the_reference() -> None:
    resolved = {path: _resolve(path) for path in _directives()}
    for name in (n for n in hmarl.__all__ if n != "__version__"):
        wanted = getattr(hmarl, name)
        assert any(found is wanted for found in resolved.values()), f"hmarl.{name}"
    core = Path(hmarl.__file__).parent
    modules = {f"hmarl.{p.stem}" for p in core.glob("*.py") if p.stem != "__init__"}
    modules |= {f"hmarl.{p.name}" for p in core.iterdir() if (p / "__init__.py").exists()}
    modules -= {"hmarl.tasks"}  # the built-in tasks have a page of their env classes
    assert modules <= set(resolved), sorted(modules - set(resolved))


def test_docstrings_become_markdown() -> None:
    markdown = _hook("docstrings").markdown
    text = 'Spec::\n\n>>> obs["a"]["b"]\n1\n\n```python\n>>> kept\n```'
    assert markdown(text) == (
        'Spec:\n\n```pycon\n>>> obs["a"]["b"]\n1\n```\n\n```python\n>>> kept\n```'
    )
    table = "\n".join(
        [
            "=====  ==========",
            "field  meaning",
            "=====  ==========",
            "size   cells on a",
            "       side",
            "=====  ==========",
        ]
    )
    assert markdown(table).strip() == "| field | meaning |\n|---|---|\n| size | cells on a side |"
    headless = "\n".join(table.splitlines()[2:])
    assert markdown(headless).strip() == "|  |  |\n|---|---|\n| size | cells on a side |"


def test_the_tutorial_shows_every_file_of_its_package() -> None:
    page = (DOCS / "tutorial" / "index.md").read_text()
    shown = set(re.findall(r'^--8<-- "(gardeners/\w+\.py)"$', page, re.MULTILINE))
    files = {f"gardeners/{p.name}" for p in (DOCS / "tutorial" / "gardeners").glob("*.py")}
    assert shown == files
