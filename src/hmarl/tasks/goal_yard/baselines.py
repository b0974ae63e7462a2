"""The goal yard's oracle: the chicken yard's, reading the goal yard's observations.

The most compatible chicken (among the goals the mask allows), then the move that ends
closest to it: :func:`~hmarl.tasks.chicken_yard.baselines.compatibilities` and
:func:`~hmarl.tasks.chicken_yard.baselines.greedy_move` on the same numbers the chicken
yard's oracle reads, so the two choose alike. Observations may carry any leading
dimensions, as there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hmarl.action_masks import MASK_KEY
from hmarl.tasks.chicken_yard.baselines import compatibilities, greedy_move
from hmarl.tasks.goal_yard.agents import (
    HIGH_LEVEL_POLICY,
    LOW_LEVEL_POLICY,
    PERSONALITY,
    POSITION,
)
from hmarl.tasks.goal_yard.simulation import FlatYardConfig

Observation = dict[str, Any]


class OraclePolicy:
    """The most compatible chicken, then the move that ends closest to it."""

    def __init__(self, config: FlatYardConfig) -> None:
        self.config = config

    def act(self, policy_id: str, obs: Observation) -> np.ndarray:
        if policy_id == HIGH_LEVEL_POLICY:
            view = obs["observation"]
            scores = compatibilities(
                {
                    "chicken_oceans": view["goals"][..., PERSONALITY],
                    "robot_ocean": view["observation"]["robot_ocean"],
                }
            )
            return np.where(np.asarray(obs[MASK_KEY]) > 0, scores, -np.inf).argmax(-1)
        if policy_id == LOW_LEVEL_POLICY:
            target = {
                "robot_position": obs["observation"]["robot_position"],
                "target_position": obs["goal"][..., POSITION],
            }
            return greedy_move(target, self.config.move_amount)
        raise ValueError(f"the goal yard's oracle has no policy {policy_id!r}")
