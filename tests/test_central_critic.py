"""Centralised critics: the value reads the global state, the logits never do, and both
samplers hand the learner the state of the very step each row observed."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from door_task import AGENTS, DOORS, TASK, observation_space, state_space
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.core.columns import Columns

from hmarl.algorithm import HierarchicalPPO
from hmarl.central_critic import CentralCriticModule
from hmarl.global_state import GLOBAL_STATE, STATE_SPACE_KEY
from hmarl.masked_module import MaskedModule, qualname
from hmarl.task import TaskError
from hmarl.training import TrainConfig, build_config, plan

OBS = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)


def central(inference_only: bool = False) -> CentralCriticModule:
    return CentralCriticModule(
        observation_space=OBS,
        action_space=gym.spaces.Discrete(3),
        inference_only=inference_only,
        model_config={"fcnet_hiddens": [16, 16], STATE_SPACE_KEY: state_space()},
    )


def test_the_value_reads_the_state_and_the_logits_do_not() -> None:
    module = central()
    rng = np.random.default_rng(0)
    obs = torch.from_numpy(rng.uniform(-1, 1, (32, 6)).astype(np.float32))
    state = torch.from_numpy(rng.random((32, state_space().shape[0])).astype(np.float32))
    moved = torch.from_numpy(rng.random((32, state_space().shape[0])).astype(np.float32))
    batch = {Columns.OBS: obs, GLOBAL_STATE: state}
    logits = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS]
    values = module.compute_values(batch)
    other = {Columns.OBS: obs, GLOBAL_STATE: moved}
    assert torch.equal(module.forward_train(other)[Columns.ACTION_DIST_INPUTS], logits)
    assert not torch.allclose(module.compute_values(other), values)
    # Acting needs no state at all.
    assert torch.equal(
        module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS], logits
    )


def test_acting_holds_rllibs_actor_alone() -> None:
    acting = central(inference_only=True)
    names = set(acting.state_dict())
    assert not any(name.startswith("central_vf") for name in names)
    rllib = DefaultPPOTorchRLModule(
        observation_space=OBS,
        action_space=gym.spaces.Discrete(3),
        inference_only=True,
        model_config={"fcnet_hiddens": [16, 16]},
    )
    # The same actor RLlib's own default module acts with, layer for layer.
    assert {k: v.shape for k, v in acting.state_dict().items()} == {
        k: v.shape for k, v in rllib.state_dict().items()
    }
    assert set(central().state_dict()) - names == {
        name for name in central().state_dict() if name.startswith("central_vf")
    }


def test_a_masked_central_critic_reads_the_state_too() -> None:
    module = MaskedModule(
        observation_space=observation_space(),
        action_space=gym.spaces.Discrete(DOORS),
        model_config={
            "module": qualname(CentralCriticModule),
            "model_config": {"fcnet_hiddens": [16], STATE_SPACE_KEY: state_space()},
        },
    )
    obs = {
        "observation": torch.rand(8, DOORS),
        "action_mask": torch.ones(8, DOORS, dtype=torch.int8),
    }
    values = [
        module.compute_values({Columns.OBS: obs, GLOBAL_STATE: torch.full((8, 16), fill)})
        for fill in (0.0, 1.0)
    ]
    assert not torch.allclose(*values)


def door_algo(tmp_path: Path, sampler: str) -> HierarchicalPPO:
    cfg = TrainConfig(
        task="door_task:TASK",
        out=tmp_path / sampler,
        stop_iters=1,
        sampler=sampler,
        critic="central",
        train_batch_size=160,
        minibatch_size=160,
        num_envs_per_env_runner=4,
    )
    return HierarchicalPPO(config=build_config(plan(cfg)))


def assert_states_are_the_rows_own(batch: dict) -> None:
    """The door env's state starts with the door values every agent observes, then each
    agent's locks: the state of a row's own step matches its observation exactly."""
    obs = {key: np.asarray(value) for key, value in batch[Columns.OBS].items()}
    state = np.asarray(batch[GLOBAL_STATE])
    assert len(state) == len(obs["observation"]) > 0
    np.testing.assert_array_equal(state[:, :DOORS], obs["observation"])
    locks = state[:, DOORS : DOORS * (1 + len(AGENTS))].reshape(len(state), len(AGENTS), DOORS)
    # Each row's mask is one of the agents' locks in its own step's state.
    mine = (locks == obs["action_mask"][:, None, :]).all(axis=2).any(axis=1)
    assert mine.all()


@pytest.mark.parametrize("sampler", ["batched", "rllib"])
def test_each_row_gets_the_state_of_its_own_step(sampler: str, local_ray, tmp_path) -> None:
    algo = door_algo(tmp_path, sampler)
    try:
        runner = algo.env_runner
        if sampler == "batched":
            batch = runner.sample(num_timesteps=4 * 25)["door"]  # decisions cut mid-episode
        else:
            learner = algo.learner_group._learner
            episodes = runner.sample(num_timesteps=4 * 25)
            batch = learner._learner_connector(
                rl_module=learner.module,
                batch={},
                episodes=copy.deepcopy(episodes),
                shared_data={},
                metrics=None,
            )["door"]
        assert_states_are_the_rows_own(batch)
        result = algo.train()
        assert np.isfinite(result["learners"]["door"]["vf_loss"])
    finally:
        algo.stop()


def test_a_central_critic_needs_a_state(tmp_path: Path) -> None:
    import tiny_task

    cfg = TrainConfig(task="tiny_task:TASK", out=tmp_path / "run", stop_iters=1, critic="central")
    with pytest.raises(TaskError, match="has a centralised critic, but its env declares no global"):
        plan(cfg)
    ppo = {"planner": {"critic": "sideways"}}
    with pytest.raises(TaskError, match="the critic of planner must be one of local, central"):
        dataclasses.replace(tiny_task.TASK, ppo=ppo)
    assert TASK.make_batched_env is not None
