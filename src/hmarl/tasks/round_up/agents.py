"""The round-up's agents: the yard's ids and policies, and its spaces with the new fields.

Two agents per robot, ``robot_{i}_high`` and ``robot_{i}_low`` for i = 1..num_robots,
acting for ``high_level_policy`` and ``low_level_policy``, as in the yard. The low
level sees what it sees in the yard; the high level also sees which chickens other
robots are heading for, where the other robots are, the time left, and the other
robots' personalities and targets (to share the chickens out, and for the value).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym

from hmarl.tasks.chicken_yard import agents as yard_agents
from hmarl.tasks.chicken_yard.agents import (
    HIGH_LEVEL_POLICY,
    LOW_LEVEL_POLICY,
    agent_ids,
    box,
    high_agent,
    low_agent,
    ocean_low,
    policy_of,
    robot_index,
)
from hmarl.tasks.round_up.simulation import RoundUpConfig

__all__ = [
    "HIGH_LEVEL_POLICY",
    "LOW_LEVEL_POLICY",
    "Spaces",
    "agent_ids",
    "high_agent",
    "high_observation_space",
    "low_agent",
    "policy_of",
    "robot_index",
    "state_space",
]


def high_observation_space(config: RoundUpConfig) -> gym.spaces.Dict:
    """The yard's high-level view and the fields a decision taken mid-episode needs."""
    c, r, o = config.num_chickens, config.num_robots, config.num_ocean_features
    yard = yard_agents.high_observation_space(config.yard)
    return gym.spaces.Dict(
        {
            **yard.spaces,
            "chicken_claimed": box(c),
            "other_positions": box(r - 1, 2),
            "time_left": box(1),
            "other_oceans": box(r - 1, o, low=ocean_low(config.yard)),
            "other_targets": box(r - 1, c),
        }
    )


def state_space(config: RoundUpConfig) -> gym.spaces.Dict:
    """The whole yard, for a centralised critic: every robot, every chicken, the clock."""
    c, r, o = config.num_chickens, config.num_robots, config.num_ocean_features
    low = ocean_low(config.yard)
    return gym.spaces.Dict(
        {
            "robot_positions": box(r, 2),
            "robot_oceans": box(r, o, low=low),
            "robot_targets": box(r, c),
            "chicken_positions": box(c, 2),
            "chicken_oceans": box(c, o, low=low),
            "time_left": box(1),
        }
    )


@dataclass(frozen=True)
class Spaces:
    """The observation and action space of each level, built once and shared by its agents
    (every call hands out the same objects)."""

    high_observation: gym.spaces.Dict
    high_action: gym.spaces.Discrete
    low_observation: gym.spaces.Dict
    low_action: gym.spaces.Discrete
    state: gym.spaces.Dict

    @classmethod
    def of(cls, config: RoundUpConfig) -> Spaces:
        return cls(
            high_observation=high_observation_space(config),
            high_action=yard_agents.high_action_space(config.yard),
            low_observation=yard_agents.low_observation_space(config.yard),
            low_action=yard_agents.low_action_space(config.yard),
            state=state_space(config),
        )
