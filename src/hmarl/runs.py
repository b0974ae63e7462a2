"""Run folders: what a run trained on, and the trained policy it holds.

``hmarl train`` writes ``hmarl_run.json`` into its run folder before anything else:
the task (its name, and the ``--task`` value that loads it again) and the task's
env config. So ``evaluate``, ``watch``, ``inspect`` and ``plot`` find the task and
the env a policy was trained on from the run folder alone, or from any folder in
it (a Tune trial, a checkpoint), and never search an unrelated tree.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hmarl.checkpoints import (
    CheckpointError,
    checkpoint_problem,
    find_checkpoints,
    is_checkpoint,
    load_modules,
    newer_incomplete,
    read_marker,
)
from hmarl.task import Task, TaskError

RECORD_FILE = "hmarl_run.json"
SEARCH_UP = 4
"""How many folders above a given path to look for a run record (a Tune checkpoint is 2 down)."""


@dataclass(frozen=True)
class RunRecord:
    """What a run trained on."""

    task: str
    """The task's name."""
    task_ref: str
    """The ``--task`` value that loads the task (a name or ``module:attribute``)."""
    env_config: dict[str, Any]
    """The task's env config, every field."""
    hmarl_version: str
    stop: dict[str, Any] = field(default_factory=dict)
    """When the run stops: ``stop_iters``, ``stop_timesteps`` and ``time_budget`` as
    last given (a ``--resume`` without a stop of its own continues toward it)."""

    def write(self, folder: Path) -> None:
        """Into ``folder`` whole or not at all (a temporary file, then a rename)."""
        folder = Path(folder)
        tmp = folder / f".{RECORD_FILE}.partial"
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, folder / RECORD_FILE)

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{path} is not a readable run record ({err})") from None
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: Any, path: Path) -> RunRecord:
        """The record in ``data``, read from ``path`` (a run record or an export's description)."""
        try:
            return cls(
                task=str(data["task"]),
                task_ref=str(data["task_ref"]),
                env_config=dict(data["env_config"]),
                hmarl_version=str(data.get("hmarl_version", "")),
                stop=dict(data.get("stop") or {}),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"{path} has no valid task record ({err!r})") from None

    def load_task(self) -> Task:
        from hmarl.registry import load_task

        try:
            return load_task(self.task_ref)
        except TaskError as err:
            raise TaskError(f"the run's task cannot be loaded: {err}") from None


def find_run(path: Path) -> tuple[Path, RunRecord] | None:
    """The run folder holding ``path`` (itself or a folder above) and its record."""
    path = Path(path).resolve()
    for folder in [path, *path.parents][: SEARCH_UP + 1]:
        record = folder / RECORD_FILE
        if record.is_file():
            return folder, RunRecord.read(record)
    return None


def checkpoints_of(path: Path) -> list[Path]:
    """The checkpoints a path names, best first: itself, or a run's from newest to oldest."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a folder; give a run or checkpoint folder")
    if is_checkpoint(path):
        problem = checkpoint_problem(path) if read_marker(path) is not None else None
        if problem is not None:
            raise CheckpointError(f"{path} is an incomplete checkpoint: {problem}")
        return [path]
    if find_run(path) is None:
        raise CheckpointError(
            f"{path} is not an hmarl run folder (no {RECORD_FILE} in it or above it), "
            "not a checkpoint and not an export"
        )
    found = find_checkpoints(path)
    if not found:
        raise CheckpointError(f"{path} holds no complete checkpoint yet")
    return found[::-1]


@dataclass
class Trained:
    """A trained policy with the task and env it was trained on."""

    policy: Any
    """A :class:`hmarl.policies.ModulePolicy`."""
    task: Task
    env_config: dict[str, Any]
    """The env to evaluate on: the run's, with any overrides applied."""
    source: Path
    """The checkpoint (or export) it came from."""
    skipped: list[str] = field(default_factory=list)
    """Newer checkpoints of the run that were not used, each with why (incomplete)."""


def load_trained(
    path: Path,
    env_overrides: dict[str, Any] | None = None,
    task: Task | None = None,
) -> Trained:
    """The newest loadable policy that ``path`` names, on the env it was trained on.

    A run folder may end in a checkpoint an interruption left incomplete or
    unreadable; then the one before it is used (``Trained.source`` says which, and
    ``Trained.skipped`` which were skipped and why). ``task`` is needed only
    for a checkpoint outside any run folder. ``path`` may also be an export folder
    (see :mod:`hmarl.export`), which is loaded without unpickling anything.
    """
    from hmarl.export import is_export, load_export
    from hmarl.policies import ModulePolicy
    from hmarl.task_env import make_task_env

    if is_export(path):
        return load_export(path, env_overrides, task)

    candidates = checkpoints_of(path)
    run = find_run(candidates[0])
    if run is not None:
        _, record = run
        task = task or record.load_task()
        if task.name != record.task:
            raise TaskError(f"{path} was trained on task {record.task}, not {task.name}")
        base = record.env_config
    elif task is None:
        raise CheckpointError(
            f"{path} is outside any hmarl run folder, so its task is unknown; give --task"
        )
    else:
        base = {}
    env_config = task.env_config_dict({**base, **(env_overrides or {})})
    spaces = task.policy_spaces(make_task_env(task, env_config))
    errors = []
    for checkpoint in candidates:
        problem = checkpoint_problem(checkpoint)
        if problem is not None:
            errors.append(f"{checkpoint}: {problem}")
            continue
        try:
            modules = load_modules(checkpoint)
        except CheckpointError as err:
            errors.append(str(err))
            continue
        missing = sorted(set(spaces) - set(modules))
        if missing:
            errors.append(f"{checkpoint} has no module for {', '.join(missing)}")
            continue
        observation_spaces = {p: pair[0] for p, pair in spaces.items()}
        policy = ModulePolicy({p: modules[p] for p in spaces}, observation_spaces, checkpoint)
        skipped = errors
        if run is not None:
            skipped = sorted(set(newer_incomplete(run[0], checkpoint)) | set(errors))
        return Trained(policy, task, env_config, checkpoint, skipped)
    raise CheckpointError(errors[0] if len(errors) == 1 else "; ".join(errors[:3]))
