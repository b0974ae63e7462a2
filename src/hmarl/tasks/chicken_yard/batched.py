"""Many chicken yards at once, as NumPy arrays: one step function for the whole batch.

The rules are those of :class:`~hmarl.tasks.chicken_yard.simulation.ChickenYard` and
the rewards, flags and infos those of :class:`~hmarl.tasks.chicken_yard.env.ChickenYardEnv`;
:func:`hmarl.conformance.check_batched_env` holds the two equal step for step on the
same seeds. It follows :mod:`hmarl.batched_env`: groups ``high`` and ``low``, one
agent per robot in each. Each yard keeps its own clock, so yards can be reset one by
one (as training does) or all together (as evaluation does).

Shapes: B yards, R robots, C chickens, O OCEAN features.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np

from hmarl.tasks.chicken_yard.agents import (
    high_action_space,
    high_agent,
    high_observation_space,
    low_action_space,
    low_agent,
    low_observation_space,
)
from hmarl.tasks.chicken_yard.simulation import (
    DIRECTIONS,
    YardConfig,
    compatibility,
    draw_yards,
    has_arrived,
    squared_distances,
)


class YardStep:
    """What one step did (see :class:`hmarl.batched_env.BatchedStep`); arrays are (B, R).

    Rewards and infos are worked out when first read, from the yard's state: read
    them before the next ``step`` or ``reset``. (Evaluating a trained policy reads
    no rewards, and at thousands of yards per step that saves a good share.)
    """

    def __init__(
        self,
        yard: BatchedYard,
        moved: np.ndarray,
        arrived: np.ndarray,
        timed_out: np.ndarray,
        over: np.ndarray,
    ) -> None:
        self._yard = yard
        self._config = yard.config
        self.moved = moved
        """Robots that made a low-level move on this step."""
        self.arrived = arrived
        """Robots that arrived on this step."""
        self.timed_out = timed_out
        """Robots still out when this step reached the time limit."""
        self.over = over
        ended_low = arrived | (timed_out & moved)
        # The time limit is part of the task: it terminates, like an arrival.
        self.terminated = {"high": arrived | timed_out, "low": ended_low}
        self.truncated = {"high": np.zeros_like(arrived), "low": np.zeros_like(arrived)}
        self._chosen = yard._chosen

    @functools.cached_property
    def rewards(self) -> dict[str, np.ndarray]:
        cfg = self._config
        high = np.where(self.arrived, self._chosen, 0.0)
        np.putmask(high, self.timed_out, cfg.timeout_reward)
        low = self.moved * cfg.step_reward
        np.putmask(low, self.arrived, cfg.arrival_reward)
        # A robot that chose on this very step has no low-level history to end.
        np.putmask(low, self.timed_out & self.moved, cfg.timeout_reward)
        return {"high": high, "low": low}

    @functools.cached_property
    def infos(self) -> dict[str, dict[str, np.ndarray]]:
        yard = self._yard
        return {
            "high": {"compatibility": yard.chosen_compatibility(), "arrived": yard.arrived.copy()},
            "low": {"steps": yard.moves.copy(), "arrived": yard.arrived.copy()},
        }


class BatchedYard:
    """B independent yards stepped together (a :class:`hmarl.batched_env.BatchedEnv`).

    A robot is choosing while ``targets`` is -1, moving until ``done``; actions of
    robots not due to act, and of yards whose episode is over, are ignored.
    """

    def __init__(self, config: YardConfig | None = None, num_envs: int = 1) -> None:
        self.config = config or YardConfig()
        self.num_envs = num_envs
        robots = range(1, self.config.num_robots + 1)
        self.groups = {
            "high": [high_agent(i) for i in robots],
            "low": [low_agent(i) for i in robots],
        }
        self.observation_spaces = {
            "high": high_observation_space(self.config),
            "low": low_observation_space(self.config),
        }
        self.action_spaces = {
            "high": high_action_space(self.config),
            "low": low_action_space(self.config),
        }
        # The same products as `move_positions` computes, plus a still row.
        self._step_table = np.vstack([DIRECTIONS * self.config.move_amount, np.zeros(2)])
        cfg = self.config
        b, r, c, o = num_envs, cfg.num_robots, cfg.num_chickens, cfg.num_ocean_features
        self.chicken_positions = np.zeros((b, c, 2))
        """(B, C, 2) chicken x, y."""
        self.chicken_oceans = np.zeros((b, c, o))
        """(B, C, O) chicken personalities."""
        self.robot_oceans = np.zeros((b, r, o))
        """(B, R, O) robot personalities."""
        self.positions = np.zeros((b, r, 2))
        """(B, R, 2) robot x, y now."""
        self.compatibilities = np.zeros((b, r, c))
        """(B, R, C) compatibility of every robot with every chicken."""
        self.targets = np.full((b, r), -1, dtype=np.int64)
        """(B, R) chosen chicken, -1 while choosing."""
        self.done = np.ones((b, r), dtype=bool)
        """(B, R) arrived or out of time."""
        self.arrived = np.zeros((b, r), dtype=bool)
        """(B, R) arrived at the chosen chicken."""
        self.moves = np.zeros((b, r), dtype=np.int64)
        """(B, R) low-level moves made."""
        self.steps = np.zeros(b, dtype=np.int64)
        """(B,) steps since each yard's reset, the choosing step included."""
        self.over = np.ones(b, dtype=bool)
        """(B,) yards whose episode is over (waiting for a reset)."""
        self._choosing = np.zeros((b, r), dtype=bool)
        self._moving = np.zeros((b, r), dtype=bool)
        self._target_positions = np.zeros((b, r, 2))
        self._chosen = np.zeros((b, r))
        # Float32 copies as the env hands them out, so policies see identical inputs.
        self._chicken_oceans32 = np.zeros((b, c, o), dtype=np.float32)
        self._chicken_positions32 = np.zeros((b, c, 2), dtype=np.float32)
        self._robot_oceans32 = np.zeros((b, r, o), dtype=np.float32)

    def reset(self, seeds: Sequence[int], where: np.ndarray | None = None) -> None:
        """New yards, each drawn exactly as ``ChickenYardEnv.reset(seed=s)`` draws it."""
        rows = np.arange(self.num_envs) if where is None else np.flatnonzero(where)
        if len(seeds) != len(rows):
            raise ValueError(f"{len(rows)} yards to reset but {len(seeds)} seeds")
        if not len(rows):
            return
        layout = draw_yards(seeds, self.config)
        self.chicken_positions[rows] = layout.chicken_positions
        self.chicken_oceans[rows] = layout.chicken_oceans
        self.robot_oceans[rows] = layout.robot_oceans
        self.positions[rows] = layout.robot_positions
        self.compatibilities[rows] = compatibility(layout.robot_oceans, layout.chicken_oceans)
        self._chicken_oceans32[rows] = layout.chicken_oceans
        self._chicken_positions32[rows] = layout.chicken_positions
        self._robot_oceans32[rows] = layout.robot_oceans
        for array, value in (
            (self.targets, -1),
            (self.done, False),
            (self.arrived, False),
            (self.moves, 0),
            (self.steps, 0),
            (self.over, False),
            (self._choosing, True),
            (self._moving, False),
            (self._chosen, 0.0),
            (self._target_positions, 0.0),
        ):
            array[rows] = value

    @property
    def all_over(self) -> bool:
        return bool(self.over.all())

    def chosen_compatibility(self) -> np.ndarray:
        """(B, R) compatibility with the chosen chicken (NaN while choosing)."""
        return np.where(self.targets >= 0, self._chosen, np.nan)

    def due(self, group: str) -> np.ndarray:
        """(B, R) robots whose ``group`` agent acts next."""
        return self._choosing if group == "high" else self._moving

    def observations(self, group: str) -> dict[str, np.ndarray]:
        """Observations of every robot's ``group`` agent, each field (B, R, ...)."""
        b, r = self.targets.shape
        if group == "high":
            return {
                "chicken_oceans": np.broadcast_to(
                    self._chicken_oceans32[:, None], (b, r, *self._chicken_oceans32.shape[1:])
                ),
                "chicken_positions": np.broadcast_to(
                    self._chicken_positions32[:, None],
                    (b, r, *self._chicken_positions32.shape[1:]),
                ),
                "robot_ocean": self._robot_oceans32,
                "robot_position": self.positions.astype(np.float32),
            }
        time_left = (1.0 - self.steps / self.config.timeout).astype(np.float32)
        return {
            "robot_position": self.positions.astype(np.float32),
            "target_position": self._target_positions.astype(np.float32),
            "time_left": np.broadcast_to(time_left[:, None, None], (b, r, 1)),
        }

    def step(self, actions: Mapping[str, np.ndarray]) -> YardStep:
        """Advance every yard one step: ``actions["high"]`` and ``actions["low"]`` are (B, R).

        A robot choosing takes its ``high`` action (a chicken), a robot moving its
        ``low`` one (a direction 0..7); the other entries are ignored.
        """
        cfg = self.config
        choosing, moving = self._choosing, self._moving
        high = checked_actions(actions, "high", choosing, cfg.num_chickens)
        low = checked_actions(actions, "low", moving, len(DIRECTIONS))
        if choosing.any():
            self.targets = np.where(choosing, high, self.targets)
            # What a robot's choice fixes is looked up once, not on every move.
            index = self.targets.clip(0)[..., None]
            self._target_positions = np.take_along_axis(self.chicken_positions, index, 1)
            self._chosen = np.take_along_axis(self.compatibilities, index, -1)[..., 0]

        # Row 8 of the step table is "stand still", for robots not moving. In-place
        # arithmetic: at thousands of yards the allocations cost as much as the math.
        still = len(DIRECTIONS)
        # `take` is ten times faster than fancy indexing here.
        step = self._step_table.take(np.where(moving, low, still), axis=0)
        np.add(self.positions, step, out=self.positions)
        np.clip(self.positions, 0.0, 1.0, out=self.positions)
        self.moves += moving
        arrived = has_arrived(squared_distances(self.positions, self._target_positions), cfg)
        arrived &= moving
        self.arrived |= arrived
        self.done |= arrived

        live = ~self.over
        self.steps += live
        limit = live & (self.steps >= cfg.timeout)
        timed_out = limit[:, None] & ~self.done
        self.done |= timed_out
        self._moving = (moving | choosing) & ~self.done
        self._choosing = np.zeros_like(choosing)
        over = live & self.done.all(axis=1)
        self.over |= over
        return YardStep(self, moving, arrived, timed_out, over)


def checked_actions(
    actions: Mapping[str, np.ndarray], group: str, due: np.ndarray, limit: int
) -> np.ndarray:
    """The group's (B, R) actions, refused where a due robot's action is out of range.

    ``limit`` is the size of the group's Discrete action space. Checked before any
    state changes, so a refused step leaves the yards as they were.
    """
    if not due.any():
        return np.zeros(due.shape, dtype=np.int64)
    if group not in actions:
        raise ValueError(f"no {group!r} actions, but {group} agents are due to act")
    values = np.asarray(actions[group])
    if values.shape != due.shape:
        raise ValueError(f"{group} actions must have shape {due.shape}, got {values.shape}")
    if values.dtype.kind not in "iu":
        raise ValueError(f"{group} actions must be integers, got dtype {values.dtype}")
    if values.min() >= 0 and values.max() < limit:
        return values  # in range everywhere, whoever is due
    bad = due & ((values < 0) | (values >= limit))
    if bad.any():
        yard, robot = np.argwhere(bad)[0]
        raise ValueError(
            f"yard {yard}, robot {robot + 1}: {group} action {values[yard, robot]} "
            f"is out of range 0..{limit - 1}"
        )
    return values
