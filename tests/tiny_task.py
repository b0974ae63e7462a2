"""A tiny two-level task that is not the yard: the core's tests run every tool on it.

A corridor of four cells, each worth a value drawn at reset. The planner (high level)
picks a cell; the walker (low level) steps left or right until it stands there. The
planner gets the cell's value, the walker -0.1 a step and +1 on arrival; the episode
ends at the arrival (terminated) or after ``limit`` steps (truncated).

Declared with the three required fields only, as a user would start. ``env_config``
keys: ``limit`` (steps), ``fail_at`` (``step`` or ``reset`` raise on that call
number, for fault tests), ``die_at`` and ``die_flag`` (the process exits on that call,
once: the first env to get there writes the flag file and dies, as a runner process
may) and ``render`` ("no" hides the renderer).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from hmarl import Task

CELLS = 4


class CorridorEnv(MultiAgentEnv):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        config = dict(config or {})
        self.limit = int(config.get("limit", 20))
        self.fail_at = config.get("fail_at")
        self.die_at = config.get("die_at")
        self.die_flag = config.get("die_flag")
        if config.get("render") == "no":
            self.metadata = {"render_modes": []}
        self.render_mode = None
        self.possible_agents = ["planner", "walker"]
        self.agents: list[str] = []
        self.observation_spaces = {
            "planner": gym.spaces.Box(0.0, 1.0, (CELLS + 1,), np.float32),
            "walker": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
        }
        self.action_spaces = {
            "planner": gym.spaces.Discrete(CELLS),
            "walker": gym.spaces.Discrete(2),
        }
        self.calls = 0

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.fail_at is not None and self.calls == int(self.fail_at):
            raise RuntimeError(f"the corridor broke on call {self.calls}")
        if self.die_at is not None and self.calls == int(self.die_at):
            flag = Path(self.die_flag)
            if not flag.exists():
                flag.touch()
                os._exit(3)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        self._maybe_fail()
        self.values = self.np_random.random(CELLS).astype(np.float32)
        self.position = int(self.np_random.integers(CELLS))
        self.goal = None
        self.steps = 0
        self.agents = ["planner"]
        return {"planner": self._planner_obs()}, {}

    def step(self, actions: dict[str, Any]) -> tuple:
        self._maybe_fail()
        self.steps += 1
        if "planner" in actions:
            self.goal = int(actions["planner"])
            rewards: dict[str, float] = {}
        else:
            self.position = min(max(self.position + (1 if actions["walker"] else -1), 0), CELLS - 1)
            rewards = {"walker": -0.1}
        if self.goal is not None and self.position == self.goal and "walker" in actions:
            rewards = {"walker": 1.0, "planner": float(self.values[self.goal])}
            return self._end(rewards, terminated=True)
        if self.steps >= self.limit:
            return self._end(rewards, terminated=False)
        self.agents = ["walker"]
        obs = {"walker": self._walker_obs()}
        return obs, rewards, {"__all__": False}, {"__all__": False}, {}

    def _end(self, rewards: dict[str, float], terminated: bool) -> tuple:
        ended = ["planner", "walker"] if self.steps > 1 else ["planner"]
        obs = {"planner": self._planner_obs(), "walker": self._walker_obs()}
        obs = {a: obs[a] for a in ended}
        flags = dict.fromkeys(ended, True) | {"__all__": True}
        rewards = dict.fromkeys(ended, 0.0) | rewards  # RLlib wants one for every observer
        infos = {"planner": {"value": float(self.values[self.goal]), "arrived": terminated}}
        self.agents = []
        if terminated:
            return obs, rewards, flags, {"__all__": False}, infos
        return obs, rewards, {"__all__": False}, flags, infos

    def _planner_obs(self) -> np.ndarray:
        return np.append(self.values, self.position / (CELLS - 1)).astype(np.float32)

    def _walker_obs(self) -> np.ndarray:
        goal = self.position if self.goal is None else self.goal
        return np.array([self.position, goal - self.position], np.float32) / (CELLS - 1)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        frame = np.zeros((16, 16 * CELLS, 3), np.uint8)
        for cell, value in enumerate(self.values):
            frame[:, 16 * cell : 16 * (cell + 1), 1] = int(255 * value)
        frame[4:12, 16 * self.position + 4 : 16 * self.position + 12] = 255
        return frame


def make_env(env_config: dict[str, Any]) -> CorridorEnv:
    return CorridorEnv(env_config)


def policy_of(agent_id: str) -> str:
    return agent_id


TASK = Task(name="corridor", make_env=make_env, policy_of=policy_of)
