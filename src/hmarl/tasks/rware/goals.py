"""RWARE's hierarchy (``hierarchy = "goals"``): a high level picks a requested shelf, a
goal, or a free place to put a shelf back; a low level drives there and lifts or puts down.

**What the goal functions read, and why.** A robot observes its own cell, heading and
load and the 3 x 3 cells around it: not where the requested shelves are, nor which
shelf places are free. So the candidates are read from the warehouse's global state
(:mod:`hmarl.tasks.rware.state`, ``Goals.reads_state``): the high level is a
centralised manager that sees, as its candidates' features, every requested shelf and
every free place, beside its robot's own observation. That is a design choice, not the
package's task: a flat policy never sees them (the flat variant, as EPyMARL trains
it), a MAPPO critic sees them only in its value. The low level sees its robot's
observation and its goal, nothing else.

- **Goals**: R + G + N + 1 of them (R requests, G goal cells, N robots), 6 features
  each: x, y, then the kind one-hot (fetch, deliver, return, wait):

  - *fetch* (R slots, the requested shelves in shelf order): available to a robot
    without a load while no robot carries that shelf;
  - *deliver* (G slots, the goal cells): available to a robot carrying a requested
    shelf;
  - *return* (N slots, the free shelf places in cell order; there are as many as
    robots carry shelves): available to a robot carrying a shelf no longer requested;
  - *wait* (its own cell): always available.

  The kinds a robot may choose follow the task's cycle (fetch, deliver, put back); which
  shelf, goal or place, or to wait, is the high level's to learn.
- **Reached**: fetch when the robot stands at the shelf's cell and carries a shelf (it
  lifted it); deliver when it stands on the goal cell (arriving with a requested shelf
  delivers it); return when it stands at the place without a load; wait after a step.
- **Invalid**: fetch when the cell holds no requested shelf standing there any more
  (another robot lifted it) or the robot carries a shelf from elsewhere; deliver when
  the robot no longer carries a requested shelf; return when a shelf stands on the
  place now or the robot carries none.
- **Longest option**: twice the grid's height and width.
- **The low level's pay**: the flat reward (a delivery's), plus :data:`BONUS` on
  reaching (not for waiting), minus :data:`BONUS` for toggling its load against its goal
  (lifting a shelf off another cell on the way to fetch one, putting a shelf down before
  delivering it or off the place it is returned to), plus :data:`SHAPING` per cell of
  Manhattan distance closed to its goal (potential-based; none to wait).
"""

from __future__ import annotations

import functools

import numpy as np
from rware.warehouse import Warehouse

from hmarl.goals import Goals
from hmarl.tasks.packaged.package import make_package_env
from hmarl.tasks.rware.config import WarehouseConfig
from hmarl.tasks.rware.state import CARRIED, REQUESTED, ROBOT, SHELF

BONUS = 1.0
"""The low level's reward for reaching a goal (a delivery itself pays 1 more)."""
SHAPING = 0.05
"""The low level's reward per cell closer to its goal (and its cost per cell away)."""
SIZE = 6
"""Features of a goal: x, y and its kind one-hot."""
FETCH, DELIVER, RETURN, WAIT = 2, 3, 4, 5
"""Where a goal's features mark its kind."""


