"""The yard's reference policy: the oracle, the ceiling a trained hierarchy is scored against.

(The floor, uniform random actions, is hmarl's own :class:`hmarl.policies.RandomPolicy`.)
Observation fields may carry any leading dimensions: one agent's observation gives
a scalar action, a batch of them an array of actions.
"""

from __future__ import annotations

import numpy as np

from hmarl.tasks.chicken_yard.agents import HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY
from hmarl.tasks.chicken_yard.simulation import DIRECTIONS, YardConfig, distances, move_positions

Observation = dict[str, np.ndarray]


def compatibilities(obs: Observation) -> np.ndarray:
    """(..., C) the robot's compatibility with every chicken, from a high-level observation."""
    return np.einsum("...co,...o->...c", obs["chicken_oceans"], obs["robot_ocean"])


def most_compatible(obs: Observation) -> np.ndarray:
    """The index of the chicken most like the robot."""
    return compatibilities(obs).argmax(-1)


def greedy_move(obs: Observation, move_amount: float) -> np.ndarray:
    """The move (0..7) that ends closest to the target: all eight tried, with the clipping."""
    every_move = np.arange(len(DIRECTIONS))
    after = move_positions(obs["robot_position"][..., None, :], every_move, move_amount)
    return distances(after, obs["target_position"][..., None, :]).argmin(-1)


class OraclePolicy:
    """The most compatible chicken, then the move that ends closest to it."""

    def __init__(self, config: YardConfig) -> None:
        self.config = config

    def act(self, policy_id: str, obs: Observation) -> np.ndarray:
        if policy_id == HIGH_LEVEL_POLICY:
            return most_compatible(obs)
        if policy_id == LOW_LEVEL_POLICY:
            return greedy_move(obs, self.config.move_amount)
        raise ValueError(f"the yard's oracle has no policy {policy_id!r}")
