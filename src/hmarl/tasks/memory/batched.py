"""Many episodes of the memory task at once, as NumPy arrays (see :mod:`hmarl.batched_env`).

The rules, rewards, flags and infos are :class:`~hmarl.tasks.memory.env.MemoryEnv`'s;
:func:`hmarl.conformance.check_batched_env` holds the two equal step for step on the
same seeds. Groups ``high`` and ``low``, one agent each; arrays are (B, 1) per group,
(B,) inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hmarl.tasks.memory.config import (
    HIGH,
    LOW,
    MemoryConfig,
    action_space,
    high_observation_space,
    low_observation_space,
)
from hmarl.tasks.memory.env import FOLLOW_REWARD


@dataclass
class MemoryStep:
    """What one step did (see :class:`hmarl.batched_env.BatchedStep`)."""

    rewards: dict[str, np.ndarray]
    terminated: dict[str, np.ndarray]
    truncated: dict[str, np.ndarray]
    infos: dict[str, dict[str, np.ndarray]]
    over: np.ndarray


class BatchedMemory:
    """``num_envs`` episodes of the memory task (see the module docstring)."""

    groups = {HIGH: (HIGH,), LOW: (LOW,)}  # noqa: RUF012

    def __init__(self, config: MemoryConfig | dict[str, Any], num_envs: int) -> None:
        self.config = config = MemoryConfig.coerce(config)
        self.num_envs = b = num_envs
        self.observation_spaces = {
            HIGH: high_observation_space(config),
            LOW: low_observation_space(config),
        }
        self.action_spaces = {HIGH: action_space(config), LOW: action_space(config)}
        self.cue = np.zeros(b, np.int64)
        self.delays = np.ones((b, config.decisions - 1), np.int64)
        self.made = np.zeros(b, np.int64)
        """High-level decisions made."""
        self.choice = np.zeros(b, np.int64)
        self.steps_left = np.zeros(b, np.int64)
        self.followed = np.zeros(b, np.int64)
        self.low_steps = np.zeros(b, np.int64)
        self.owed = np.zeros((b, 2))
        """Rewards of the high (column 0) and low (1) agent since they last observed."""
        self.owes = np.zeros((b, 2), bool)
        """Whether that agent has acted since it last observed."""
        self.high_due = np.zeros(b, bool)
        self.over = np.ones(b, bool)

    def reset(self, seeds: Sequence[int], where: np.ndarray | None = None) -> None:
        config = self.config
        envs = np.arange(self.num_envs) if where is None else np.flatnonzero(where)
        for env, seed in zip(envs, seeds, strict=True):
            rng = np.random.default_rng(seed)  # the draws MemoryEnv.reset makes, in its order
            self.cue[env] = rng.integers(config.cues)
            self.delays[env] = rng.integers(
                config.min_delay, config.max_delay + 1, config.decisions - 1
            )
        for array in (self.made, self.choice, self.steps_left, self.followed, self.low_steps):
            array[envs] = 0
        self.owed[envs] = 0.0
        self.owes[envs] = False
        self.high_due[envs] = True
        self.over[envs] = False

    def due(self, group: str) -> np.ndarray:
        due = self.high_due if group == HIGH else ~self.high_due
        return (due & ~self.over)[:, None]

    def observations(self, group: str) -> np.ndarray:
        config = self.config
        rows = np.arange(self.num_envs)
        obs = np.zeros((self.num_envs, config.cues + 1), np.float32)
        if group == HIGH:
            first = self.made == 0
            obs[rows[first], self.cue[first]] = 1.0
            obs[:, -1] = np.minimum(self.made, config.decisions - 1) / (config.decisions - 1)
        else:
            obs[rows, self.choice] = 1.0
            obs[:, -1] = self.steps_left / config.max_delay
        return obs[:, None, :]

    def step(self, actions: dict[str, np.ndarray]) -> MemoryStep:
        config = self.config
        running = ~self.over
        high, low = self.high_due & running, ~self.high_due & running
        high_action = np.asarray(actions[HIGH])[:, 0]
        low_action = np.asarray(actions[LOW])[:, 0]
        final = high & (self.made == config.decisions - 1)
        chose = high & ~final
        correct = final & (high_action == self.cue)
        self.owed[high, 0] = correct[high].astype(np.float64)
        self.owes[high, 0] = True
        self.choice[chose] = high_action[chose]
        self.steps_left[chose] = self.delays[chose, self.made[chose]]
        self.made[high] += 1
        follows = low & (low_action == self.choice)
        self.followed += follows
        self.low_steps += low
        self.owed[:, 1] += FOLLOW_REWARD * follows
        self.owes[low, 1] = True
        self.steps_left[low] -= 1
        self.high_due = np.where(low & (self.steps_left == 0), True, self.high_due & ~chose)
        # Who observes now: the agent due next, and both agents where the episode ended.
        observes = np.stack([(self.high_due & running) | final, (~self.high_due & running)], 1)
        observes[final, 1] = True
        paid = observes & self.owes
        rewards = np.where(paid, self.owed, 0.0)
        self.owed[paid] = 0.0
        self.owes[paid] = False
        self.over |= final
        ended = final[:, None]
        infos = {
            HIGH: {"correct": correct.astype(np.float64)[:, None]},
            LOW: {"followed": (self.followed / np.maximum(1, self.low_steps))[:, None]},
        }
        return MemoryStep(
            rewards={HIGH: rewards[:, :1], LOW: rewards[:, 1:]},
            terminated={HIGH: ended, LOW: ended.copy()},
            truncated={HIGH: np.zeros_like(ended), LOW: np.zeros_like(ended)},
            infos=infos,
            over=final,
        )
