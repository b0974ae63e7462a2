"""A flat PettingZoo task with action masks and a global state: the core's tests run it.

Two agents face five doors, every step for ``steps`` steps. Each door has a value, the
same for both agents, drawn each step; each agent finds some doors locked (at least
one open), and only it sees its own locks, in its action mask. Both agents get the
team's reward: the mean value of the doors they opened. Opening a locked door raises,
as a real system would refuse it. The global state is every value, every agent's locks
and the time: what a centralised critic reads.

``make_batched_env`` gives the same rules as arrays, with the same draws per seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from hmarl import Task

AGENTS = ("door_0", "door_1")
DOORS = 5


def _draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One step's door values (DOORS,) and each agent's open doors (agents, DOORS)."""
    values = rng.random(DOORS).astype(np.float32)
    open_ = rng.random((len(AGENTS), DOORS)) < 0.5
    open_[np.arange(len(AGENTS)), rng.integers(DOORS, size=len(AGENTS))] = True
    return values, open_


def observation_space() -> gym.spaces.Dict:
    return gym.spaces.Dict(
        {
            "observation": gym.spaces.Box(0.0, 1.0, (DOORS,), np.float32),
            "action_mask": gym.spaces.Box(0, 1, (DOORS,), np.int8),
        }
    )


def state_space() -> gym.spaces.Box:
    return gym.spaces.Box(0.0, 1.0, (DOORS + len(AGENTS) * DOORS + 1,), np.float32)


class DoorEnv(ParallelEnv):
    metadata = {"name": "doors_v0"}  # noqa: RUF012 (PettingZoo's class attribute)

    def __init__(self, steps: int = 10) -> None:
        self.steps = steps
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self._obs_space = observation_space()
        self._action_space = gym.spaces.Discrete(DOORS)
        self.state_space = state_space()

    def observation_space(self, agent: str) -> gym.Space:
        return self._obs_space

    def action_space(self, agent: str) -> gym.Space:
        return self._action_space

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple:
        self.rng = np.random.default_rng(seed)
        self.t = 0
        self.values, self.open = _draw(self.rng)
        self.agents = list(AGENTS)
        return self._observe(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple:
        chosen = []
        for i, agent in enumerate(AGENTS):
            door = int(actions[agent])
            if not self.open[i, door]:
                raise ValueError(f"{agent} opened locked door {door}")
            chosen.append(self.values[door])
        reward = float(np.mean(chosen))
        self.t += 1
        self.values, self.open = _draw(self.rng)
        done = self.t >= self.steps
        obs = self._observe()
        rewards = dict.fromkeys(AGENTS, reward)
        truncations = dict.fromkeys(AGENTS, done)
        infos = {a: {"team_reward": reward} for a in AGENTS}
        if done:
            self.agents = []
        return obs, rewards, dict.fromkeys(AGENTS, False), truncations, infos

    def _observe(self) -> dict[str, dict[str, np.ndarray]]:
        return {
            agent: {"observation": self.values.copy(), "action_mask": self.open[i].astype(np.int8)}
            for i, agent in enumerate(AGENTS)
        }

    def state(self) -> np.ndarray:
        time = np.array([self.t / self.steps], np.float32)
        return np.concatenate([self.values, self.open.reshape(-1).astype(np.float32), time])


@dataclass
class _Step:
    rewards: dict[str, np.ndarray]
    terminated: dict[str, np.ndarray]
    truncated: dict[str, np.ndarray]
    infos: dict[str, dict[str, np.ndarray]]
    over: np.ndarray


class BatchedDoors:
    """``num_envs`` door envs as arrays, drawing from one generator per env as DoorEnv does."""

    groups = {"doors": AGENTS}  # noqa: RUF012

    def __init__(self, steps: int, num_envs: int) -> None:
        self.steps, self.num_envs = steps, num_envs
        self.observation_spaces = {"doors": observation_space()}
        self.action_spaces = {"doors": gym.spaces.Discrete(DOORS)}
        self.state_space = state_space()
        self.rngs = [np.random.default_rng(0) for _ in range(num_envs)]
        self.t = np.zeros(num_envs, np.int64)
        self.values = np.zeros((num_envs, DOORS), np.float32)
        self.open = np.ones((num_envs, len(AGENTS), DOORS), bool)

    def reset(self, seeds: Sequence[int], where: np.ndarray | None = None) -> None:
        envs = np.arange(self.num_envs) if where is None else np.flatnonzero(where)
        for b, seed in zip(envs, seeds, strict=True):
            self.rngs[b] = np.random.default_rng(seed)
            self.t[b] = 0
            self.values[b], self.open[b] = _draw(self.rngs[b])

    def observations(self, group: str) -> dict[str, np.ndarray]:
        values = np.repeat(self.values[:, None, :], len(AGENTS), axis=1)
        return {"observation": values, "action_mask": self.open.astype(np.int8)}

    def due(self, group: str) -> np.ndarray:
        return np.ones((self.num_envs, len(AGENTS)), bool)

    def states(self) -> np.ndarray:
        time = (self.t / self.steps).astype(np.float32)[:, None]
        flat_open = self.open.reshape(self.num_envs, -1).astype(np.float32)
        return np.concatenate([self.values, flat_open, time], axis=1)

    def step(self, actions: dict[str, np.ndarray]) -> _Step:
        doors = np.asarray(actions["doors"], dtype=np.int64)
        b = np.arange(self.num_envs)[:, None]
        if not self.open[b, np.arange(len(AGENTS))[None, :], doors].all():
            raise ValueError("an agent opened a locked door")
        reward = self.values[b, doors].mean(axis=1).astype(np.float64)
        self.t += 1
        for env in range(self.num_envs):
            self.values[env], self.open[env] = _draw(self.rngs[env])
        over = self.t >= self.steps
        rewards = np.repeat(reward[:, None], len(AGENTS), axis=1)
        truncated = np.repeat(over[:, None], len(AGENTS), axis=1)
        infos = {"team_reward": rewards}
        return _Step(
            {"doors": rewards},
            {"doors": np.zeros_like(truncated)},
            {"doors": truncated},
            {"doors": infos},
            over,
        )


TASK = Task(
    name="doors",
    make_env=lambda config: DoorEnv(**config),
    policy_of=lambda agent: "door",
    make_batched_env=lambda config, num_envs: BatchedDoors(config.get("steps", 10), num_envs),
)
