"""The tutorial's package (docs/tutorial/gardeners) and the commands the tutorial shows.

The reader's folder is a temporary one holding a copy of the package, as after the
tutorial's steps; commands run from it as the tutorial runs them. One tiny training
run (a subprocess, as a user types it); the other commands run in this process.
"""

from __future__ import annotations

import doctest
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CORRIDOR_TRAINING

TUTORIAL = Path(__file__).parent.parent / "docs" / "tutorial"


@pytest.fixture(scope="module")
def garden_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("garden")
    shutil.copytree(TUTORIAL / "gardeners", home / "gardeners")
    (home / "small.toml").write_text(CORRIDOR_TRAINING)
    return home


def test_the_simulation_and_env_doctests_pass(garden_folder: Path, monkeypatch) -> None:
    # Step 1 as typed there; step 2's `python -c "...doctest.testmod(env)..."` in this
    # process (the same call, without importing Ray a second time).
    done = subprocess.run(
        [sys.executable, "-m", "doctest", "-v", "gardeners/simulation.py"],
        capture_output=True,
        text=True,
        cwd=garden_folder,
    )
    assert done.returncode == 0 and "Test passed." in done.stdout, done.stdout + done.stderr
    monkeypatch.syspath_prepend(str(garden_folder))
    env = importlib.import_module("gardeners.env")
    assert str(doctest.testmod(env)) == "TestResults(failed=0, attempted=5)"


def test_the_tutorial_commands(garden_folder: Path, monkeypatch, cli, hmarl) -> None:
    monkeypatch.chdir(garden_folder)
    for task in ("gardeners:TASK", "gardeners.scheduled:TASK", "gardeners.batched_task:TASK"):
        done = cli("check", "--task", task, "--episodes", "2")
        assert done.returncode == 0 and "passed" in done.stdout, done.stderr
    done = cli("random", "--task", "gardeners:TASK", "--episodes", "2")
    assert done.returncode == 0 and "watered" in done.stdout, done.stderr
    done = cli("random", "--task", "gardeners:TASK", "--policy", "per_step", "--episodes", "2")
    assert done.returncode == 0 and "per_step" in done.stdout, done.stderr

    # The tutorial's `hmarl train --task gardeners:TASK --time-budget 110`, two tiny iterations.
    trained = hmarl(
        "train",
        "--task",
        "gardeners:TASK",
        "--time-budget",
        "110",
        "--config",
        "small.toml",
        "--stop-iters",
        "2",
        "--no-evaluate",
        cwd=garden_folder,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "checkpoint: " in trained.stdout
    run = garden_folder / "runs" / "gardeners"

    done = cli("evaluate", str(run), "--episodes", "10", "--actions", "sampled", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["policies"]) == {"trained", "random", "thirstiest", "nearest", "per_step"}
    for command in (
        ("evaluate", str(run), "--episodes", "10"),
        ("watch", str(run), "--out", "garden.gif"),
        ("inspect", str(run)),
        # `plot` (tens of seconds here: it plays the baselines one episode at a time for
        # their levels) and `--format onnx` have their own tests: test_plotting, test_export.
        ("export", str(run), "--out", "garden-policy"),
    ):
        done = cli(*command)
        assert done.returncode == 0, (command, done.stderr)
    assert (garden_folder / "garden.gif").stat().st_size > 0
    assert (garden_folder / "garden-policy" / "chooser.safetensors").exists()
