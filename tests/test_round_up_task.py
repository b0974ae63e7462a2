"""The round-up as a task: its declaration, how hmarl finds it, and its RL modules."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from hmarl.registry import available_tasks, load_task
from hmarl.task import TaskError
from hmarl.tasks.chicken_yard.modules import GoalReachingModule
from hmarl.tasks.round_up import TASK
from hmarl.tasks.round_up.batched import BatchedRoundUp
from hmarl.tasks.round_up.env import RoundUpEnv
from hmarl.tasks.round_up.modules import RoundUpSetModule
from hmarl.tasks.round_up.simulation import RoundUpConfig
from hmarl.training import preflight


def test_found_by_name_as_a_built_in() -> None:
    assert load_task("round_up") is TASK
    assert any(t.name == "round_up" and t.origin == "built-in" for t in available_tasks())


def test_the_declaration() -> None:
    assert TASK.discounting == "smdp" and TASK.schedule is None
    assert TASK.score.metric == "caught_compatibility" and TASK.score.reference == "best"
    assert list(TASK.baselines) == [
        "nearest",
        "most_compatible",
        "rate_greedy",
        "priced_greedy",
        "priced_sharing",
    ]
    assert [m.name for m in TASK.metrics] == ["caught_compatibility", "catches", "moves_per_catch"]
    assert TASK.env_config_dict()["episode_steps"] == 500
    with pytest.raises(TaskError, match=r"RoundUpConfig\.replan_every"):
        TASK.env_config({"replan_every": -2})
    with pytest.raises(TaskError, match="no setting timeout"):
        TASK.env_config({"timeout": 10})


def test_preflight_accepts_it() -> None:
    spaces, _ = preflight(TASK, TASK.env_config_dict({"episode_steps": 100}))
    assert set(spaces) == {"high_level_policy", "low_level_policy"}


def test_the_task_module_imports_neither_ray_nor_torch() -> None:
    code = (
        "import sys, hmarl.tasks.round_up; "
        "heavy = {'ray', 'torch'} & set(sys.modules); assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def module_for(env: RoundUpEnv, agent: str, module_class: type) -> object:
    return module_class(
        observation_space=env.observation_spaces[agent],
        action_space=env.action_spaces[agent],
        model_config={"hidden_sizes": [16, 16]},
    )


def rows(obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """(B, R, ...) batched observations as a (B * R, ...) batch of tensors."""
    return {
        k: torch.from_numpy(v.reshape(v.shape[0] * v.shape[1], *v.shape[2:]).copy())
        for k, v in obs.items()
    }


def high_batch(config: RoundUpConfig, envs: int = 3) -> dict[str, torch.Tensor]:
    """Every robot's high-level observation of a few batched yards, one row each."""
    batch = BatchedRoundUp(config, num_envs=envs)
    batch.reset(range(envs))
    return rows(batch.observations("high"))


@pytest.mark.parametrize(("num_robots", "num_chickens"), [(3, 10), (1, 4), (8, 20)])
def test_the_high_module_scores_every_chicken(num_robots: int, num_chickens: int) -> None:
    config = RoundUpConfig(num_robots=num_robots, num_chickens=num_chickens)
    module = module_for(RoundUpEnv(config), "robot_1_high", RoundUpSetModule)
    obs = high_batch(config)
    out = module.forward_train({Columns.OBS: obs})
    assert out[Columns.ACTION_DIST_INPUTS].shape == (3 * num_robots, num_chickens)
    assert module.compute_values({Columns.OBS: obs}).shape == (3 * num_robots,)


def test_one_high_module_handles_other_numbers_of_chickens_and_robots() -> None:
    """A set scorer: built for 3 robots and 10 chickens, it scores 5 robots' 16 chickens."""
    module = module_for(RoundUpEnv(), "robot_1_high", RoundUpSetModule)
    obs = high_batch(RoundUpConfig(num_robots=5, num_chickens=16))
    logits = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (15, 16) and torch.isfinite(logits).all()


def test_the_other_robots_targets_reach_the_value_not_the_policy() -> None:
    """A centralised critic: where the other robots are heading changes the value, not
    the logits; their personalities change both."""
    torch.manual_seed(0)
    module = module_for(RoundUpEnv(), "robot_1_high", RoundUpSetModule)
    batch = BatchedRoundUp(RoundUpConfig(), num_envs=4)
    batch.reset(range(4))
    batch.step({"high": np.array([[0, 1, 2]] * 4), "low": np.zeros((4, 3), dtype=int)})
    obs = rows(batch.observations("high"))
    assert obs["other_targets"].sum() == 4 * 3 * 2  # every robot sees two others heading

    def heads(**changes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = module.forward_train({Columns.OBS: {**obs, **changes}})
        return out[Columns.ACTION_DIST_INPUTS], module.compute_values(
            {Columns.OBS: {**obs, **changes}}
        )

    logits, values = heads()
    moved_logits, moved_values = heads(other_targets=obs["other_targets"].roll(1, dims=-1))
    assert torch.equal(logits, moved_logits)
    assert (values - moved_values).abs().min() > 1e-6
    other_logits, _ = heads(other_oceans=-obs["other_oceans"])
    assert (logits - other_logits).abs().amax(dim=-1).min() > 1e-6


def test_the_low_level_is_the_yards_goal_reaching_module() -> None:
    specs = TASK.module_specs()
    assert specs["high_level_policy"].module_class is RoundUpSetModule
    assert specs["low_level_policy"].module_class is GoalReachingModule
    env = RoundUpEnv()
    module = module_for(env, "robot_1_low", GoalReachingModule)
    batch = BatchedRoundUp(RoundUpConfig(), num_envs=2)
    batch.reset([0, 1])
    obs = {
        k: torch.from_numpy(v.reshape(-1, *v.shape[2:]).copy())
        for k, v in batch.observations("low").items()
    }
    logits = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (6, 8)
