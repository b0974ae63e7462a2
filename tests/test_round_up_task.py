"""The round-up as a task: its declaration, how hmarl finds it, and its RL modules."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from hmarl.global_state import GLOBAL_STATE, STATE_SPACE_KEY
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
        model_config={"hidden_sizes": [16, 16], STATE_SPACE_KEY: env.state_space},
    )


def rows(obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """(B, R, ...) batched observations as a (B * R, ...) batch of tensors."""
    return {
        k: torch.from_numpy(v.reshape(v.shape[0] * v.shape[1], *v.shape[2:]).copy())
        for k, v in obs.items()
    }


def states(batch: BatchedRoundUp) -> dict[str, torch.Tensor]:
    """Each yard's global state, repeated for each of its robots' rows (as in ``rows``)."""
    robots = batch.config.num_robots
    return {
        k: torch.from_numpy(np.repeat(v, robots, axis=0).copy()) for k, v in batch.states().items()
    }


def high_batch(config: RoundUpConfig, envs: int = 3) -> dict[str, dict[str, torch.Tensor]]:
    """Every robot's high-level observation of a few batched yards, one row each, and the
    global state of its yard."""
    batch = BatchedRoundUp(config, num_envs=envs)
    batch.reset(range(envs))
    return {Columns.OBS: rows(batch.observations("high")), GLOBAL_STATE: states(batch)}


@pytest.mark.parametrize(("num_robots", "num_chickens"), [(3, 10), (1, 4), (8, 20)])
def test_the_high_module_scores_every_chicken(num_robots: int, num_chickens: int) -> None:
    config = RoundUpConfig(num_robots=num_robots, num_chickens=num_chickens)
    module = module_for(RoundUpEnv(config), "robot_1_high", RoundUpSetModule)
    batch = high_batch(config)
    out = module.forward_train(batch)
    assert out[Columns.ACTION_DIST_INPUTS].shape == (3 * num_robots, num_chickens)
    assert module.compute_values(batch).shape == (3 * num_robots,)
    assert torch.equal(module.compute_values(batch), out[Columns.EMBEDDINGS])


def test_one_high_module_handles_other_numbers_of_chickens_and_robots() -> None:
    """A set scorer: built for 3 robots and 10 chickens, it scores 5 robots' 16 chickens."""
    module = module_for(RoundUpEnv(), "robot_1_high", RoundUpSetModule)
    obs = high_batch(RoundUpConfig(num_robots=5, num_chickens=16))[Columns.OBS]
    logits = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (15, 16) and torch.isfinite(logits).all()


def test_the_global_state_reaches_the_value_not_the_policy() -> None:
    """A centralised critic: where the robots are heading (the global state) changes the
    value, not the logits; the other robots' personalities change both."""
    torch.manual_seed(0)
    module = module_for(RoundUpEnv(), "robot_1_high", RoundUpSetModule)
    batch = BatchedRoundUp(RoundUpConfig(), num_envs=4)
    batch.reset(range(4))
    batch.step({"high": np.array([[0, 1, 2]] * 4), "low": np.zeros((4, 3), dtype=int)})
    obs, state = rows(batch.observations("high")), states(batch)
    assert state["robot_targets"].sum() == 4 * 3 * 3  # every row's yard: three heading

    def heads(obs: dict, state: dict) -> tuple[torch.Tensor, torch.Tensor]:
        out = module.forward_train({Columns.OBS: obs, GLOBAL_STATE: state})
        return out[Columns.ACTION_DIST_INPUTS], out[Columns.EMBEDDINGS]

    logits, values = heads(obs, state)
    moved = {**state, "robot_targets": state["robot_targets"].roll(1, dims=-1)}
    moved_logits, moved_values = heads(obs, moved)
    assert torch.equal(logits, moved_logits)
    assert (values - moved_values).abs().min() > 1e-6
    other_logits, _ = heads({**obs, "other_oceans": -obs["other_oceans"]}, state)
    assert (logits - other_logits).abs().amax(dim=-1).min() > 1e-6
    # Acting reads no state, and an inference-only build holds no value at all.
    acting = RoundUpSetModule(
        observation_space=module.observation_space,
        action_space=module.action_space,
        inference_only=True,
        model_config={"hidden_sizes": [16, 16]},
    )
    acting.load_state_dict(module.state_dict(), strict=False)
    inference = acting.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    assert torch.allclose(inference, logits) and not hasattr(acting, "value_head")


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
