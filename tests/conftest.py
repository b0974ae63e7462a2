"""Shared fixtures: a local Ray for in-process RLlib tests, and one tiny trained run.

RLlib tests stay small (a few iterations); how well training learns is shown by
``benchmarks/time_to_quality.py``, not here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Small enough for seconds per iteration on two cores.
TINY_TRAINING = """
train_batch_size = 1000
minibatch_size = 250
num_epochs = 1
num_envs_per_env_runner = 4
checkpoint_every = 1

[yard]
timeout = 200
"""


def run_hmarl(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the `hmarl` command line in a subprocess, as a user would."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "hmarl.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
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


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, tiny_config: Path) -> Path:
    """A run folder from two tiny training iterations through Tune (the default path)."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
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
    return out


@pytest.fixture(scope="session")
def trained_checkpoint(trained_run: Path) -> Path:
    from hmarl.checkpoints import resolve_checkpoint

    return resolve_checkpoint(trained_run)[0]


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
