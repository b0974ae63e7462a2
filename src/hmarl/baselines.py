"""Reference policies for both levels: random (the floor) and oracle (the ceiling).

A policy here maps observations to actions at both levels. Observation fields may
carry any leading dimensions: a single agent's observation from
:class:`~hmarl.yard.ChickenYardEnv` gives a scalar action, the (B, R, ...) fields of
:class:`~hmarl.batched.BatchedYard` give a (B, R) array of actions.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from hmarl.simulation import DIRECTIONS, YardConfig, distances, move_positions

Observation = dict[str, np.ndarray]


class Policy(Protocol):
    """Both levels of a robot's behaviour."""

    def high(self, obs: Observation) -> np.ndarray:
        """Chicken indices, shaped like the observations' leading dimensions."""
        ...

    def low(self, obs: Observation) -> np.ndarray:
        """Directions 0..7, shaped like the observations' leading dimensions."""
        ...


class RandomPolicy:
    """Uniform actions at both levels."""

    def __init__(self, config: YardConfig, seed: int | None = None) -> None:
        self.config = config
        self.rng = np.random.default_rng(seed)

    def high(self, obs: Observation) -> np.ndarray:
        return self.rng.integers(self.config.num_chickens, size=obs["robot_position"].shape[:-1])

    def low(self, obs: Observation) -> np.ndarray:
        return self.rng.integers(len(DIRECTIONS), size=obs["robot_position"].shape[:-1])


class OraclePolicy:
    """The most compatible chicken, then the move that ends closest to it."""

    def __init__(self, config: YardConfig) -> None:
        self.config = config

    def high(self, obs: Observation) -> np.ndarray:
        scores = np.einsum("...co,...o->...c", obs["chicken_oceans"], obs["robot_ocean"])
        return scores.argmax(-1)

    def low(self, obs: Observation) -> np.ndarray:
        # Try all eight moves (with the yard's clipping) and keep the best.
        every_move = np.arange(len(DIRECTIONS))
        after = move_positions(
            obs["robot_position"][..., None, :], every_move, self.config.move_amount
        )
        return distances(after, obs["target_position"][..., None, :]).argmin(-1)


def make_baseline(name: str, config: YardConfig, seed: int | None = None) -> Policy:
    """``"random"`` or ``"oracle"``."""
    if name == "random":
        return RandomPolicy(config, seed)
    if name == "oracle":
        return OraclePolicy(config)
    raise ValueError(f"unknown baseline policy {name!r}; choose 'random' or 'oracle'")