@functools.cache
def goals_for(config: WarehouseConfig) -> Goals:
    """The declaration for ``config``'s warehouse (its layout, robots and request queue)."""
    env = make_package_env(config.env_id, Warehouse)
    height, width = env.grid_size
    robots, requests = env.n_agents, env.request_queue_size
    places = np.argwhere(~env.highways.astype(bool))[:, ::-1]  # (P, 2) x, y, in cell order
    goal_cells = np.array(env.goals, dtype=np.float32)  # (G, 2) x, y
    scale = np.array([width - 1, height - 1]) if env.normalised_coordinates else np.ones(2)
    start = requests
    slots = {
        FETCH: slice(0, start),
        DELIVER: slice(start, start + len(goal_cells)),
        RETURN: slice(start + len(goal_cells), start + len(goal_cells) + robots),
    }
    count = slots[RETURN].stop + 1

    def robot(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 2) each robot's x, y and (n,) whether it carries a shelf, from its observation."""
        return np.rint(obs[:, :2] * scale), obs[:, 2] > 0

    def shelves(state: np.ndarray) -> np.ndarray:
        """(n, S, 4) every shelf: x, y, requested, carried."""
        return state[:, robots * ROBOT :].reshape(len(state), -1, SHELF)

    def standing_on(shelf: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """(n, K) which of the (n, K, 2) cells hold a standing (not carried) shelf."""
        down = shelf[..., CARRIED] == 0
        same = (cells[:, :, None, :] == shelf[:, None, :, :2]).all(-1) & down[:, None]
        return same.any(-1)

    def load(me: np.ndarray, shelf: np.ndarray) -> np.ndarray:
        """(n,) whether the shelf each robot carries is requested."""
        mine = (shelf[..., :2] == me[:, None]).all(-1) & (shelf[..., CARRIED] > 0)
        return (mine & (shelf[..., REQUESTED] > 0)).any(-1)

    def candidates(obs: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(obs)
        me, carrying = robot(obs)
        shelf = shelves(state)
        features = np.zeros((n, count, SIZE), dtype=np.float32)
        available = np.zeros((n, count), dtype=bool)
        # The requested shelves, in shelf order (the queue always holds ``requests``).
        asked = np.argsort(shelf[..., REQUESTED] == 0, axis=1, kind="stable")[:, :requests]
        wanted = np.take_along_axis(shelf, asked[..., None], 1)
        features[:, slots[FETCH], :2] = wanted[..., :2]
        features[:, slots[FETCH], FETCH] = 1.0
        available[:, slots[FETCH]] = (wanted[..., CARRIED] == 0) & ~carrying[:, None]
        requested_load = carrying & load(me, shelf)
        features[:, slots[DELIVER], :2] = goal_cells
        features[:, slots[DELIVER], DELIVER] = 1.0
        available[:, slots[DELIVER]] = requested_load[:, None]
        # Free places, in cell order: as many as shelves are carried, so at most N.
        free = ~standing_on(shelf, np.broadcast_to(places, (n, *places.shape)))
        order = np.argsort(~free, axis=1, kind="stable")[:, :robots]
        features[:, slots[RETURN], :2] = places[order]
        features[:, slots[RETURN], RETURN] = 1.0
        spare = carrying & ~requested_load
        available[:, slots[RETURN]] = np.take_along_axis(free, order, 1) & spare[:, None]
        features[:, -1, :2] = me
        features[:, -1, WAIT] = 1.0
        available[:, -1] = True
        return features, available

    def at_goal(obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        return (robot(obs)[0] == goal[:, :2]).all(-1)

    def reached(obs: np.ndarray, goal: np.ndarray, reward: np.ndarray, state: np.ndarray):
        _, carrying = robot(obs)
        there = at_goal(obs, goal)
        kind = goal[:, FETCH:] > 0
        done = np.stack([there & carrying, there, there & ~carrying, np.ones_like(there)], 1)
        return (kind & done).any(1)

    def invalid(obs: np.ndarray, goal: np.ndarray, reward: np.ndarray, state: np.ndarray):
        me, carrying = robot(obs)
        shelf = shelves(state)
        cell = goal[:, None, :2]
        asked = (shelf[..., :2] == cell).all(-1) & (shelf[..., REQUESTED] > 0)
        still_wanted = (asked & (shelf[..., CARRIED] == 0)).any(-1)
        fetch = ~still_wanted | (carrying & ~at_goal(obs, goal))
        deliver = ~(carrying & load(me, shelf))
        back = standing_on(shelf, cell)[:, 0] | ~carrying
        kind = goal[:, FETCH:] > 0
        gone = np.stack([fetch, deliver, back, np.zeros_like(fetch)], 1)
        return (kind & gone).any(1)

    def low_reward(reward: np.ndarray, reached: np.ndarray, obs: np.ndarray, goal: np.ndarray):
        # Waiting is reached by waiting a step: nothing the low level did, so no bonus.
        bonus = BONUS * (reached & (goal[:, WAIT] == 0))
        # A load toggled against the goal gives the bonus back. Without this, lifting a
        # requested shelf (fetch reached, +1) and putting it back down (deliver invalid,
        # free) paid 1 every two steps: hierarchies trained so delivered almost nothing
        # (0.016 shelves an episode after 600 s on rware-tiny-2ag-v2) while their low
        # levels' returns rose to 95-240.
        _, carrying = robot(obs)
        there = at_goal(obs, goal)
        kind = goal[:, FETCH:] > 0
        nothing = np.zeros_like(there)  # to wait
        toggled = np.stack([carrying & ~there, ~carrying, ~carrying & ~there, nothing], 1)
        return reward + bonus - BONUS * (kind & toggled).any(1)

    def closeness(obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Minus the cells between the robot and its goal, times :data:`SHAPING` (0 to wait)."""
        cells = np.abs(robot(obs)[0] - goal[:, :2]).sum(-1)
        return np.where(goal[:, WAIT] > 0, 0.0, -SHAPING * cells)

    return Goals(
        count=count,
        size=SIZE,
        candidates=candidates,
        reached=reached,
        invalid=invalid,
        max_steps=2 * (height + width),
        low_reward=low_reward,
        shaping=closeness,
        reads_state=True,
    )
