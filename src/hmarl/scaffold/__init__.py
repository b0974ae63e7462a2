"""``hmarl new-task``: a small installable package for a new task, ready to train.

The package is a worked example to make your own: lifts in a building, a
dispatcher (high level) that sends each lift to a floor and a motor (low level)
that drives it there. Its files are those in ``template/`` (real, tested Python,
with relative imports so they work under any package name): the simulation, its
env, and the task with typed settings, a metric, a hand-written baseline and a
score. Around them: a ``pyproject.toml`` that depends on this minor version of
hmarl and registers the task under the ``hmarl.tasks`` entry point, a test that
runs on the env the checks ``hmarl train`` runs before it starts, and a README.
RL modules, PPO settings, a schedule, a renderer and a batched env are not in it;
the built-in chicken yard declares each::

    hmarl new-task couriers --out couriers
    pip install -e couriers
    hmarl train --task couriers --stop-iters 2
    pytest couriers/tests

(the chicken yard: ``src/hmarl/tasks/chicken_yard``, ``modules.py``, ``render.py``,
``batched.py`` and ``task.py`` for the declaration).
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
# The hmarl this task was written for: its Task contract may change between minor
# versions. hmarl is installed from its source, not from a package index.
dependencies = ["hmarl>={minor},<{next_minor}"]

# How `hmarl --task {name}` finds the task once this package is installed.
[project.entry-points."hmarl.tasks"]
{name} = "{package}.task:TASK"

[tool.setuptools.packages.find]
include = ["{package}*"]
"""

TEST = '''\
"""The task's env under the checks `hmarl train` runs before it starts (`hmarl check` too)."""

from hmarl.conformance import check_determinism
from hmarl.training import preflight
from {package}.task import TASK


def test_the_env_passes_what_training_checks() -> None:
    """hmarl's conformance checks, RLlib's episodes and RLlib's env checker."""
    preflight(TASK, TASK.env_config_dict(), episodes=5, step_budget=None)


def test_two_lifts() -> None:
    preflight(TASK, TASK.env_config_dict({{"num_lifts": 2}}), episodes=3, step_budget=None)


def test_seeded_runs_are_identical() -> None:
    check_determinism(lambda: TASK.make_env({{}}), seed=0, episodes=3)
'''

README = """\
# {name}

A task for hmarl, written by `hmarl new-task`. It is a worked example to make your
own: lifts in a building, where a dispatcher (high level) sends each lift to a floor
and its motor (low level) drives it there.

It depends on hmarl `>={minor},<{next_minor}`, the version it was written for. hmarl
is not published on a package index (a package of that name there is not this one):
install hmarl from its source first, then this package into the same environment,
and pip finds the dependency met.

```bash
pip install -e PATH/TO/hmarl    # if not installed yet
pip install -e .
hmarl check --task {name}       # the checks `hmarl train` runs before it starts
hmarl train --task {name} --stop-iters 20
hmarl evaluate runs/{name}
pytest tests
```

- `{package}/simulation.py`: the system in plain Python. Replace it with yours.
- `{package}/env.py`: its RLlib `MultiAgentEnv` adapter; observations only for the
  agents due to act next.
- `{package}/task.py`: the `hmarl.Task` declaration (`name`, `make_env` and
  `policy_of` are all it needs; here also typed settings, a metric, a baseline and a
  score). RL modules per policy, PPO settings, a schedule, a renderer and a batched
  env are optional too (see `hmarl.task`; hmarl's chicken yard declares each).
"""


def package_name(name: str) -> str:
    """The Python package for a task name: ``my-task`` -> ``my_task``."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name or ""):
        raise ValueError(
            f"task name {name!r} must start with a letter and hold only letters, digits, "
            "'_' and '-'"
        )
    return name.replace("-", "_").lower()


def hmarl_range() -> dict[str, str]:
    """This minor version of hmarl and the next: ``{"minor": "0.2", "next_minor": "0.3"}``."""
    from hmarl import __version__

    major, minor = (int(part) for part in __version__.split(".")[:2])
    return {"minor": f"{major}.{minor}", "next_minor": f"{major}.{minor + 1}"}


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
        fields = {"name": name, "package": package, **hmarl_range()}
        (tmp / "pyproject.toml").write_text(PYPROJECT.format(**fields))
        (tmp / "README.md").write_text(README.format(**fields))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"cannot write {out}: {err}") from None
    return out
