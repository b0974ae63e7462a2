"""Finding tasks: built-in names, installed packages' entry points, or ``module:attribute``.

``--task NAME`` looks in hmarl's built-in tasks, then in the ``hmarl.tasks``
entry-point group, through which any installed package offers its tasks::

    [project.entry-points."hmarl.tasks"]
    couriers = "couriers.task:TASK"

``--task package.module:attribute`` imports a task from any importable module,
the working directory included. :func:`load_task` returns the task with the
reference that finds it again (recorded in every run folder, so the tools that
read a run need no ``--task``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from importlib import metadata

from hmarl.task import Task, TaskError

ENTRY_POINT_GROUP = "hmarl.tasks"
BUILT_IN = {
    "chicken_yard": "hmarl.tasks.chicken_yard:TASK",
    "round_up": "hmarl.tasks.round_up:TASK",
    "lbf": "hmarl.tasks.lbf:TASK",
    "rware": "hmarl.tasks.rware:TASK",
    "goal_yard": "hmarl.tasks.goal_yard:TASK",
    "memory": "hmarl.tasks.memory:TASK",
}
"""Built-in task names and where their declarations live."""
EXTRAS = {"lbf": ("benchmarks", "lbforaging"), "rware": ("benchmarks", "rware")}
"""Built-in tasks that need an optional extra: (the extra, a module it installs)."""
DEFAULT_TASK = "chicken_yard"
"""The task of a command that names none."""


@dataclass(frozen=True)
class TaskListing:
    """A task that can be found, before it is loaded."""

    name: str
    ref: str
    """``module:attribute`` of its declaration."""
    origin: str
    """"built-in", or the installed distribution that offers it."""
    missing: str | None = None
    """How to install what the task needs, when it is not installed."""


def available_tasks() -> list[TaskListing]:
    """Built-in tasks, then those of installed packages, by name."""
    found = {
        name: TaskListing(name, ref, "built-in", missing_extra(name))
        for name, ref in BUILT_IN.items()
    }
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if point.name in found:
            continue  # hmarl itself declares its built-ins as entry points too
        origin = point.dist.name if point.dist is not None else "an entry point"
        found[point.name] = TaskListing(point.name, point.value, origin)
    return sorted(found.values(), key=lambda t: (t.origin != "built-in", t.name))


def load_task(spec: str) -> Task:
    """The task a ``--task`` value names: a name, or ``module:attribute``."""
    if not isinstance(spec, str) or not spec.strip():
        raise TaskError("--task needs a task name or module:attribute")
    spec = spec.strip()
    if ":" in spec:
        return _import_task(spec, given=spec)
    for listing in available_tasks():
        if listing.name == spec:
            if listing.missing:
                raise TaskError(f"task {spec} is not installed: {listing.missing}")
            task = _import_task(listing.ref, given=spec)
            if task.name != spec:
                raise TaskError(f"task {spec!r} ({listing.ref}) declares the name {task.name!r}")
            return task
    names = ", ".join(t.name for t in available_tasks())
    raise TaskError(
        f"no task named {spec!r}; known tasks: {names} (or give module:attribute, "
        "e.g. --task mytasks:TASK)"
    )


def missing_extra(name: str) -> str | None:
    """How to install a built-in task's optional extra, if it is missing (else None)."""
    if name not in EXTRAS:
        return None
    extra, module = EXTRAS[name]
    if importlib.util.find_spec(module) is not None:
        return None
    return f'it needs the extra {extra!r}: pip install -e ".[{extra}]"'


def _import_task(ref: str, given: str) -> Task:
    module_name, _, attribute = ref.partition(":")
    if not module_name or not attribute:
        raise TaskError(f"--task {given}: give module:attribute, e.g. mytasks:TASK")
    _add_working_directory()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            raise TaskError(
                f"--task {given}: no module named {module_name!r} (looked in the working "
                "directory and on PYTHONPATH)"
            ) from None
        raise TaskError(f"--task {given}: importing {module_name} failed: {err}") from None
    except Exception as err:  # the module's own code failed; say so in one line
        raise TaskError(
            f"--task {given}: importing {module_name} failed: {type(err).__name__}: {err}"
        ) from None
    try:
        task = getattr(module, attribute)
    except AttributeError:
        raise TaskError(f"--task {given}: module {module_name} has no {attribute!r}") from None
    if not isinstance(task, Task):
        raise TaskError(
            f"--task {given}: {module_name}.{attribute} is a {type(task).__name__}, "
            "not an hmarl.Task"
        )
    return task


def _add_working_directory() -> None:
    """Let ``--task mymodule:TASK`` find ``mymodule.py`` in the working directory.

    ``python -m`` puts it on ``sys.path`` but an installed console script does
    not. It also goes on ``PYTHONPATH``, which the Ray workers that a local Ray
    starts inherit, so they import the same task.
    """
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if cwd not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([cwd, *filter(None, paths)])
