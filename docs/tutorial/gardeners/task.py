"""The garden declared as an hmarl task: the one object `hmarl train --task` needs.

The first three fields are required; the rest are optional parts that make the tools
say more: typed settings (each field a flag), metrics read from the agents' last
infos, hand-written baselines to compare with, and a headline score.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hmarl import Metric, PolicyContext, Score, Task

from .simulation import EAST, NORTH, SOUTH, STAY, WEST, GardenConfig


def make_env(env_config: dict[str, Any]) -> Any:
    from .env import GardenEnv  # imports RLlib: only when an env is made

    return GardenEnv(GardenConfig(**env_config))


def make_batched_env(env_config: dict[str, Any], num_envs: int) -> Any:
    from .batched import BatchedGarden

    return BatchedGarden(GardenConfig(**env_config), num_envs)


def policy_of(agent_id: str) -> str:
    """``gardener_{i}_chooser`` acts for the chooser policy, ``gardener_{i}_walker`` the walker."""
    return agent_id.rsplit("_", 1)[1]


def walk_straight(offsets: np.ndarray) -> np.ndarray:
    """The walker's best move for each row of (dx, dy) offsets: along x first, then y."""
    dx, dy = offsets[:, 0], offsets[:, 1]
    return np.select(
        [dx > 0, dx < 0, dy > 0, dy < 0], [EAST, WEST, SOUTH, NORTH], default=STAY
    ).astype(np.int64)


class Rule:
    """A hand-written gardener: choose the plant a rule values most, walk straight to it.

    The rule values a plant by its dryness and its walk: the steps to it, and one to
    water it.
    """

    def __init__(self, value: Callable[[np.ndarray, np.ndarray], np.ndarray], size: int) -> None:
        self.value = value
        self.size = size

    def act(self, policy_id: str, obs: np.ndarray) -> np.ndarray:
        if policy_id == "walker":
            return walk_straight(obs)
        plants = obs.reshape(len(obs), -1, 3)
        offsets = np.rint(plants[:, :, :2] * (self.size - 1))  # observed divided by size - 1
        steps = np.abs(offsets).sum(axis=2) + 1
        return self.value(plants[:, :, 2], steps).argmax(axis=1)


def thirstiest(context: PolicyContext) -> Rule:
    """Water the driest plant."""
    return Rule(lambda dryness, steps: dryness, context.env_config.size)


def nearest(context: PolicyContext) -> Rule:
    """Water the nearest plant."""
    return Rule(lambda dryness, steps: -steps, context.env_config.size)


def per_step(context: PolicyContext) -> Rule:
    """Water the plant with the most dryness per step of the walk there."""
    return Rule(lambda dryness, steps: dryness / steps, context.env_config.size)


TASK = Task(
    name="gardeners",
    description="a chooser picks a plant to water (high level), a walker walks there (low)",
    make_env=make_env,
    policy_of=policy_of,
    config=GardenConfig,
    metrics=(
        Metric("watered", "chooser", "watered", description="dryness watered in an episode"),
        Metric(
            "directness",
            "walker",
            "directness",
            description="shortest paths' steps over the steps the walks took",
        ),
    ),
    baselines={"thirstiest": thirstiest, "nearest": nearest, "per_step": per_step},
    score=Score("watered", reference="best"),
)
