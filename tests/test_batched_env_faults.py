"""The batched sampler on batched envs that are not well behaved: float64 observations,
and an env that raises (named in one line, the last good state saved, as the stock path)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from door_task import TASK, BatchedDoors

from hmarl.algorithm import HierarchicalPPO
from hmarl.checkpoints import find_checkpoints
from hmarl.faults import TrainingStopped
from hmarl.training import TrainConfig, build_config, plan


class Float64Doors(BatchedDoors):
    """Door values as float64 arrays, as a NumPy simulation easily produces them."""

    def observations(self, group: str) -> dict[str, np.ndarray]:
        obs = super().observations(group)
        return {**obs, "observation": obs["observation"].astype(np.float64)}


class BrokenDoors(BatchedDoors):
    """Raises on its third step."""

    calls = 0

    def step(self, actions: dict[str, np.ndarray]) -> Any:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("the door jammed")
        return super().step(actions)


def algo_for(batched: type, tmp_path: Path) -> HierarchicalPPO:
    p = plan(
        TrainConfig(
            task="door_task:TASK",
            out=tmp_path / "run",
            stop_iters=1,
            sampler="batched",
            train_batch_size=40,
            minibatch_size=40,
            num_envs_per_env_runner=4,
        )
    )
    p.out.mkdir(parents=True)
    p.task = dataclasses.replace(TASK, make_batched_env=lambda c, n: batched(10, n))
    return HierarchicalPPO(config=build_config(p))


def test_float64_observations_are_cast_as_rllib_casts_them(local_ray, tmp_path: Path) -> None:
    algo = algo_for(Float64Doors, tmp_path)
    try:
        assert np.isfinite(algo.train()["learners"]["door"]["policy_loss"])
    finally:
        algo.stop()


def test_a_batched_env_that_raises_is_named_and_the_last_good_state_kept(
    local_ray, tmp_path: Path
) -> None:
    algo = algo_for(BrokenDoors, tmp_path)
    try:
        with pytest.raises(TrainingStopped) as stopped:
            algo.train()
    finally:
        algo.stop()
    message = str(stopped.value)
    assert message.startswith("task doors: the batched env's step failed (acting: doors (8")
    assert "RuntimeError: the door jammed" in message and "\n" not in message
    assert "the last good state (iteration 0) is in" in message
    (saved,) = find_checkpoints(tmp_path / "run")
    assert saved.name == "checkpoint_000000_stopped"
