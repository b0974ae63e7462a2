"""PettingZoo envs as tasks: the adapter's semantics, hierarchical PettingZoo envs, AEC envs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from hmarl import Task
from hmarl.algorithm import HierarchicalPPO
from hmarl.conformance import check_determinism, check_env
from hmarl.parallel_env import ParallelEnvAdapter
from hmarl.task import TaskError
from hmarl.task_env import make_task_env
from hmarl.training import TrainConfig, build_config, plan


class Relay(ParallelEnv):
    """A hierarchical PettingZoo env: a boss picks a target, a runner runs there.

    The runner is in ``agents`` from the start but observed only once the boss has
    chosen: agents missing from the observations are not due. The boss is paid when
    the runner arrives (a reward that reaches it while it waits).
    """

    metadata = {"name": "relay_v0"}  # noqa: RUF012

    def __init__(self) -> None:
        self.possible_agents = ["boss", "runner"]
        self._spaces = {
            "boss": gym.spaces.Box(0.0, 1.0, (3,), np.float32),
            "runner": gym.spaces.Box(-1.0, 1.0, (1,), np.float32),
        }
        self._actions = {"boss": gym.spaces.Discrete(3), "runner": gym.spaces.Discrete(2)}

    def observation_space(self, agent: str) -> gym.Space:
        return self._spaces[agent]

    def action_space(self, agent: str) -> gym.Space:
        return self._actions[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple:
        self.rng = np.random.default_rng(seed)
        self.values = self.rng.random(3).astype(np.float32)
        self.position, self.target, self.t = 0, None, 0
        self.agents = ["boss", "runner"]
        return {"boss": self.values.copy()}, {"boss": {}}

    def step(self, actions: dict[str, Any]) -> tuple:
        self.t += 1
        rewards = {"boss": 0.0, "runner": 0.0}
        if "boss" in actions:
            self.target = int(actions["boss"])
        else:
            self.position = max(0, min(2, self.position + (1 if actions["runner"] else -1)))
            rewards["runner"] = -0.1
        arrived = self.target is not None and self.position == self.target and self.t > 1
        if arrived:
            rewards = {"boss": float(self.values[self.target]), "runner": 1.0}
        done = arrived or self.t >= 8
        obs = {"runner": np.array([(self.target - self.position) / 2], np.float32)}
        flags = dict.fromkeys(self.agents, False)
        if done:
            obs["boss"] = self.values.copy()
            self.agents = []
        terminations = {a: done and arrived for a in flags}
        truncations = {a: done and not arrived for a in flags}
        return obs, rewards, terminations, truncations, {}


RELAY = Task(name="relay", make_env=lambda config: Relay(), policy_of=lambda agent: agent)


def test_a_hierarchical_pettingzoo_env_keeps_the_rule_of_who_is_due() -> None:
    env = make_task_env(RELAY, {})
    assert isinstance(env, ParallelEnvAdapter)
    check_env(env, seed=0, episodes=20)
    check_determinism(lambda: make_task_env(RELAY, {}), seed=0, episodes=5)
    obs, _ = env.reset(seed=1)
    assert list(obs) == ["boss"] and env.agents == ["boss", "runner"]
    obs, _, terminateds, _, _ = env.step({"boss": 2})
    assert list(obs) == ["runner"] and terminateds["__all__"] is False


def test_the_end_and_nothing_after_it() -> None:
    env = ParallelEnvAdapter(Relay())
    env.reset(seed=0)
    env.step({"boss": 2})
    for _ in range(7):
        obs, _, terminateds, truncateds, _ = env.step({"runner": 0})
    # Eight steps without arriving: both are truncated, and so is the episode.
    assert truncateds == {"boss": True, "runner": True, "__all__": True}
    assert terminateds["__all__"] is False and set(obs) == {"boss", "runner"}


def test_mpe2s_simple_spread_passes_the_conformance_checks() -> None:
    simple_spread = pytest.importorskip("mpe2.simple_spread_v3")
    env = ParallelEnvAdapter(simple_spread.parallel_env(max_cycles=25))
    check_env(env, seed=0, episodes=3)
    check_determinism(
        lambda: ParallelEnvAdapter(simple_spread.parallel_env(max_cycles=25)), seed=0, episodes=2
    )
    # Asked once: the same space objects every call, whatever the env does.
    assert (
        env.get_observation_space(env.possible_agents[0])
        is env.observation_spaces[env.possible_agents[0]]
    )


def test_an_aec_env_is_refused_with_the_conversion_to_use() -> None:
    task = Task(name="aec", make_env=lambda config: parallel_to_aec(Relay()), policy_of=str)
    with pytest.raises(TaskError, match=r"PettingZoo AEC env; .*aec_to_parallel"):
        make_task_env(task, {})


def test_a_hierarchical_pettingzoo_env_trains_on_rllibs_sampler(local_ray, tmp_path: Path) -> None:
    cfg = TrainConfig(
        task="test_parallel_env:RELAY",
        out=tmp_path / "run",
        stop_iters=1,
        train_batch_size=200,
        minibatch_size=100,
        num_envs_per_env_runner=2,
    )
    algo = HierarchicalPPO(config=build_config(plan(cfg)))
    try:
        result = algo.train()
    finally:
        algo.stop()
    returns = result["env_runners"]["hmarl"]["return"]
    assert set(returns) == {"boss", "runner"} and np.isfinite(list(returns.values())).all()
