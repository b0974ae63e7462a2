"""``hmarl new-task``: the package it writes passes its own tests, trains, and evaluates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hmarl import __version__

SMALL = """
train_batch_size = 400
minibatch_size = 100
num_epochs = 1
num_envs_per_env_runner = 2
"""


def test_a_new_task_package_trains_and_passes_its_own_tests(tmp_path: Path, cli, hmarl) -> None:
    package = tmp_path / "couriers"
    done = cli("new-task", "couriers", "--out", str(package))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in package.iterdir()) == [
        "README.md",
        "couriers",
        "pyproject.toml",
        "tests",
    ]
    pyproject = (package / "pyproject.toml").read_text()
    assert 'couriers = "couriers.task:TASK"' in pyproject
    major, minor = (int(n) for n in __version__.split(".")[:2])
    assert f'dependencies = ["hmarl>={major}.{minor},<{major}.{minor + 1}"]' in pyproject
    readme = (package / "README.md").read_text()
    assert "pypi.org" not in readme and "hmarl check --task couriers" in readme

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(package), os.environ.get("PYTHONPATH", "")]),
    }
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert tested.returncode == 0, tested.stdout[-3000:]
    assert "3 passed" in tested.stdout

    (tmp_path / "small.toml").write_text(SMALL)
    out = tmp_path / "runs" / "couriers"
    trained = hmarl(
        "train",
        "--task",
        "couriers.task:TASK",
        "--config",
        str(tmp_path / "small.toml"),
        "--stop-iters",
        "1",
        "--no-tune",
        "--num-floors",
        "4",
        "--out",
        str(out),
        "--no-evaluate",
        PYTHONPATH=env["PYTHONPATH"],
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    record = json.loads((out / "hmarl_run.json").read_text())
    assert record["task"] == "couriers" and record["env_config"]["num_floors"] == 4

    evaluated = hmarl(
        "evaluate", str(out), "--episodes", "10", "--json", PYTHONPATH=env["PYTHONPATH"]
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    result = json.loads(evaluated.stdout)
    assert set(result["policies"]) == {"trained", "random", "busiest"}
    assert result["policies"]["busiest"]["passengers"] > result["policies"]["random"]["passengers"]


def test_the_template_is_a_task(tmp_path: Path) -> None:
    from hmarl.conformance import check_determinism, check_env
    from hmarl.scaffold.template.task import TASK

    check_env(TASK.make_env({"num_lifts": 2}), seed=0, episodes=3)
    check_determinism(lambda: TASK.make_env({"num_lifts": 2}), seed=0, episodes=2)


@pytest.mark.parametrize(
    ("name", "folder", "message"),
    [
        ("couriers", "taken", "already exists and is not an empty folder"),
        ("2couriers", "new", "must start with a letter"),
        ("couriers", "missing/new", "is not an existing folder"),
    ],
)
def test_bad_new_task_requests(name: str, folder: str, message: str, tmp_path: Path, cli) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    done = cli("new-task", name, "--out", str(tmp_path / folder))
    assert done.returncode == 2 and message in done.stderr
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
