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

from hmarl.simulation import YardConfig, compatibility, distances, draw_yard, move_positions


@dataclass
class BatchStep:
    """What one step did, per yard and robot; every field is (B, R)."""

    high_rewards: np.ndarray
    """High-level reward: compatibility on arrival, timeout_reward at the limit, else 0."""
    low_rewards: np.ndarray
    """Low-level reward of the robots that moved or timed out, else 0."""
    arrived: np.ndarray
    """Robots that arrived on this step."""
    truncated: np.ndarray
    """Robots still out when this step reached the time limit."""


class BatchedYard:
    """B independent yards stepped in lockstep.

    All yards reset together, so the step count is shared. A robot is choosing
    while ``targets`` is -1, moving until ``done``; actions for robots that are
    done (and for yards where every robot is done) are ignored.
    """

    def __init__(self, config: YardConfig | None = None) -> None:
        self.config = config or YardConfig()
        self.steps = 0
        """Steps since reset, the choosing step included."""

    def reset(self, seeds: Sequence[int]) -> None:
        """Start one yard per seed, each drawn exactly as ``ChickenYardEnv.reset(seed=s)``."""
        layouts = [draw_yard(np.random.default_rng(int(s)), self.config) for s in seeds]
        self.chicken_positions = np.stack([y.chicken_positions for y in layouts])
        """(B, C, 2) chicken x, y."""
        self.chicken_oceans = np.stack([y.chicken_oceans for y in layouts])
        """(B, C, O) chicken personalities."""
        self.robot_oceans = np.stack([y.robot_oceans for y in layouts])
        """(B, R, O) robot personalities."""
        self.positions = np.stack([y.robot_positions for y in layouts])
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
        chosen = np.take_along_axis(self.compatibilities, self.targets[..., None].clip(0), -1)
        return np.where(self.targets >= 0, chosen[..., 0], np.nan)

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
        target = np.take_along_axis(self._chicken_positions32, self.targets.clip(0)[..., None], 1)
        return {"robot_position": self.positions.astype(np.float32), "target_position": target}

    def step(self, actions: np.ndarray) -> BatchStep:
        """Advance every yard one step.

        ``actions`` is (B, R) int: a chicken index for robots still choosing, a
        direction 0..7 for robots moving.
        """
        cfg = self.config
        actions = np.asarray(actions)
        if actions.shape != self.targets.shape:
            raise ValueError(f"actions must have shape {self.targets.shape}, got {actions.shape}")
        choosing = (self.targets < 0) & ~self.done
        moving = (self.targets >= 0) & ~self.done
        limits = np.where(choosing, cfg.num_chickens, 8)
        bad = (choosing | moving) & ((actions < 0) | (actions >= limits))
        if bad.any():
            yard, robot = np.argwhere(bad)[0]
            raise ValueError(
                f"yard {yard}, robot {robot + 1}: action {actions[yard, robot]} is out of range"
            )

        self.targets = np.where(choosing, actions, self.targets)
        moved = move_positions(self.positions, np.where(moving, actions, 0), cfg.move_amount)
        self.positions = np.where(moving[..., None], moved, self.positions)
        self.moves += moving

        target = np.take_along_axis(self.chicken_positions, self.targets.clip(0)[..., None], 1)
        arrived = moving & (distances(self.positions, target) <= cfg.closeness_threshold)
        high_rewards = np.where(arrived, self.chosen_compatibility(), 0.0)
        low_rewards = np.where(arrived, cfg.arrival_reward, np.where(moving, cfg.step_reward, 0.0))
        self.arrived |= arrived
        self.done |= arrived

        self.steps += 1
        truncated = ~self.done & (self.steps >= cfg.timeout)
        high_rewards = np.where(truncated, cfg.timeout_reward, high_rewards)
        # A robot that chose on this very step has no low-level history to end.
        low_rewards = np.where(truncated & moving, cfg.timeout_reward, low_rewards)
        self.done |= truncated
        return BatchStep(high_rewards, low_rewards, arrived, truncated)
