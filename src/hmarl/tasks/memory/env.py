"""The memory task's RLlib env: a cue seen once, to be acted on a few decisions later."""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from hmarl.tasks.memory.config import (
    HIGH,
    LOW,
    MemoryConfig,
    action_space,
    high_observation_space,
    low_observation_space,
)

FOLLOW_REWARD = 0.1
"""The low level's reward for each step on which it carries out the high level's choice."""


class MemoryEnv(MultiAgentEnv):
    """A high level that must remember a cue across its own decisions and a low level's steps.

    **Agents.** ``high`` (policy ``high_level_policy``) and ``low`` (``low_level_policy``).

    **Flow.** ``reset`` observes ``high`` alone, with the cue: one of ``cues``, drawn at
    reset. Its first decision and each of the ``middle_decisions`` after it choose an
    option; the low level then acts for a delay of ``min_delay`` to ``max_delay`` steps
    (drawn at reset, one per option), after which the high level decides again. Its
    final decision names the cue, and the episode ends (both agents observe a last time).
    Only the first observation shows the cue, and nothing the high level does is ever
    shown to it, so at the final decision only memory can tell the cue: a policy without
    memory is right 1 / ``cues`` of the time.

    **Observations** (Box, values in [0, 1]):

    ============  ==============================================================
    high          the cue one-hot (zeros after the first decision), then the
                  decisions made so far over ``middle_decisions + 1``
    low           the option the high level chose, one-hot, then the steps left
                  in it over ``max_delay``
    ============  ==============================================================

    **Actions.** ``Discrete(cues)`` for both: the high level's option (and at the end,
    the cue), the low level's step (it should repeat the option).

    **Rewards.** ``high``: 1 for the right cue at its final decision, else 0 (0 at every
    other decision). ``low``: 0.1 for each step that repeats the option. An agent's
    reward comes when it next observes.

    **Episode end.** After the final decision: both agents terminate. ``high``'s last info
    has ``correct`` (1 or 0), ``low``'s ``followed`` (the share of its steps that
    repeated the option).

    Bad input (an unknown agent, an agent not due, an action out of range) raises
    ``ValueError`` naming the agent; the env is left as it was.

    >>> env = MemoryEnv({"cues": 3})
    >>> obs, _ = env.reset(seed=0)
    >>> list(obs), obs["high"].shape
    (['high'], (4,))
    """

    metadata = {"render_modes": []}  # noqa: RUF012 (Gymnasium's class attribute)

    def __init__(self, config: MemoryConfig | dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = MemoryConfig.coerce(config)
        self.possible_agents = [HIGH, LOW]
        self.agents: list[str] = []
        self.observation_spaces = {
            HIGH: high_observation_space(self.config),
            LOW: low_observation_space(self.config),
        }
        self.action_spaces = {a: action_space(self.config) for a in self.possible_agents}
        self._due: str | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        rng = np.random.default_rng(seed)
        config = self.config
        self.cue = int(rng.integers(config.cues))
        self.delays = rng.integers(config.min_delay, config.max_delay + 1, config.decisions - 1)
        self.made = 0
        """High-level decisions made."""
        self.choice = 0
        self.steps_left = 0
        self.followed = 0
        self.low_steps = 0
        self.owed: dict[str, float] = {}
        """Rewards of agents that acted since they last observed."""
        self._due = HIGH
        self.agents = [HIGH, LOW]
        return {HIGH: self._high_obs()}, {HIGH: {}}

    def step(self, actions: dict[str, Any]) -> tuple:
        action = self._checked(actions)
        config = self.config
        if self._due == HIGH:
            self.owed[HIGH] = 0.0
            if self.made == config.decisions - 1:
                correct = action == self.cue
                self.owed[HIGH] = float(correct)
                self.made += 1
                return self._end(correct)
            self.choice = action
            self.steps_left = int(self.delays[self.made])
            self.made += 1
            self._due = LOW
        else:
            follows = action == self.choice
            self.followed += int(follows)
            self.low_steps += 1
            self.owed[LOW] = self.owed.get(LOW, 0.0) + FOLLOW_REWARD * follows
            self.steps_left -= 1
            if self.steps_left == 0:
                self._due = HIGH
        obs = {HIGH: self._high_obs()} if self._due == HIGH else {LOW: self._low_obs()}
        rewards = {agent: self.owed.pop(agent) for agent in obs if agent in self.owed}
        return obs, rewards, {"__all__": False}, {"__all__": False}, {a: {} for a in obs}

    def _checked(self, actions: dict[str, Any]) -> int:
        if self._due is None:
            raise ValueError("the episode is over; reset the env")
        for agent in actions:
            if agent not in self.possible_agents:
                raise ValueError(f"unknown agent {agent!r}; the agents are high, low")
            if agent != self._due:
                raise ValueError(f"agent {agent} is not due to act (due: {self._due})")
        if self._due not in actions:
            raise ValueError(f"no action for agent {self._due}, which is due to act")
        action = actions[self._due]
        if not self.action_spaces[self._due].contains(np.int64(action)):
            raise ValueError(
                f"agent {self._due}: action {action!r} is outside Discrete({self.config.cues})"
            )
        return int(action)

    def _end(self, correct: bool) -> tuple:
        self._due = None
        self.agents = []
        obs = {HIGH: self._high_obs(), LOW: self._low_obs()}
        rewards = {agent: self.owed.pop(agent) for agent in obs if agent in self.owed}
        infos = {
            HIGH: {"correct": float(correct)},
            LOW: {"followed": self.followed / max(1, self.low_steps)},
        }
        done = {HIGH: True, LOW: True, "__all__": True}
        return obs, rewards, done, {HIGH: False, LOW: False, "__all__": False}, infos

    def _high_obs(self) -> np.ndarray:
        config = self.config
        obs = np.zeros(config.cues + 1, np.float32)
        if self.made == 0:
            obs[self.cue] = 1.0
        obs[-1] = min(self.made, config.decisions - 1) / (config.decisions - 1)
        return obs

    def _low_obs(self) -> np.ndarray:
        obs = np.zeros(self.config.cues + 1, np.float32)
        obs[self.choice] = 1.0
        obs[-1] = self.steps_left / self.config.max_delay
        return obs
