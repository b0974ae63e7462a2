"""The memory task's settings, its agents and their spaces, shared by its env and batched env."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from hmarl.tasks.chicken_yard.simulation import EnvConfig, check_integers

HIGH, LOW = "high", "low"
"""The two agents of an episode (and the groups of the batched env)."""
HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY = "high_level_policy", "low_level_policy"


def policy_of(agent_id: str) -> str:
    """``high`` acts for the high-level policy, ``low`` for the low-level one."""
    if agent_id == HIGH:
        return HIGH_LEVEL_POLICY
    if agent_id == LOW:
        return LOW_LEVEL_POLICY
    raise ValueError(f"unknown agent id {agent_id!r}; the memory task's agents are high, low")


@dataclass(frozen=True)
class MemoryConfig(EnvConfig):
    """The memory task's settings."""

    cues: int = 3
    """How many cues there are (a cue is one of them; chance is 1 / cues)."""
    middle_decisions: int = 2
    """High-level decisions between the first (which sees the cue) and the final one."""
    min_delay: int = 1
    """The fewest low-level steps between two high-level decisions."""
    max_delay: int = 3
    """The most low-level steps between two high-level decisions."""

    def __post_init__(self) -> None:
        check_integers(self, ("cues", "min_delay", "max_delay"), minimum=1)
        check_integers(self, ("middle_decisions",), minimum=0)
        if self.cues < 2:
            raise ValueError(f"MemoryConfig.cues must be at least 2, got {self.cues}")
        if self.max_delay < self.min_delay:
            raise ValueError(
                f"MemoryConfig.max_delay ({self.max_delay}) must not be below min_delay "
                f"({self.min_delay})"
            )

    @property
    def decisions(self) -> int:
        """High-level decisions per episode: the first, the middle ones, the final one."""
        return self.middle_decisions + 2


def high_observation_space(config: MemoryConfig) -> gym.spaces.Box:
    """The cue (one-hot; zeros after the first decision), then the share of decisions made."""
    return gym.spaces.Box(0.0, 1.0, (config.cues + 1,), np.float32)


def low_observation_space(config: MemoryConfig) -> gym.spaces.Box:
    """The option the high level chose (one-hot), then the share of its steps still to go."""
    return gym.spaces.Box(0.0, 1.0, (config.cues + 1,), np.float32)


def action_space(config: MemoryConfig) -> gym.spaces.Discrete:
    """Both levels pick one of ``cues``: the high level an option (or, last, the cue)."""
    return gym.spaces.Discrete(config.cues)
