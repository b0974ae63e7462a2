"""A flat task for the goal wrapper's tests: agents on a line collect items.

Six cells, two agents, three items. Every step each agent moves left, stays or moves
right (clipped to the line); an item an agent stands on after the moves is collected,
paying 1 to each agent on it. The episode ends (terminated) when every item is gone or
(truncated) after ``limit`` steps. An agent observes its cell, every item's cell and
whether it is still there; the global state is every agent's cell and the items.

``GOALS`` declares its hierarchy: go to an item (still there); reached when standing on
it and paid; invalid once another agent took it; at most ``MAX_STEPS`` steps. The batched
env steps only the envs ``where`` says.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from hmarl import Task
from hmarl.goals import Goals, hierarchical

CELLS, ITEMS, AGENTS, MAX_STEPS = 6, 3, ("a0", "a1"), 4
OBS = gym.spaces.Box(0.0, 1.0, (1 + 2 * ITEMS,), np.float32)
ACTIONS = gym.spaces.Discrete(3)
STATE = gym.spaces.Box(0.0, 1.0, (len(AGENTS) + 2 * ITEMS,), np.float32)


def _start(seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cells = rng.permutation(CELLS)
    return cells[:ITEMS].copy(), rng.integers(CELLS, size=len(AGENTS))


def _observe(agents: np.ndarray, items: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(..., N, obs) observations of agent cells (..., N), items (..., I), present (..., I)."""
    scale = CELLS - 1
    shared = np.concatenate([items / scale, present], axis=-1)
    shared = np.broadcast_to(shared[..., None, :], (*agents.shape, 2 * ITEMS))
    return np.concatenate([agents[..., None] / scale, shared], axis=-1).astype(np.float32)


class LineEnv(MultiAgentEnv):
    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.limit = int((config or {}).get("limit", 12))
        self.possible_agents = list(AGENTS)
        # Spaces of its own: a space's random draws must not be shared between envs.
        self.observation_spaces = {a: copy.deepcopy(OBS) for a in AGENTS}
        self.action_spaces = {a: gym.spaces.Discrete(3) for a in AGENTS}
        self.state_space = STATE
        self.agents = []

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        self.items, self.cells = _start(seed)
        self.present = np.ones(ITEMS, np.float32)
        self.t = 0
        self.agents = list(AGENTS)
        return self._obs(), {}

    def _obs(self) -> dict[str, np.ndarray]:
        obs = _observe(self.cells, self.items, self.present)
        return {agent: obs[i] for i, agent in enumerate(AGENTS)}

    def step(self, actions: dict[str, Any]) -> tuple:
        moves = np.array([int(actions[a]) - 1 for a in AGENTS])
        self.cells = np.clip(self.cells + moves, 0, CELLS - 1)
        self.t += 1
        rewards = np.zeros(len(AGENTS))
        for item in np.flatnonzero(self.present):
            on = self.cells == self.items[item]
            if on.any():
                rewards[on] += 1.0
                self.present[item] = 0.0
        terminated = not self.present.any()
        truncated = not terminated and self.t >= self.limit
        if terminated or truncated:
            self.agents = []
        flags = dict.fromkeys(AGENTS, terminated)
        cut = dict.fromkeys(AGENTS, truncated)
        infos = {a: {"collected": float(ITEMS - self.present.sum())} for a in AGENTS}
        return (
            self._obs(),
            {a: float(rewards[i]) for i, a in enumerate(AGENTS)},
            flags | {"__all__": terminated},
            cut | {"__all__": truncated},
            infos,
        )

    def state(self) -> np.ndarray:
        scale = CELLS - 1
        return np.concatenate([self.cells / scale, self.items / scale, self.present]).astype(
            np.float32
        )


@dataclass
class _Step:
    rewards: dict[str, np.ndarray]
    terminated: dict[str, np.ndarray]
    truncated: dict[str, np.ndarray]
    infos: dict[str, dict[str, np.ndarray]]
    over: np.ndarray


