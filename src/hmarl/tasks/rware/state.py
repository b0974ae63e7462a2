"""RWARE's global state, for centralised critics: every robot, every shelf, the requests.

A vector of 7N + 4S floats (N robots, S shelves):

- N robot slots, in robot order: x, y (cells, y down, as the package has them), the
  heading one-hot (up, down, left, right), whether it carries a shelf;
- S shelf slots, in the package's shelf order (its ids): x, y (a carried shelf is where
  its robot is), whether it is requested, whether a robot carries it.

A robot observes only the 3 x 3 cells around it (5 x 5 with ``-2s``): the state is
what a centralised critic (MAPPO) and a centralised manager (the hierarchy's high
level, :mod:`hmarl.tasks.rware.goals`) know beyond that. It holds no clock: the time
limit truncates (see :class:`hmarl.tasks.rware.env.WarehouseEnv`).

:func:`package_state` reads it from the package's env; the batched env computes the
same from its arrays (``BatchedWarehouse.states``), held equal by
``hmarl.conformance.check_batched_env``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from rware.warehouse import Warehouse

ROBOT, SHELF = 7, 4
"""Floats per robot slot and per shelf slot."""
X, Y, CARRYING = 0, 1, 6
"""Where a robot slot holds its position and its load (its heading is 2..5)."""
REQUESTED, CARRIED = 2, 3
"""Where a shelf slot (after its x, y) holds its flags."""


def state_space(env: Warehouse) -> gym.spaces.Box:
    """The state's space for the package env ``env`` (its grid, robots and shelves)."""
    height, width = env.grid_size
    robot = [width - 1, height - 1, 1, 1, 1, 1, 1]
    shelf = [width - 1, height - 1, 1, 1]
    shelves = int((~env.highways.astype(bool)).sum())  # one on every place at a reset
    high = np.array(robot * env.n_agents + shelf * shelves, dtype=np.float32)
    return gym.spaces.Box(np.zeros_like(high), high, dtype=np.float32)


def package_state(env: Warehouse) -> np.ndarray:
    """The state of the package env ``env`` now (see the module docstring)."""
    robots = np.zeros((env.n_agents, ROBOT), dtype=np.float32)
    for i, agent in enumerate(env.agents):
        robots[i, [X, Y]] = agent.x, agent.y
        robots[i, 2 + agent.dir.value] = 1.0
        robots[i, CARRYING] = agent.carrying_shelf is not None
    shelves = np.zeros((len(env.shelfs), SHELF), dtype=np.float32)
    shelves[:, 0] = [shelf.x for shelf in env.shelfs]
    shelves[:, 1] = [shelf.y for shelf in env.shelfs]
    ids = {shelf.id: i for i, shelf in enumerate(env.shelfs)}
    shelves[[ids[shelf.id] for shelf in env.request_queue], REQUESTED] = 1.0
    carried = [ids[a.carrying_shelf.id] for a in env.agents if a.carrying_shelf is not None]
    shelves[carried, CARRIED] = 1.0
    return np.concatenate([robots.reshape(-1), shelves.reshape(-1)])
