"""Shared fixtures: a local Ray for in-process RLlib tests, and one tiny trained run.

RLlib tests stay small (a few iterations); how well training learns is shown by
``benchmarks/time_to_quality.py``, not here.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

# Small enough for seconds per iteration on two cores.
TINY_TRAINING = """
train_batch_size = 1000
minibatch_size = 250
num_epochs = 1
num_envs_per_env_runner = 4
checkpoint_every = 1

[env]
timeout = 200
"""

# The corridor's training settings: it learns nothing in two iterations, nor needs to.
CORRIDOR_TRAINING = """
train_batch_size = 400
minibatch_size = 100
num_epochs = 1
num_envs_per_env_runner = 2
checkpoint_every = 1
"""


TESTS = Path(__file__).parent
HMARL = Path(sys.executable).with_name("hmarl")


def run_hmarl(
    *args: str, timeout: float = 300, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess:
    """Run the `hmarl` command line in a subprocess, as a user would.

    The tests folder is on PYTHONPATH, so ``--task tiny_task:TASK`` finds the tiny task.
    """
    paths = [str(TESTS), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    # The console script a user types, which (unlike `python -m`) does not put the
    # working directory on sys.path by itself.
    command = [str(HMARL)] if HMARL.exists() else [sys.executable, "-m", "hmarl.cli"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": os.pathsep.join(paths), **env},
    )


@pytest.fixture(scope="session")
def hmarl():
    """The `hmarl` command line, run in a subprocess: ``hmarl("train", "--help")``."""
    return run_hmarl


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(TINY_TRAINING)
    return path


def built_once(name: str, worker_id: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A context for building the folder ``name`` once for all pytest-xdist workers.

    ``with built_once(...) as (folder, build):`` gives the folder and whether this
    worker must build it; the others wait until it is built, then share it (the
    recipe of pytest-xdist's docs: a file lock in the temp folder the workers share).
    Without xdist, every session builds its own.
    """
    if worker_id == "master":
        return contextlib.nullcontext((tmp_path_factory.mktemp(name), True))
    shared = tmp_path_factory.getbasetemp().parent  # every worker's temp folder is in it

    @contextlib.contextmanager
    def locked() -> Iterator[tuple[Path, bool]]:
        done = shared / f"{name}.built"
        with FileLock(str(shared / f"{name}.lock")):
            (shared / name).mkdir(exist_ok=True)
            yield shared / name, not done.exists()
            done.touch()  # only reached when the build did not raise

    return locked()


@pytest.fixture(scope="session")
def trained_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_config: Path, worker_id: str
) -> Path:
    """A run folder from two tiny training iterations through Tune (the default path)."""
    with built_once("trained_run", worker_id, tmp_path_factory) as (folder, build):
        out = folder / "tiny"
        if build:
            _train_tiny(out, tiny_config)
    return out


def _train_tiny(out: Path, tiny_config: Path) -> None:
    done = run_hmarl(
        "train",
        "--config",
        str(tiny_config),
        "--stop-iters",
        "2",
        "--out",
        str(out),
        "--no-evaluate",
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="session")
def trained_checkpoint(trained_run: Path) -> Path:
    from hmarl.runs import checkpoints_of

    return checkpoints_of(trained_run)[0]


@pytest.fixture(scope="session")
def corridor_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A user's folder: ``my_corridor.py`` naming the tiny task, and ``runs/corridor`` in it.

    Trained as a user would: ``--task my_corridor:TASK`` from the working directory,
    through Tune, with a time budget (which the two iterations end well before) and
    the closing evaluation; what the command printed is in ``train.out``.
    """
    with built_once("corridor_run", worker_id, tmp_path_factory) as (home, build):
        if build:
            _train_corridor(home)
    return home


def _train_corridor(home: Path) -> None:
    (home / "my_corridor.py").write_text("from tiny_task import TASK  # the user's own task\n")
    (home / "small.toml").write_text(CORRIDOR_TRAINING)
    done = run_hmarl(
        "train",
        "--task",
        "my_corridor:TASK",
        "--config",
        "small.toml",
        "--stop-iters",
        "2",
        "--time-budget",
        "600",
        "--out",
        "runs/corridor",
        cwd=home,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (home / "train.out").write_text(done.stdout)
    assert "random" in done.stdout and "return planner" in done.stdout  # the closing table


@pytest.fixture(scope="session")
def local_ray():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@dataclass
class Done:
    """What a command did, as ``subprocess.run`` reports it."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture):
    """The `hmarl` command line in this process: fast, for checking its answers to bad input.

    ``cli("evaluate", "missing")`` returns a :class:`Done`. The subprocess fixture
    ``hmarl`` stays for the runs that must be real.
    """

    def run(*args: str) -> Done:
        from hmarl.cli import main

        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as stop:  # argparse's own errors
            code = stop.code
        out = capsys.readouterr()
        return Done(code, out.out, out.err)

    return run