class BatchedLine:
    """``num_envs`` lines as arrays; ``step(actions, where)`` moves only the ``where`` envs."""

    groups = {"line": list(AGENTS)}  # noqa: RUF012

    def __init__(self, limit: int, num_envs: int) -> None:
        self.limit, self.num_envs = limit, num_envs
        self.observation_spaces = {"line": OBS}
        self.action_spaces = {"line": ACTIONS}
        self.state_space = STATE
        self.items = np.zeros((num_envs, ITEMS), np.int64)
        self.cells = np.zeros((num_envs, len(AGENTS)), np.int64)
        self.present = np.zeros((num_envs, ITEMS), np.float32)
        self.t = np.zeros(num_envs, np.int64)

    def reset(self, seeds: Sequence[int], where: np.ndarray | None = None) -> None:
        envs = np.arange(self.num_envs) if where is None else np.flatnonzero(where)
        for b, seed in zip(envs, seeds, strict=True):
            self.items[b], self.cells[b] = _start(seed)
            self.present[b] = 1.0
            self.t[b] = 0

    def observations(self, group: str) -> np.ndarray:
        return _observe(self.cells, self.items, self.present)

    def due(self, group: str) -> np.ndarray:
        return np.ones((self.num_envs, len(AGENTS)), bool)

    def states(self) -> np.ndarray:
        scale = CELLS - 1
        parts = [self.cells / scale, self.items / scale, self.present]
        return np.concatenate(parts, axis=1).astype(np.float32)

    def step(self, actions: dict[str, np.ndarray], where: np.ndarray | None = None) -> _Step:
        where = np.ones(self.num_envs, bool) if where is None else np.asarray(where, bool)
        moves = np.asarray(actions["line"], dtype=np.int64) - 1
        self.cells = np.where(where[:, None], np.clip(self.cells + moves, 0, CELLS - 1), self.cells)
        self.t += where
        rewards = np.zeros((self.num_envs, len(AGENTS)))
        for item in range(ITEMS):
            on = (self.cells == self.items[:, item : item + 1]) & where[:, None]
            on &= self.present[:, item : item + 1] > 0
            rewards += on
            self.present[on.any(axis=1), item] = 0.0
        terminated = where & ~self.present.any(axis=1)
        truncated = where & ~terminated & (self.t >= self.limit)
        collected = np.repeat((ITEMS - self.present.sum(axis=1))[:, None], len(AGENTS), 1)
        return _Step(
            {"line": rewards},
            {"line": np.repeat(terminated[:, None], len(AGENTS), 1)},
            {"line": np.repeat(truncated[:, None], len(AGENTS), 1)},
            {"line": {"collected": collected}},
            terminated | truncated,
        )


def candidates(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every item: its cell and whether it is there; available while it is."""
    cells, present = obs[:, 1 : 1 + ITEMS], obs[:, 1 + ITEMS :]
    return np.stack([cells, present], axis=-1), present > 0


def reached(obs: np.ndarray, goal: np.ndarray, reward: np.ndarray) -> np.ndarray:
    return np.isclose(obs[:, 0], goal[:, 0]) & (reward > 0)


def invalid(obs: np.ndarray, goal: np.ndarray, reward: np.ndarray) -> np.ndarray:
    """The item at the goal's cell is gone (someone else took it)."""
    cells, present = obs[:, 1 : 1 + ITEMS], obs[:, 1 + ITEMS :]
    there = np.isclose(cells, goal[:, :1]) & (present > 0)
    return ~there.any(axis=1)


GOALS = Goals(
    count=ITEMS,
    size=2,
    candidates=candidates,
    reached=reached,
    invalid=invalid,
    max_steps=MAX_STEPS,
    bonus=0.5,
)

FLAT = Task(
    name="line",
    make_env=LineEnv,
    policy_of=lambda agent: "walker",
    make_batched_env=lambda config, n: BatchedLine(int(config.get("limit", 12)), n),
)
TASK = hierarchical(FLAT, GOALS)
