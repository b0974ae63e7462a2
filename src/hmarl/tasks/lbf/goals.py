"""LBF's hierarchy (``hierarchy = "goals"``): a high level picks a food, or to wait; a low
level walks beside it and loads.

Everything is read from the agent's own observation (:func:`goals_for` declares it for
:func:`hmarl.goals.hierarchical`):

- **Goals**: F + 1 of them, 4 features each (row, column, level, wait). Goal k < F is
  the k-th food the agent sees, as its observation lists it (row, column, level, 0),
  available while that slot holds a food; goal F is to wait, (own row, own column, 0,
  1), always available.
- **Reached**: for a food, when the agent loaded food (its reward is positive) and
  that food is gone from where the agent saw it; to wait, after one step.
- **Invalid**: the food is no longer where the agent saw it: another agent loaded it,
  or, in ``-2s`` ids, the agent's view moved. Positions in a partial view count from
  the view's corner, which moves with the agent (but at the field's edge), so a goal
  read from the observation holds only while the view stands: in ``-2s`` the high
  level chooses again after most moves. With the whole field in sight positions are
  absolute and an option lasts until its food is loaded or gone.
- **Longest option**: as many steps as the field has rows and columns.
- **The low level's pay**: the flat reward, plus :data:`BONUS` on reaching a food, plus (with
  the whole field in sight) :data:`SHAPING` per step of the distance it closed to the
  nearest cell beside its food (potential-based: walking away costs as much). In
  ``-2s`` ids a goal's position is stale after a move, so there is no shaping there.

The high level is paid the flat rewards of its option, each at its own step (SMDP),
so its return is the agent's flat return: the same score as the flat variant.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from hmarl.goals import Goals
from hmarl.tasks.lbf.config import LBFConfig

BONUS = 1.0
"""The low level's reward for loading its food (a food's own reward is a share of 1)."""
SHAPING = 0.1
"""The low level's reward per step closer to its food (and its cost per step away)."""
SIZE = 4
"""Features of a goal: row, column, level, wait."""
WAIT = 3
"""The feature that marks the goal to wait."""


def goals_for(config: LBFConfig) -> Goals:
    """The declaration for ``config``'s env (its food slots, field and sight)."""
    kwargs = gym.spec(config.env_id).kwargs
    foods = int(kwargs["max_num_food"])
    rows, cols = kwargs["field_size"]
    whole_field = kwargs["sight"] >= max(rows, cols) - 1

    def seen(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, F, 3) the food slots of n observations, and (n, 2) the agents' own cells."""
        return obs[:, : 3 * foods].reshape(len(obs), foods, 3), obs[:, 3 * foods : 3 * foods + 2]

    def candidates(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        food, me = seen(obs)
        features = np.zeros((len(obs), foods + 1, SIZE), dtype=np.float32)
        features[:, :foods, :3] = food
        features[:, foods, :2] = me
        features[:, foods, WAIT] = 1.0
        available = np.ones((len(obs), foods + 1), dtype=bool)
        available[:, :foods] = food[..., 2] > 0
        return features, available

    def still_there(obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        food, _ = seen(obs)
        same = (food == goal[:, None, :3]).all(-1) & (food[..., 2] > 0)
        return same.any(-1)

    def waiting(goal: np.ndarray) -> np.ndarray:
        return goal[:, WAIT] > 0

    def reached(obs: np.ndarray, goal: np.ndarray, reward: np.ndarray) -> np.ndarray:
        loaded = (reward > 0) & ~still_there(obs, goal)
        return waiting(goal) | loaded

    def invalid(obs: np.ndarray, goal: np.ndarray, reward: np.ndarray) -> np.ndarray:
        return ~waiting(goal) & ~still_there(obs, goal)

    def closeness(obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Minus the steps from the agent to the nearest cell beside its food (0 to wait)."""
        _, me = seen(obs)
        steps = np.abs(me - goal[:, :2]).sum(-1) - 1
        return np.where(waiting(goal), 0.0, -SHAPING * steps)

    def low_reward(
        reward: np.ndarray, reached: np.ndarray, obs: np.ndarray, goal: np.ndarray
    ) -> np.ndarray:
        # Waiting is reached by waiting a step: nothing the low level did, so no bonus.
        return reward + BONUS * (reached & ~waiting(goal))

    return Goals(
        count=foods + 1,
        size=SIZE,
        candidates=candidates,
        reached=reached,
        invalid=invalid,
        max_steps=int(rows + cols),
        low_reward=low_reward,
        shaping=closeness if whole_field else None,
    )
