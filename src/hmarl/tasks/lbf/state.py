"""LBF's global state, for centralised critics: the whole field, whatever the players see.

A vector of 3F + 3N floats (F food slots, the env's ``max_num_food``; N players):

- F food slots (row, column, level): the food still on the field, in row-major order
  of its cell (as a player that sees the whole field lists it), then unused slots
  (-1, -1, 0);
- N player slots (row, column, level), in player order (not the observer first: the
  state is nobody's view).

Positions are absolute, from the field's top-left corner, also in ``-2s`` ids where
the players see only the 5 x 5 square around them: the state is what a centralised
critic (MAPPO) knows beyond them. It holds no clock: the time limit truncates, so
values bootstrap past it as if the episode went on (see
:class:`hmarl.tasks.lbf.env.LBFEnv`).

:func:`package_state` reads it from the package's env; the batched env computes the
same from its arrays (``BatchedForaging.states``), held equal by
``hmarl.conformance.check_batched_env``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from lbforaging.foraging.environment import ForagingEnv

EMPTY_FOOD = (-1.0, -1.0, 0.0)
"""An unused food slot, as the package's observations write one."""


def state_space(env: ForagingEnv) -> gym.spaces.Box:
    """The state's space for the package env ``env`` (its field, players and levels)."""
    rows, cols = env.field_size
    foods, players = env.max_num_food, len(env.players)
    # The package's own bound on a food's level, from its observation space.
    max_food = float(env.observation_space[0].high[2])
    max_player = float(max(env.max_player_level))
    low = [-1.0, -1.0, 0.0] * foods + [0.0, 0.0, 0.0] * players
    high = [rows - 1, cols - 1, max_food] * foods + [rows - 1, cols - 1, max_player] * players
    return gym.spaces.Box(np.array(low, np.float32), np.array(high, np.float32), dtype=np.float32)


def package_state(env: ForagingEnv) -> np.ndarray:
    """The state of the package env ``env`` now (see the module docstring)."""
    foods = np.tile(np.array(EMPTY_FOOD, np.float32), (env.max_num_food, 1))
    rows, cols = np.nonzero(env.field)  # row-major, as the package lists food
    foods[: len(rows)] = np.stack([rows, cols, env.field[rows, cols]], axis=1)
    players = np.array([(*p.position, p.level) for p in env.players], dtype=np.float32)
    return np.concatenate([foods.reshape(-1), players.reshape(-1)])
