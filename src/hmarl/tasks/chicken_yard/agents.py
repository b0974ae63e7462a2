"""The yard's agents: their ids and spaces, shared by its env and its batched env.

Two agents per robot, ``robot_{i}_high`` and ``robot_{i}_low`` for i = 1..num_robots;
all high agents act for ``high_level_policy``, all low agents for ``low_level_policy``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from hmarl.tasks.chicken_yard.simulation import DIRECTION_NAMES, YardConfig

HIGH_LEVEL_POLICY = "high_level_policy"
LOW_LEVEL_POLICY = "low_level_policy"


def high_agent(robot: int) -> str:
    """Agent id of a robot's high level; robots are numbered from 1."""
    return f"robot_{robot}_high"


def low_agent(robot: int) -> str:
    """Agent id of a robot's low level; robots are numbered from 1."""
    return f"robot_{robot}_low"


def robot_index(agent_id: str) -> int:
    """The 0-based robot behind an agent id: ``robot_2_low`` -> 1."""
    return int(agent_id.split("_")[1]) - 1


def agent_ids(num_robots: int) -> list[str]:
    return [a for i in range(1, num_robots + 1) for a in (high_agent(i), low_agent(i))]


def policy_of(agent_id: str) -> str:
    """``robot_{i}_high`` acts for the high-level policy, ``robot_{i}_low`` for the low."""
    if agent_id.endswith("_high"):
        return HIGH_LEVEL_POLICY
    if agent_id.endswith("_low"):
        return LOW_LEVEL_POLICY
    raise ValueError(f"agent id {agent_id!r} is neither a high- nor a low-level agent")


def box(*shape: int, low: float = 0.0) -> gym.spaces.Box:
    """A float32 Box from ``low`` to 1: positions, fractions, flags, personalities."""
    return gym.spaces.Box(low, 1.0, shape=shape, dtype=np.float32)


def ocean_low(config: YardConfig) -> float:
    """The least entry a unit personality vector can have: 0, or -1 with negative draws."""
    return -1.0 if config.personality_low < 0 else 0.0


def high_observation_space(config: YardConfig) -> gym.spaces.Dict:
    c, o, low = config.num_chickens, config.num_ocean_features, ocean_low(config)
    return gym.spaces.Dict(
        {
            "chicken_oceans": box(c, o, low=low),
            "chicken_positions": box(c, 2),
            "robot_ocean": box(o, low=low),
            "robot_position": box(2),
        }
    )


def low_observation_space(config: YardConfig) -> gym.spaces.Dict:
    return gym.spaces.Dict(
        {"robot_position": box(2), "target_position": box(2), "time_left": box(1)}
    )


def high_action_space(config: YardConfig) -> gym.spaces.Discrete:
    """The chicken to go to."""
    return gym.spaces.Discrete(config.num_chickens)


def low_action_space(config: YardConfig) -> gym.spaces.Discrete:
    """0..7 = N, NE, E, SE, S, SW, W, NW."""
    return gym.spaces.Discrete(len(DIRECTION_NAMES))
