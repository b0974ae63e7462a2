"""A user's PettingZoo task end to end: trained with masks and a centralised critic, then
every tool on the run. The door env raises on a masked action, so every step of the run,
the evaluation and the export's check is a proof that none was picked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from door_task import DOORS

from conftest import built_once

DOOR_TRAINING = """
train_batch_size = 200
minibatch_size = 100
num_epochs = 1
num_envs_per_env_runner = 4
checkpoint_every = 1
"""


@pytest.fixture(scope="module")
def door_run(tmp_path_factory: pytest.TempPathFactory, hmarl, worker_id: str) -> Path:
    with built_once("door_run", worker_id, tmp_path_factory) as (home, build):
        if build:
            (home / "doors.toml").write_text(DOOR_TRAINING)
            done = hmarl(
                "train",
                "--task",
                "door_task:TASK",
                "--critic",
                "central",
                "--sampler",
                "rllib",
                "--config",
                str(home / "doors.toml"),
                "--stop-iters",
                "2",
                "--out",
                str(home / "run"),
            )
            assert done.returncode == 0, done.stderr[-3000:]
            assert "random" in done.stdout and "trained" in done.stdout  # the closing evaluation
    return home / "run"


def test_evaluate_inspect_and_export_work_on_the_run(door_run: Path, cli, tmp_path) -> None:
    done = cli("evaluate", str(door_run), "--episodes", "20", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["policies"]) == {"trained", "random"}
    assert np.isfinite(result["policies"]["trained"]["returns"]["door"])

    done = cli("inspect", str(door_run), "--json")
    assert done.returncode == 0, done.stderr
    module = json.loads(done.stdout)["door"]
    assert module["module_class"].endswith("MaskedModule")

    export = tmp_path / "export"
    done = cli("export", str(door_run), "--out", str(export), "--format", "onnx")
    assert done.returncode == 0, done.stderr
    description = json.loads((export / "hmarl_policy.json").read_text())["policies"]["door"]
    # Acting only: no global state, no critic in the weights or the graph.
    assert "global_state_space" not in json.dumps(description["module"]["model_config"])
    assert not any("central_vf" in name for name in description["parameters"])
    assert [i["name"] for i in description["onnx_inputs"]] == ["action_mask", "observation"]
    done = cli("evaluate", str(export), "--task", "door_task:TASK", "--episodes", "20", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["policies"]["trained"] == result["policies"]["trained"]

    # The graph takes the mask and never picks a door it forbids.
    session = onnxruntime.InferenceSession(str(export / "door.onnx"))
    rng = np.random.default_rng(0)
    mask = (rng.random((500, DOORS)) < 0.3).astype(np.int8)
    mask[np.arange(500), rng.integers(DOORS, size=500)] = 1
    values = rng.random((500, DOORS)).astype(np.float32)
    (actions,) = session.run(None, {"action_mask": mask, "observation": values})
    assert mask[np.arange(500), actions].all()
