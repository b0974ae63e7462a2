"""Many chicken yards at once, as NumPy arrays: one step function for the whole batch.

The rules are those of :class:`hmarl.simulation.ChickenYard` and the rewards those
of :class:`hmarl.yard.ChickenYardEnv`; a test holds the three equal step for step
on the same seeds. Used for fast evaluation and benchmarks.

Shapes: B yards, R robots, C chickens, O OCEAN features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hmarl.simulation import (
    DIRECTIONS,
    YardConfig,
    compatibility,
    draw_yards,
    has_arrived,
    squared_distances,
)


@dataclass(frozen=True)
class BatchStep:
    """What one step did, per yard and robot; every array is (B, R).

    Rewards are worked out only when read: evaluation never reads them, and at
    thousands of yards per step that saves a good share of the step.
    """

    moved: np.ndarray
    """Robots that made a low-level move on this step."""
    arrived: np.ndarray
    """Robots that arrived on this step."""
    truncated: np.ndarray
    """Robots still out when this step reached the time limit."""
    chosen_compatibility: np.ndarray
    """Compatibility of each robot with the chicken it chose."""
    config: YardConfig

    @property
    def high_rewards(self) -> np.ndarray:
        """Compatibility on arrival, timeout_reward at the time limit, else 0."""
        rewards = np.where(self.arrived, self.chosen_compatibility, 0.0)
        np.putmask(rewards, self.truncated, self.config.timeout_reward)
        return rewards

    @property
    def low_rewards(self) -> np.ndarray:
        """step_reward per move, arrival_reward on arrival, timeout_reward at the limit."""
        rewards = self.moved * self.config.step_reward
        np.putmask(rewards, self.arrived, self.config.arrival_reward)
        # A robot that chose on this very step has no low-level history to end.
        np.putmask(rewards, self.truncated & self.moved, self.config.timeout_reward)
        return rewards


class BatchedYard:
    """B independent yards stepped in lockstep.

    All yards reset together, so the step count is shared. A robot is choosing
    while ``targets`` is -1, moving until ``done``; actions for robots that are
    done (and for yards where every robot is done) are ignored.
    """

    def __init__(self, config: YardConfig | None = None) -> None:
        self.config = config or YardConfig()
        # The same products as `move_positions` computes, plus a still row.
        self._step_table = np.vstack([DIRECTIONS * self.config.move_amount, np.zeros(2)])
        self.steps = 0
        """Steps since reset, the choosing step included."""

    def reset(self, seeds: Sequence[int]) -> None:
        """Start one yard per seed, each drawn exactly as ``ChickenYardEnv.reset(seed=s)``."""
        layout = draw_yards(seeds, self.config)
        self.chicken_positions = layout.chicken_positions
        """(B, C, 2) chicken x, y."""
        self.chicken_oceans = layout.chicken_oceans
        """(B, C, O) chicken personalities."""
        self.robot_oceans = layout.robot_oceans
        """(B, R, O) robot personalities."""
        self.positions = layout.robot_positions.copy()
        """(B, R, 2) robot x, y now."""
        self.compatibilities = compatibility(self.robot_oceans, self.chicken_oceans)
        """(B, R, C) compatibility of every robot with every chicken."""
        b, r = self.positions.shape[:2]
        self.targets = np.full((b, r), -1, dtype=np.int64)
        """(B, R) chosen chicken, -1 while choosing."""
        self.done = np.zeros((b, r), dtype=bool)
        """(B, R) arrived or timed out."""
        self.arrived = np.zeros((b, r), dtype=bool)
        """(B, R) arrived at the chosen chicken."""
        self.moves = np.zeros((b, r), dtype=np.int64)
        """(B, R) low-level moves made."""
        self.steps = 0
        self._choosing = np.ones((b, r), dtype=bool)
        self._moving = np.zeros((b, r), dtype=bool)
        self._target_positions = np.zeros_like(self.positions)
        self._chosen = np.zeros((b, r))
        # Float32 views as the env hands them out, so policies see identical inputs.
        self._chicken_oceans32 = self.chicken_oceans.astype(np.float32)
        self._chicken_positions32 = self.chicken_positions.astype(np.float32)
        self._robot_oceans32 = self.robot_oceans.astype(np.float32)

    @property
    def num_yards(self) -> int:
        return self.positions.shape[0]

    @property
    def all_done(self) -> bool:
        return bool(self.done.all())

    def chosen_compatibility(self) -> np.ndarray:
        """(B, R) compatibility with the chosen chicken (NaN while choosing)."""
        return np.where(self.targets >= 0, self._chosen, np.nan)

    def high_observations(self) -> dict[str, np.ndarray]:
        """High-level observations of every robot, each field (B, R, ...)."""
        b, r = self.targets.shape
        return {
            "chicken_oceans": np.broadcast_to(
                self._chicken_oceans32[:, None], (b, r, *self._chicken_oceans32.shape[1:])
            ),
            "chicken_positions": np.broadcast_to(
                self._chicken_positions32[:, None], (b, r, *self._chicken_positions32.shape[1:])
            ),
            "robot_ocean": self._robot_oceans32,
            "robot_position": self.positions.astype(np.float32),
        }

    def low_observations(self) -> dict[str, np.ndarray]:
        """Low-level observations of every robot, each field (B, R, 2); meaningful once chosen."""
        return {
            "robot_position": self.positions.astype(np.float32),
            "target_position": self._target_positions.astype(np.float32),
        }

    def step(self, actions: np.ndarray) -> BatchStep:
        """Advance every yard one step.

        ``actions`` is (B, R) int: a chicken index for robots still choosing, a
        direction 0..7 for robots moving.
        """
        cfg = self.config
        actions = np.asarray(actions)
        self._check(actions)
        choosing, moving = self._choosing, self._moving
        if choosing.any():
            self.targets = np.where(choosing, actions, self.targets)
            # What a robot's choice fixes is looked up once, not on every move.
            index = self.targets.clip(0)[..., None]
            self._target_positions = np.take_along_axis(self.chicken_positions, index, 1)
            self._chosen = np.take_along_axis(self.compatibilities, index, -1)[..., 0]

        # Row 8 of the step table is "stand still", for robots not moving. In-place
        # arithmetic: at thousands of yards the allocations cost as much as the math.
        still = len(DIRECTIONS)
        # `take` is ten times faster than fancy indexing here.
        step = self._step_table.take(np.where(moving, actions, still), axis=0)
        np.add(self.positions, step, out=self.positions)
        np.clip(self.positions, 0.0, 1.0, out=self.positions)
        self.moves += moving
        arrived = has_arrived(squared_distances(self.positions, self._target_positions), cfg)
        arrived &= moving
        self.arrived |= arrived
        self.done |= arrived

        self.steps += 1
        truncated = np.zeros_like(self.done)
        if self.steps >= cfg.timeout:
            truncated = ~self.done
            self.done |= truncated
        self._moving = (moving | choosing) & ~self.done
        self._choosing = np.zeros_like(choosing)
        return BatchStep(moving, arrived, truncated, self._chosen, cfg)

    def _check(self, actions: np.ndarray) -> None:
        if actions.shape != self.targets.shape:
            raise ValueError(f"actions must have shape {self.targets.shape}, got {actions.shape}")
        if actions.dtype.kind not in "iu":
            raise ValueError(f"actions must be integers, got dtype {actions.dtype}")
        if actions.min() >= 0 and actions.max() < min(len(DIRECTIONS), self.config.num_chickens):
            return  # in range for every robot, whatever it is doing
        limits = np.where(self._choosing, self.config.num_chickens, len(DIRECTIONS))
        bad = (self._choosing | self._moving) & ((actions < 0) | (actions >= limits))
        if bad.any():
            yard, robot = np.argwhere(bad)[0]
            raise ValueError(
                f"yard {yard}, robot {robot + 1}: action {actions[yard, robot]} is out of range"
            )
