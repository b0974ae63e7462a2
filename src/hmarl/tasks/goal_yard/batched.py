"""Many flat yards at once, as NumPy arrays (a :class:`hmarl.batched_env.BatchedEnv`).

The rules are :class:`~hmarl.tasks.goal_yard.simulation.FlatYards`', which the single env
steps too; the rewards, flags and infos are those of
:class:`~hmarl.tasks.goal_yard.env.FlatYardEnv`, and
:func:`hmarl.conformance.check_batched_env` holds the two equal step for step. One group,
``robot``, one agent per robot. ``step(actions, where=...)`` moves only the ``where``
yards: the goal yard pauses the yards whose high levels are choosing.

Shapes: B yards, R robots, C chickens, O OCEAN features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hmarl.tasks.chicken_yard.batched import checked_actions
from hmarl.tasks.chicken_yard.simulation import DIRECTIONS, draw_yards
from hmarl.tasks.goal_yard.agents import POLICY, action_space, observation_space, robot_agent
from hmarl.tasks.goal_yard.simulation import FlatYardConfig, FlatYards


@dataclass
class FlatYardStep:
    """What one step did (see :class:`hmarl.batched_env.BatchedStep`); arrays are (B, R)."""

    rewards: dict[str, np.ndarray]
    terminated: dict[str, np.ndarray]
    truncated: dict[str, np.ndarray]
    infos: dict[str, dict[str, np.ndarray]]
    over: np.ndarray


class BatchedFlatYard:
    """B flat yards stepped together; yards whose episode is over wait for a reset."""

    def __init__(self, config: FlatYardConfig | None = None, num_envs: int = 1) -> None:
        self.config = config or FlatYardConfig()
        self.num_envs = num_envs
        self.groups = {POLICY: [robot_agent(i) for i in range(1, self.config.num_robots + 1)]}
        self.observation_spaces = {POLICY: observation_space(self.config)}
        self.action_spaces = {POLICY: action_space(self.config)}
        self.yards = FlatYards(self.config, num_envs)
        self.over = np.ones(num_envs, dtype=bool)
        """(B,) yards whose episode is over (waiting for a reset)."""
        # Float32 copies as the env hands them out, made once per episode.
        self._chickens32 = {
            "chicken_oceans": self.yards.chicken_oceans.astype(np.float32),
            "chicken_positions": self.yards.chicken_positions.astype(np.float32),
        }
        self._robot_oceans32 = self.yards.robot_oceans.astype(np.float32)

    def reset(self, seeds: Sequence[int], where: np.ndarray | None = None) -> None:
        """New yards, each drawn exactly as ``FlatYardEnv.reset(seed=s)`` draws it."""
        rows = np.arange(self.num_envs) if where is None else np.flatnonzero(where)
        if len(seeds) != len(rows):
            raise ValueError(f"{len(rows)} yards to reset but {len(seeds)} seeds")
        if len(rows):
            self.yards.reset(draw_yards(seeds, self.config), rows)
            self.over[rows] = False
            for name, array in self._chickens32.items():
                array[rows] = getattr(self.yards, name)[rows]
            self._robot_oceans32[rows] = self.yards.robot_oceans[rows]

    def due(self, group: str) -> np.ndarray:
        """(B, R) robots that act next: those still out, in yards still running."""
        return ~self.yards.done & ~self.over[:, None]

    def observations(self, group: str) -> dict[str, np.ndarray]:
        """Every robot's observation, each field (B, R, ...)."""
        b, r = self.yards.done.shape
        chickens = {
            name: np.broadcast_to(array[:, None], (b, r, *array.shape[1:]))
            for name, array in self._chickens32.items()
        }
        time_left = self.yards.time_left().astype(np.float32)
        return {
            **chickens,
            "robot_ocean": self._robot_oceans32,
            "robot_position": self.yards.positions.astype(np.float32),
            "time_left": np.broadcast_to(time_left[:, None, None], (b, r, 1)),
        }

    def step(
        self, actions: Mapping[str, np.ndarray], where: np.ndarray | None = None
    ) -> FlatYardStep:
        """Move every robot still out in the running ``where`` yards (all if None):
        ``actions["robot"]`` (B, R) directions 0..7; the other entries are ignored."""
        ticking = ~self.over
        if where is not None:
            ticking &= np.asarray(where, dtype=bool)
        directions = checked_actions(
            actions, POLICY, ticking[:, None] & ~self.yards.done, len(DIRECTIONS)
        )
        caught, timed_out = self.yards.step(directions, ticking)
        compatibilities = self.yards.caught_compatibility()
        rewards = np.where(caught, compatibilities, 0.0)
        rewards[timed_out] = self.config.timeout_reward
        ended = caught | timed_out
        over = ticking & self.yards.done.all(axis=1)
        self.over |= over
        infos = {
            "compatibility": compatibilities,
            "arrived": caught.copy(),
            "steps": self.yards.moves.copy(),
        }
        return FlatYardStep(
            {POLICY: rewards},
            {POLICY: ended},
            {POLICY: np.zeros_like(ended)},
            {POLICY: infos},
            over,
        )
