"""The flat yard as a plain simulation: the chicken yard's world with no high level in it.

The yard, robots, chickens, personalities, moves and arrival distance are those of
:mod:`hmarl.tasks.chicken_yard.simulation`, whose helpers this module reuses rather than
restates. What changes is that no robot chooses a chicken: every robot moves every step,
and a robot that ends a move within reach of a chicken *catches* it (the nearest one,
if several are within reach) and is done. Nothing here knows of agents, observations
or RLlib: :mod:`~hmarl.tasks.goal_yard.env` adapts one yard to RLlib and
:mod:`~hmarl.tasks.goal_yard.batched` many; both step :class:`FlatYards`.

Shapes: B yards, R robots, C chickens, O OCEAN features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmarl.tasks.chicken_yard.simulation import (
    YardConfig,
    YardLayout,
    compatibility,
    has_arrived,
    move_positions,
    squared_distances,
)


@dataclass(frozen=True)
class FlatYardConfig(YardConfig):
    """The chicken yard's settings (:class:`YardConfig`), the time limit counted as it counts it."""

    timeout: int = 1000
    """Steps before the time limit as the chicken yard counts them, its choosing step
    included: the flat yard has no choosing step, so its robots get timeout - 1 moves."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.timeout < 2:
            raise ValueError(
                f"{type(self).__name__}.timeout must be at least 2 (the robots get "
                f"timeout - 1 moves), got {self.timeout}"
            )


def moves_allowed(config: FlatYardConfig) -> int:
    """Moves a robot may make before the time limit."""
    return config.timeout - 1


def catches(positions: np.ndarray, chicken_positions: np.ndarray, config: YardConfig) -> np.ndarray:
    """(..., R) the chicken each robot at (..., R, 2) catches, -1 for none: the nearest of
    the chickens at (..., C, 2), if it is within ``closeness_threshold``."""
    gaps = squared_distances(positions[..., :, None, :], chicken_positions[..., None, :, :])
    nearest = gaps.argmin(-1)
    reach = np.take_along_axis(gaps, nearest[..., None], -1)[..., 0]
    return np.where(has_arrived(reach, config), nearest, -1)


class FlatYards:
    """B flat yards as arrays, stepped together (one yard is B = 1).

    A robot is out until it catches a chicken or the time limit ends its episode;
    then it is ``done`` and stands still. Each yard keeps its own clock.
    """

    def __init__(self, config: FlatYardConfig, num_yards: int = 1) -> None:
        self.config = config
        b, r = num_yards, config.num_robots
        c, o = config.num_chickens, config.num_ocean_features
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
        self.caught = np.full((b, r), -1, dtype=np.int64)
        """(B, R) the chicken each robot caught, -1 for none (yet)."""
        self.done = np.ones((b, r), dtype=bool)
        """(B, R) caught a chicken or out of time."""
        self.moves = np.zeros((b, r), dtype=np.int64)
        """(B, R) moves made."""
        self.steps = np.zeros(b, dtype=np.int64)
        """(B,) steps since each yard's reset."""

    def reset(self, layout: YardLayout, rows: np.ndarray) -> None:
        """Start the ``rows`` yards anew from a layout: one per row, stacked on a leading
        axis (as :func:`~hmarl.tasks.chicken_yard.simulation.draw_yards` makes them), or
        one yard's for them all."""
        self.chicken_positions[rows] = layout.chicken_positions
        self.chicken_oceans[rows] = layout.chicken_oceans
        self.robot_oceans[rows] = layout.robot_oceans
        self.positions[rows] = layout.robot_positions
        self.compatibilities[rows] = compatibility(layout.robot_oceans, layout.chicken_oceans)
        self.caught[rows] = -1
        self.done[rows] = False
        self.moves[rows] = 0
        self.steps[rows] = 0

    def step(self, directions: np.ndarray, ticking: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step of the ``ticking`` (B,) yards, each robot still out moving in its
        direction (B, R); returns (the robots that caught a chicken, the robots the time
        limit stopped), each (B, R)."""
        moving = ticking[:, None] & ~self.done
        directions = np.where(moving, directions, 0)  # the others' directions are not read
        moved = move_positions(self.positions, directions, self.config.move_amount)
        self.positions = np.where(moving[..., None], moved, self.positions)
        caught = np.where(moving, catches(self.positions, self.chicken_positions, self.config), -1)
        caught_now = caught >= 0
        self.caught[caught_now] = caught[caught_now]
        self.moves += moving
        self.done |= caught_now
        self.steps += ticking
        limit = ticking & (self.steps >= moves_allowed(self.config))
        timed_out = limit[:, None] & ~self.done
        self.done |= timed_out
        return caught_now, timed_out

    def caught_compatibility(self) -> np.ndarray:
        """(B, R) each robot's compatibility with the chicken it caught (NaN for none)."""
        chosen = np.take_along_axis(self.compatibilities, self.caught.clip(0)[..., None], -1)
        return np.where(self.caught >= 0, chosen[..., 0], np.nan)

    def time_left(self) -> np.ndarray:
        """(B,) the share of each yard's moves still to come."""
        return 1.0 - self.steps / moves_allowed(self.config)
