"""A hand-written RWARE policy: fetch the nearest requested shelf, deliver it, put it back.

:class:`FetchPolicy`, the ``fetch`` baseline. Each robot, in robot order:

1. without a shelf: drives to the nearest requested shelf that no robot carries and
   no robot before it has chosen, and lifts it; with none left, it parks under the
   nearest shelf place, out of the corridors;
2. with a requested shelf: drives to the nearest goal (arriving delivers it);
3. with a shelf no longer requested: drives to the nearest free shelf place (no shelf
   standing on it; its own cell, if that is one) that no robot before it has chosen,
   and puts the shelf down.

It drives on shortest paths: under shelves anywhere without a load, on the corridors
with one (a loaded robot cannot pass a standing shelf; the corridors never hold one).
It turns towards the next cell of its path and then drives forward. Two robots that
head for each other's cells give way by rule: the one without a load (else the later
one) turns to another free cell. With probability ``explore`` (0.05), and with 0.5
when a robot stands in the cell ahead, it moves or turns at random instead: robots
that each wait for the other would otherwise wait for ever.

**What it reads beyond the observation.** A robot observes its own cell, heading and
load, and the 3 x 3 cells around it: not where the requested shelves are. So this
policy reads the warehouse's state: the robots, the shelves and the request queue.
hmarl's evaluation tells it the env it acts in through ``bind(env)`` (see
:class:`hmarl.task.Policy`): the batched env (its arrays), the task's env, or the
task's envs stepped together (each copied into arrays at every step). Its actions
for an observation batch are those of the due robots, in the batch's order.

In the goals variant (``hierarchy = "goals"``, :mod:`hmarl.tasks.rware.goals`) the high
level takes as its goal what a robot of this policy would head for (a shelf, a goal, a
place, or to wait where it would park; shelves and places that other robots' options
head for are left out), and the low level drives to its goal as this policy drives,
lifting or putting down there: the same policy, split at the goal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from rware.warehouse import Warehouse

from hmarl.goals import HIGH, LOW
from hmarl.task import PolicyContext
from hmarl.tasks.packaged.agents import GROUP
from hmarl.tasks.rware.batched import (
    FORWARD,
    LEFT,
    NOOP,
    RIGHT,
    STEP_X,
    STEP_Y,
    TOGGLE_LOAD,
    TURN_RIGHT,
    BatchedWarehouse,
)
from hmarl.tasks.rware.config import WarehouseConfig
from hmarl.tasks.rware.goals import DELIVER, FETCH, RETURN, SIZE, WAIT

FAR = 1 << 20
"""A distance longer than any path."""


class FetchPolicy:
    """The ``fetch`` baseline (see the module docstring); act only after ``bind``."""

    def __init__(self, context: PolicyContext, explore: float = 0.05) -> None:
        self.config = WarehouseConfig.coerce(context.env_config)
        layout = BatchedWarehouse(self.config, 1)
        self.height, self.width = layout.height, layout.width
        self.highways = layout.highways.reshape(-1)
        self.goals = np.array([y * self.width + x for x, y in layout.goals])
        self.places = np.flatnonzero(~self.highways)
        """Cells a shelf may stand on (off the corridors), numbered y * W + x."""
        self.loaded_distance = corridor_distances(layout.highways)
        cells = np.arange(self.height * self.width)
        y, x = np.divmod(cells, self.width)
        self.free_distance = np.abs(y[:, None] - y) + np.abs(x[:, None] - x)
        self.explore = explore
        self.rng = np.random.default_rng(context.seed)
        self._env: Any = None
        self._copies: BatchedWarehouse | None = None

    def bind(self, env: Any) -> None:
        """Act in ``env`` from now on: a batched env, a task env, or task envs in lockstep.

        Of either variant: the batched warehouse or the batched goal env over it; a task
        env is anything with the package's env as ``package`` (its state is copied into
        arrays at every step), or a goal env over one (as ``flat``).
        """
        batched = getattr(env, "flat", env)
        if isinstance(batched, BatchedWarehouse):
            self._env = env
            return
        envs = list(env) if isinstance(env, Sequence) else [env]
        if not all(isinstance(_package(e), Warehouse) for e in envs):
            raise TypeError(f"the fetch baseline cannot read the warehouse's state from {env!r}")
        self._env = envs
        self._copies = BatchedWarehouse(self.config, len(envs))

    def act(self, policy_id: str, obs: Any) -> np.ndarray:
        level = HIGH if policy_id.endswith(HIGH) else LOW if policy_id.endswith(LOW) else ""
        state, due, options = self._view(level)
        if level == HIGH:
            actions = self._choose(state, due, options, obs["observation"]["goals"])
        elif level == LOW:
            goals = np.zeros((*due.shape, SIZE), dtype=np.float32)
            goals[due] = obs["goal"]
            actions = self._reach(state, goals)[due]
        else:
            actions = self.plan(state)[due]
        rows = len(obs) if not level else len(obs["action_mask"] if level == HIGH else obs["goal"])
        if len(actions) != rows:
            raise ValueError(f"{rows} observations but {len(actions)} robots due to act")
        return actions

    def _view(self, level: str) -> tuple[BatchedWarehouse, np.ndarray, np.ndarray | None]:
        """The warehouse as arrays, (B, N) the robots due at ``level`` ("" flat), and in the
        goals variant (B, N, 6) the goals of the robots inside options (zeros elsewhere)."""
        if self._env is None:
            raise RuntimeError(
                "the fetch baseline reads the warehouse's state: bind(env) it to the env first"
            )
        if isinstance(self._env, BatchedWarehouse):
            return self._env, self._env.due(GROUP), None
        if not isinstance(self._env, list):  # the batched goal env
            env = self._env
            live = ~env.flat.over[:, None] & np.ones_like(env.due(GROUP + HIGH))
            inside = live & ~env.due(GROUP + HIGH)
            options = np.where(inside[..., None], env.goal[GROUP], 0.0)
            return env.flat, env.due(GROUP + level), options
        state = self._copies
        due = np.zeros((len(self._env), state.num_agents), dtype=bool)
        options = np.zeros((*due.shape, SIZE), dtype=np.float32)
        for row, env in enumerate(self._env):
            state.load_state(row, _package(env))
            robots = getattr(env, "flat_agents", env.possible_agents)
            due[row] = [agent + level in _due(env) for agent in robots]
            for i, agent in enumerate(robots):
                goal = getattr(env, "goal", {}).get(agent)
                if goal is not None and agent in env.live and agent + HIGH not in _due(env):
                    options[row, i] = goal
        return state, due, (options if level else None)

    def plan(self, state: BatchedWarehouse) -> np.ndarray:
        """(B, N) an action for every robot of every env (the flat baseline)."""
        robots = self._robots(state)
        target, fetching = self._targets(state, robots)
        arrived = robots.here == target
        pick_up = arrived & fetching
        put_down = arrived & robots.loaded & ~robots.requested_load & ~self.highways[robots.here]
        return self._drive(state, robots, target, pick_up | put_down)

    def _choose(
        self, state: BatchedWarehouse, due: np.ndarray, options: np.ndarray, goals: np.ndarray
    ) -> np.ndarray:
        """The goal of each deciding robot: what :meth:`plan` would head for (shelves and
        places other robots' options head for left out), as a goal among its choices."""
        robots = self._robots(state)
        target, fetching = self._targets(state, robots, claimed=options)
        kind = np.select(
            [fetching, robots.requested_load, robots.loaded], [FETCH, DELIVER, RETURN], WAIT
        )[due]
        y, x = np.divmod(target[due], self.width)
        goals = np.asarray(goals)
        same = (goals[..., 0] == x[:, None]) & (goals[..., 1] == y[:, None])
        match = same & (np.take_along_axis(goals, kind[:, None, None], -1)[..., 0] > 0)
        return np.where(match.any(1), match.argmax(1), goals.shape[1] - 1)  # the last: wait

    def _reach(self, state: BatchedWarehouse, goals: np.ndarray) -> np.ndarray:
        """(B, N) actions toward each robot's goal (B, N, 6), lifting or putting down there."""
        robots = self._robots(state)
        cell = (goals[..., 1] * self.width + goals[..., 0]).astype(np.int64)
        target = np.where(goals[..., WAIT] > 0, robots.here, cell)
        arrived = robots.here == target
        pick_up = arrived & (goals[..., FETCH] > 0) & ~robots.loaded
        put_down = arrived & (goals[..., RETURN] > 0) & robots.loaded
        return self._drive(state, robots, target, pick_up | put_down)

    def _robots(self, state: BatchedWarehouse) -> Robots:
        here = state.y * self.width + state.x
        loaded = state.carrying >= 0
        shelf = np.maximum(state.carrying, 0)
        rows = np.arange(len(here))[:, None]
        return Robots(here, loaded, loaded & state.requested[rows, shelf])

    def _targets(
        self, state: BatchedWarehouse, robots: Robots, claimed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(B, N) the cell each robot heads for, and whether it fetches a shelf there.

        ``claimed`` (B, N, 6): goals of robots inside options; the shelves and places
        they head for are not chosen again.
        """
        b, n = state.x.shape
        rows = np.arange(b)
        here, loaded, requested_load = robots
        # Requested shelves on the floor; free shelf places.
        shelf_cells = state.shelf_y * self.width + state.shelf_x  # (B, S)
        carried = np.zeros_like(state.requested)
        carried[np.nonzero(loaded)[0], state.carrying[loaded]] = True
        wanted = state.requested & ~carried
        # A place is free if no shelf stands on it (a robot may carry one over it).
        standing = np.zeros((b, self.height * self.width), dtype=bool)
        floor = np.nonzero(~carried)
        standing[floor[0], shelf_cells[floor]] = True
        if claimed is not None:
            heading = (claimed[..., 1] * self.width + claimed[..., 0]).astype(np.int64)
            envs, robot = np.nonzero(claimed[..., FETCH] > 0)
            fetched = np.zeros_like(wanted)
            np.logical_or.at(fetched, envs, shelf_cells[envs] == heading[envs, robot][:, None])
            wanted &= ~fetched
            envs, robot = np.nonzero(claimed[..., RETURN] > 0)
            standing[envs, heading[envs, robot]] = True  # taken, as if a shelf stood there
        free_places = ~standing[:, self.places]  # (B, P)

        target = here.copy()
        fetching = np.zeros((b, n), dtype=bool)
        for robot in range(n):
            at = here[:, robot]
            fetch = ~loaded[:, robot]
            to_shelf = np.where(wanted, self.free_distance[at][rows[:, None], shelf_cells], FAR)
            pick = to_shelf.argmin(1)
            has = fetch & (to_shelf.min(1) < FAR)
            target[has, robot] = shelf_cells[has, pick[has]]
            fetching[:, robot] = has
            wanted[rows[has], pick[has]] = False
            deliver = requested_load[:, robot]
            to_goal = self.loaded_distance[self.goals][:, at]  # (G, B)
            target[deliver, robot] = self.goals[to_goal.argmin(0)][deliver]
            store = loaded[:, robot] & ~deliver
            to_place = np.where(free_places, self.loaded_distance[self.places][:, at].T, FAR)
            put = to_place.argmin(1)
            has = store & (to_place.min(1) < FAR)
            target[has, robot] = self.places[put[has]]
            free_places[rows[has], put[has]] = False

        # Without a shelf to fetch: out of the corridors, under the nearest shelf place.
        idle = ~loaded & ~fetching
        to_place = self.free_distance[self.places][:, here]  # (P, B, N)
        target = np.where(idle, self.places[to_place.argmin(0)], target)
        return target, fetching

    def _drive(
        self, state: BatchedWarehouse, robots: Robots, target: np.ndarray, toggle: np.ndarray
    ) -> np.ndarray:
        """(B, N) the way to each ``target`` cell, and toggling the load where ``toggle``."""
        here, loaded, _ = robots
        n = here.shape[1]
        cells, open_, closer = self._neighbours(here, target, loaded)
        best = open_ & closer
        # The cell each robot heads for: the one ahead if it is on a shortest path.
        facing = np.take_along_axis(best, state.dir[..., None], -1)[..., 0]
        choice = np.where(facing, state.dir, best.argmax(-1))
        heads = np.take_along_axis(cells, choice[..., None], -1)[..., 0]
        heads = np.where(best.any(-1) & (here != target), heads, -1)
        # Two robots heading for each other's cells would wait for ever: one gives way to
        # an open cell no robot stands on (a robot without a load before one with, else
        # the later robot), and the other passes.
        me = np.arange(n)
        head_on = (heads[:, :, None] == here[:, None, :]) & (heads[:, None, :] == here[:, :, None])
        lighter = ~loaded[:, :, None] & loaded[:, None, :]
        later = (loaded[:, :, None] == loaded[:, None, :]) & (me[:, None] > me[None, :])
        gives_way = (head_on & (lighter | later)).any(-1)
        taken = (cells[..., None] == here[:, None, None, :]).any(-1)
        best = np.where(gives_way[..., None], open_ & ~taken, best)
        actions = steer(state.dir, best)
        actions = np.where((here == target) & ~gives_way, NOOP, actions)
        actions = np.where(toggle, TOGGLE_LOAD, actions)
        blocked = self._robot_ahead(state, here)
        chance = np.where(blocked, 0.5, self.explore)
        b = len(here)
        random = self.rng.integers(TOGGLE_LOAD, size=(b, n))  # moves and turns only
        return np.where(self.rng.random((b, n)) < chance, random, actions)

    def _neighbours(
        self, here: np.ndarray, target: np.ndarray, loaded: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, N, 4) per heading: the next cell, whether a robot may enter it (on the grid;
        with a load, a corridor or the target), whether it is closer to ``target``."""
        y, x = np.divmod(here, self.width)
        gap = np.where(loaded, self.loaded_distance[target, here], self.free_distance[target, here])
        cells = np.zeros((*here.shape, 4), dtype=np.int64)
        open_ = np.zeros((*here.shape, 4), dtype=bool)
        closer = np.zeros((*here.shape, 4), dtype=bool)
        for heading in range(4):
            ny, nx = y + STEP_Y[heading], x + STEP_X[heading]
            inside = (ny >= 0) & (ny < self.height) & (nx >= 0) & (nx < self.width)
            ahead = np.where(inside, ny * self.width + nx, here)
            rest = np.where(
                loaded, self.loaded_distance[target, ahead], self.free_distance[target, ahead]
            )
            cells[..., heading] = ahead
            # A loaded robot stays on the corridors, but for its last step.
            open_[..., heading] = inside & (~loaded | self.highways[ahead] | (ahead == target))
            closer[..., heading] = rest < gap
        return cells, open_, closer

    def _robot_ahead(self, state: BatchedWarehouse, here: np.ndarray) -> np.ndarray:
        y, x = np.divmod(here, self.width)
        ny = np.clip(y + STEP_Y[state.dir], 0, self.height - 1)
        nx = np.clip(x + STEP_X[state.dir], 0, self.width - 1)
        rows = np.arange(len(here))[:, None]
        ahead = state.robot_grid[rows, ny, nx]
        return (ahead > 0) & ((ny != y) | (nx != x))


class Robots(NamedTuple):
    """Where the robots are (B, N cell numbers), which carry a shelf, which a requested one."""

    here: np.ndarray
    loaded: np.ndarray
    requested_load: np.ndarray


def _package(env: Any) -> Any:
    """The package env of a task env, or of the goal env over one."""
    return getattr(getattr(env, "flat", env), "package", None)


def _due(env: Any) -> set[str]:
    """The agents due to act in a task env (flat or goal env)."""
    due = getattr(env, "due", None)
    return set(due) if isinstance(due, set) else set(env.due_agents)


def steer(heading: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Forward if the robot faces an ``allowed`` (B, N, 4) heading, else turn towards one
    (right if that is one, else left), else no-op."""
    facing = np.take_along_axis(allowed, heading[..., None], -1)[..., 0]
    right = np.take_along_axis(allowed, TURN_RIGHT[heading][..., None], -1)[..., 0]
    turn = np.where(right, RIGHT, LEFT)
    return np.where(facing, FORWARD, np.where(allowed.any(-1), turn, NOOP))


def corridor_distances(highways: np.ndarray) -> np.ndarray:
    """(C, C) steps from cell to cell for a loaded robot (cells numbered y * W + x).

    Every cell between the two ends is a corridor (standing shelves are never on
    one); the ends may be anywhere. Unreachable pairs are :data:`FAR`.
    """
    height, width = highways.shape
    cells = height * width
    corridor = highways.reshape(-1).astype(bool)
    neighbours = []
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        y, x = np.divmod(np.arange(cells), width)
        ny, nx = y + dy, x + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        neighbours.append(np.where(inside, ny * width + nx, -1))
    neighbours = np.stack(neighbours, 1)  # (C, 4), -1 off the grid
    distance = np.full((cells, cells), FAR, dtype=np.int64)
    np.fill_diagonal(distance, 0)
    # Relax to a fixed point: d(t, u) = 1 + min over neighbours v of u that are the
    # target or a corridor of d(t, v).
    through = np.where(neighbours >= 0, neighbours, 0)
    while True:
        via = distance[:, through]  # (C targets, C cells, 4)
        usable = (neighbours >= 0)[None] & (
            corridor[through][None] | (through[None] == np.arange(cells)[:, None, None])
        )
        best = np.where(usable, via, FAR).min(-1) + 1
        updated = np.minimum(distance, best)
        if np.array_equal(updated, distance):
            return np.minimum(distance, FAR)
        distance = updated
