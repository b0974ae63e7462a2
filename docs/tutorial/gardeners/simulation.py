"""A garden, as a plain simulation: state and rules, no reinforcement learning.

Plants stand on a square grid and dry out a little every step. Each gardener
chooses a plant (a decision) and walks to it one cell a step (many small ones);
arriving, it waters the plant: the plant's dryness is what the watering was worth,
and the plant is wet again. Nothing here knows of RLlib: it is the system you would
have before any learning.

>>> garden = Garden(GardenConfig(num_gardeners=1))
>>> garden.reset(np.random.default_rng(0))
>>> garden.gardeners[0].tolist(), garden.plants[2].tolist()  # cells as (x, y)
([5, 0], [0, 0])
>>> garden.choose(0, plant=2)
>>> garden.walk(0, STAY) is None  # not there yet
True
>>> [garden.walk(0, WEST) for _ in range(5)]  # five cells west: there, and it waters
[None, None, None, None, 0.8158535541215322]
>>> garden.dryness[2], garden.watered[0]
(np.float64(0.0), np.float64(0.8158535541215322))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The walker's moves, as (dx, dy) on the grid (y grows downward).
MOVES = np.array([(0, -1), (1, 0), (0, 1), (-1, 0), (0, 0)])
NORTH, EAST, SOUTH, WEST, STAY = range(len(MOVES))


@dataclass(frozen=True)
class GardenConfig:
    """Every constant of the garden; each field is a flag of `hmarl train` and friends."""

    size: int = 7
    """Cells along each side of the square grid."""
    num_plants: int = 8
    """Plants, each on its own cell, fixed for the episode."""
    num_gardeners: int = 2
    """Gardeners; each has a chooser (high level) and a walker (low level)."""
    drying: float = 0.05
    """How much drier every plant gets each step (dryness is capped at 1)."""
    episode_steps: int = 40
    """Steps per episode; the episode is cut off there (a time limit, not a failure)."""
    step_cost: float = 0.05
    """What the walker pays for each step that does not arrive."""

    def __post_init__(self) -> None:
        for name in ("size", "num_plants", "num_gardeners", "episode_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
        if self.size < 2 or self.num_plants > self.size * self.size:
            raise ValueError(
                f"num_plants must fit on the grid: {self.num_plants} plants, size {self.size}"
            )
        if not 0.0 <= self.drying <= 1.0:
            raise ValueError(f"drying must be in [0, 1], got {self.drying}")
        if not self.step_cost >= 0.0:
            raise ValueError(f"step_cost must not be negative, got {self.step_cost}")


def draw_garden(
    config: GardenConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A new garden's plants (P, 2), their dryness (P,) and the gardeners' cells (G, 2)."""
    cells = rng.choice(config.size * config.size, size=config.num_plants, replace=False)
    plants = np.stack([cells % config.size, cells // config.size], axis=1)
    dryness = rng.random(config.num_plants)
    gardeners = rng.integers(0, config.size, size=(config.num_gardeners, 2))
    return plants, dryness, gardeners


class Garden:
    """The plants, their dryness, and the gardeners with the plant each is heading for."""

    def __init__(self, config: GardenConfig) -> None:
        self.config = config
        self.plants = np.zeros((config.num_plants, 2), dtype=np.int64)
        self.dryness = np.zeros(config.num_plants)
        self.gardeners = np.zeros((config.num_gardeners, 2), dtype=np.int64)
        self.targets: list[int | None] = [None] * config.num_gardeners
        self.watered = np.zeros(config.num_gardeners)
        self.steps = 0

    def reset(self, rng: np.random.Generator) -> None:
        self.plants, self.dryness, self.gardeners = draw_garden(self.config, rng)
        self.targets = [None] * self.config.num_gardeners
        self.watered = np.zeros(self.config.num_gardeners)
        self.steps = 0

    def choose(self, gardener: int, plant: int) -> None:
        """Send a gardener to a plant."""
        self.targets[gardener] = plant

    def walk(self, gardener: int, move: int) -> float | None:
        """Move a gardener one cell (or stay); at its plant, water it.

        Returns what the watering was worth (the plant's dryness) if the gardener
        stands on its plant after the move, else None.
        """
        target = self.targets[gardener]
        position = np.clip(self.gardeners[gardener] + MOVES[move], 0, self.config.size - 1)
        self.gardeners[gardener] = position
        if target is None or not np.array_equal(position, self.plants[target]):
            return None
        worth = float(self.dryness[target])
        self.dryness[target] = 0.0
        self.watered[gardener] += worth
        self.targets[gardener] = None
        return worth

    def tick(self) -> bool:
        """One step passes: every plant dries a little. True once the episode is over."""
        self.dryness = np.minimum(self.dryness + self.config.drying, 1.0)
        self.steps += 1
        return self.steps >= self.config.episode_steps
