"""``hmarl new-task``: a small installable package for a new task, ready to train.

The package is a worked example to make your own: lifts in a building, a
dispatcher (high level) that sends each lift to a floor and a motor (low level)
that drives it there. Its files are those in ``template/`` (real, tested Python,
with relative imports so they work under any package name), plus a
``pyproject.toml`` that registers the task under the ``hmarl.tasks`` entry point
and a test that runs hmarl's conformance checks on the env::

    hmarl new-task couriers --out couriers
    pip install -e couriers
    hmarl train --task couriers --stop-iters 2
    pytest couriers/tests
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

TEMPLATE = Path(__file__).parent / "template"
SOURCES = ("__init__.py", "simulation.py", "env.py", "task.py")
NAME_LINE = 'NAME = "lifts"'

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1.0"
description = "The {name} task for hmarl"
requires-python = ">=3.11"
dependencies = ["hmarl"]

# How `hmarl --task {name}` finds the task once this package is installed.
[project.entry-points."hmarl.tasks"]
{name} = "{package}.task:TASK"

[tool.setuptools.packages.find]
include = ["{package}*"]
"""

TEST = '''\
"""The task's env against hmarl's conformance checks and RLlib's own env checker."""

from ray.rllib.utils.pre_checks.env import check_multiagent_environments

from hmarl.conformance import check_determinism, check_env
from {package}.task import TASK


def test_rllib_accepts_the_env() -> None:
    check_multiagent_environments(TASK.make_env({{}}))


def test_turn_taking_protocol() -> None:
    check_env(TASK.make_env({{}}), seed=0, episodes=5)


def test_seeded_runs_are_identical() -> None:
    check_determinism(lambda: TASK.make_env({{}}), seed=0, episodes=3)
'''

README = """\
# {name}

A task for [hmarl](https://pypi.org/project/hmarl/), written by `hmarl new-task`. It
is a worked example to make your own: lifts in a building, where a dispatcher (high
level) sends each lift to a floor and its motor (low level) drives it there.

```bash
pip install -e .
hmarl train --task {name} --stop-iters 20
hmarl evaluate runs/{name}
pytest tests
```

- `{package}/simulation.py`: the system in plain Python. Replace it with yours.
- `{package}/env.py`: its RLlib `MultiAgentEnv` adapter; observations only for the
  agents due to act next.
- `{package}/task.py`: the `hmarl.Task` declaration (`name`, `make_env` and
  `policy_of` are all it needs; the rest is optional).
"""


def package_name(name: str) -> str:
    """The Python package for a task name: ``my-task`` -> ``my_task``."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name or ""):
        raise ValueError(
            f"task name {name!r} must start with a letter and hold only letters, digits, "
            "'_' and '-'"
        )
    return name.replace("-", "_").lower()


def write_package(name: str, out: Path) -> Path:
    """Write the package for task ``name`` into the new folder ``out``; return ``out``.

    The folder appears whole or not at all (written beside it, then renamed).
    """
    package = package_name(name)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} already exists and is not an empty folder")
    if not out.parent.is_dir():
        raise ValueError(f"cannot write {out}: {out.parent} is not an existing folder")
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / package).mkdir(parents=True)
        for source in SOURCES:
            text = (TEMPLATE / source).read_text()
            if source == "task.py":
                text = text.replace(NAME_LINE, f'NAME = "{name}"')
            (tmp / package / source).write_text(text)
        (tmp / "tests").mkdir()
        (tmp / "tests" / f"test_{package}.py").write_text(TEST.format(package=package))
        (tmp / "pyproject.toml").write_text(PYPROJECT.format(name=name, package=package))
        (tmp / "README.md").write_text(README.format(name=name, package=package))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"cannot write {out}: {err}") from None
    return out
