"""The flat yard's agents: their ids and spaces, shared by its env and its batched env.

One agent per robot, ``robot_{i}`` for i = 1..num_robots, all acting for ``robot``; the
goal yard gives each a high and a low level (:mod:`hmarl.goals`), acting for
``robot_high`` and ``robot_low``.
"""

from __future__ import annotations

import gymnasium as gym

from hmarl.goals import HIGH, LOW
from hmarl.tasks.chicken_yard.agents import box, high_observation_space, low_action_space
from hmarl.tasks.chicken_yard.simulation import YardConfig

POLICY = "robot"
"""The one policy of the flat yard."""
HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY = POLICY + HIGH, POLICY + LOW
"""The goal yard's policies: the flat policy's, one a level."""
POSITION, PERSONALITY = slice(0, 2), slice(2, None)
"""Where the goal yard's goal features (a chicken's x, y, then its personality) hold each
part; ``goal[..., POSITION]`` works on arrays and tensors alike."""


def robot_agent(robot: int) -> str:
    """Agent id of a robot; robots are numbered from 1."""
    return f"robot_{robot}"


def observation_space(config: YardConfig) -> gym.spaces.Dict:
    """The chicken yard's high-level view (every chicken, the robot) and the time left."""
    return gym.spaces.Dict({**high_observation_space(config).spaces, "time_left": box(1)})


def action_space(config: YardConfig) -> gym.spaces.Discrete:
    """0..7 = N, NE, E, SE, S, SW, W, NW, as in the chicken yard."""
    return low_action_space(config)
