"""Lifts in a building, as a plain simulation: state and rules, no reinforcement learning.

This is the part to replace with your own system. A lift is sent to a floor (the
dispatcher's decision) and driven there one floor at a time (the motor's); at the
floor it collects the passengers waiting there. Passengers keep arriving at random
floors, so the dispatcher decides again after every arrival.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LiftsConfig:
    """Every constant of the building."""

    num_floors: int = 6
    """Floors, numbered 0 (ground) to num_floors - 1."""
    num_lifts: int = 1
    """Lifts; each has a dispatcher and a motor."""
    max_waiting: int = 5
    """Most passengers waiting on one floor at the start."""
    arrival_chance: float = 0.2
    """Chance per step that a new passenger starts waiting on a random floor."""
    episode_steps: int = 60
    """Steps per episode; the episode is cut off there (a time limit, not a failure)."""
    step_cost: float = 0.01
    """What the motor pays for every step it is on its way."""

    def __post_init__(self) -> None:
        for name in ("num_floors", "num_lifts", "max_waiting", "episode_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
        if self.num_floors < 2:
            raise ValueError(f"num_floors must be at least 2, got {self.num_floors}")
        if not 0.0 <= self.arrival_chance <= 1.0:
            raise ValueError(f"arrival_chance must be in [0, 1], got {self.arrival_chance}")
        if not self.step_cost >= 0.0:
            raise ValueError(f"step_cost must not be negative, got {self.step_cost}")


class Building:
    """The floors, the passengers waiting on them, and the lifts."""

    def __init__(self, config: LiftsConfig) -> None:
        self.config = config
        self.waiting = np.zeros(config.num_floors, dtype=np.int64)
        self.positions = np.zeros(config.num_lifts, dtype=np.int64)
        self.targets: list[int | None] = [None] * config.num_lifts
        self.collected = np.zeros(config.num_lifts, dtype=np.int64)
        self.steps = 0

    def reset(self, rng: np.random.Generator) -> None:
        cfg = self.config
        self.waiting = rng.integers(0, cfg.max_waiting + 1, size=cfg.num_floors)
        self.positions = rng.integers(0, cfg.num_floors, size=cfg.num_lifts)
        self.targets = [None] * cfg.num_lifts
        self.collected = np.zeros(cfg.num_lifts, dtype=np.int64)
        self.steps = 0

    def dispatch(self, lift: int, floor: int) -> None:
        """Send a lift to a floor."""
        self.targets[lift] = floor

    def drive(self, lift: int, direction: int) -> int | None:
        """Move a lift one floor (-1 down, 0 stay, +1 up).

        Returns the passengers it collected if that brought it to its target,
        else None.
        """
        top = self.config.num_floors - 1
        self.positions[lift] = min(max(self.positions[lift] + direction, 0), top)
        if self.positions[lift] != self.targets[lift]:
            return None
        floor = self.positions[lift]
        passengers = int(self.waiting[floor])
        self.waiting[floor] = 0
        self.collected[lift] += passengers
        self.targets[lift] = None
        return passengers

    def tick(self, rng: np.random.Generator) -> bool:
        """One step passes: maybe a passenger arrives. True once the episode is over."""
        if rng.random() < self.config.arrival_chance:
            self.waiting[rng.integers(self.config.num_floors)] += 1
        self.steps += 1
        return self.steps >= self.config.episode_steps
