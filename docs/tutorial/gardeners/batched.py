"""Many gardens as arrays, stepped by one call: the env's rules for every garden at once.

It follows :mod:`hmarl.batched_env`: groups ``chooser`` and ``walker`` (a gardener's
two agents, in gardener order), every array ``(B, G, ...)``. Env b reset with seed s
starts exactly as ``GardenEnv.reset(seed=s)``; ``hmarl check`` plays both side by side
and names the first step where they differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .env import chooser, spaces, walker
from .simulation import MOVES, GardenConfig, draw_garden


@dataclass
class Step:
    """What one step did (see :class:`hmarl.batched_env.BatchedStep`)."""

    rewards: dict[str, np.ndarray]
    terminated: dict[str, np.ndarray]
    truncated: dict[str, np.ndarray]
    infos: dict[str, dict[str, np.ndarray]]
    over: np.ndarray


class BatchedGarden:
    """``num_envs`` gardens; a gardener's target is -1 while its chooser is due."""

    def __init__(self, config: GardenConfig, num_envs: int) -> None:
        self.config, self.num_envs = config, num_envs
        B, G, P = num_envs, config.num_gardeners, config.num_plants
        self.groups = {
            "chooser": [chooser(g) for g in range(G)],
            "walker": [walker(g) for g in range(G)],
        }
        level = spaces(config)
        self.observation_spaces = {name: level[name][0] for name in self.groups}
        self.action_spaces = {name: level[name][1] for name in self.groups}
        self.plants = np.zeros((B, P, 2), dtype=np.int64)
        self.dryness = np.zeros((B, P))
        self.gardeners = np.zeros((B, G, 2), dtype=np.int64)
        self.targets = np.full((B, G), -1)
        self.watered = np.zeros((B, G))
        self.steps = np.zeros(B, dtype=np.int64)
        self.walk = np.zeros((B, G, 2), dtype=np.int64)  # the current walk: steps, shortest
        self.finished = np.zeros((B, G, 2), dtype=np.int64)  # finished walks' sums
        self.walked = np.zeros((B, G), dtype=bool)  # walkers seen: they get final observations
        self.over = np.ones(B, dtype=bool)

    def reset(self, seeds: Sequence[int], where: np.ndarray | None = None) -> None:
        """New gardens, each drawn as ``GardenEnv.reset(seed=s)`` draws it."""
        rows = np.arange(self.num_envs) if where is None else np.flatnonzero(where)
        if len(seeds) != len(rows):
            raise ValueError(f"{len(rows)} gardens to reset but {len(seeds)} seeds")
        for b, seed in zip(rows, seeds, strict=True):
            rng = np.random.default_rng(int(seed))  # as gymnasium seeds an env's np_random
            self.plants[b], self.dryness[b], self.gardeners[b] = draw_garden(self.config, rng)
        for array, value in ((self.targets, -1), (self.watered, 0), (self.steps, 0)):
            array[rows] = value
        for array in (self.walk, self.finished, self.walked):
            array[rows] = 0
        self.over[rows] = False

    def due(self, group: str) -> np.ndarray:
        choosing = self.targets < 0
        return (choosing if group == "chooser" else ~choosing) & ~self.over[:, None]

    def observations(self, group: str) -> np.ndarray:
        offsets = (self.plants[:, None] - self.gardeners[:, :, None]) / (self.config.size - 1)
        if group == "chooser":  # (B, G, P, 3): each plant's offset and dryness, flattened
            dryness = np.broadcast_to(self.dryness[:, None, :, None], (*offsets.shape[:3], 1))
            flat = np.concatenate([offsets, dryness], axis=3).reshape(*offsets.shape[:2], -1)
            return flat.astype(np.float32)
        target = np.maximum(self.targets, 0)[:, :, None, None]
        walking = np.take_along_axis(offsets, target, axis=2)[:, :, 0]
        return np.where(self.targets[:, :, None] >= 0, walking, 0.0).astype(np.float32)

    def step(self, actions: dict[str, np.ndarray], where: np.ndarray | None = None) -> Step:
        cfg, (B, G) = self.config, self.targets.shape
        active = ~self.over if where is None else ~self.over & where
        choosing = self.due("chooser") & active[:, None]
        walking = self.due("walker") & active[:, None]
        rewards = {"chooser": np.zeros((B, G)), "walker": np.zeros((B, G))}
        self.walked |= walking

        plant = np.asarray(actions["chooser"]).astype(np.int64) % cfg.num_plants
        shortest = np.abs(np.take_along_axis(self.plants, plant[..., None], 1) - self.gardeners)
        self.targets = np.where(choosing, plant, self.targets)
        self.walk = np.where(choosing[..., None], 0, self.walk)
        self.walk[..., 1] = np.where(
            choosing, np.maximum(shortest.sum(axis=2), 1), self.walk[..., 1]
        )

        moves = MOVES[np.asarray(actions["walker"]).astype(np.int64) % len(MOVES)]
        moved = np.clip(self.gardeners + moves, 0, cfg.size - 1)
        self.gardeners = np.where(walking[..., None], moved, self.gardeners)
        self.walk[..., 0] += walking
        rewards["walker"][walking] = -cfg.step_cost
        envs = np.arange(B)
        for g in range(G):  # in gardener order: the first to reach a plant waters it
            target = np.maximum(self.targets[:, g], 0)
            there = (self.gardeners[:, g] == self.plants[envs, target]).all(axis=1)
            arrived = walking[:, g] & there
            worth = np.where(arrived, self.dryness[envs, target], 0.0)
            self.dryness[envs[arrived], target[arrived]] = 0.0
            rewards["walker"][arrived, g] = 1.0
            rewards["chooser"][:, g] += worth
            self.watered[:, g] += worth
            self.finished[arrived, g] += self.walk[arrived, g]
            self.targets[arrived, g] = -1

        self.dryness[active] = np.minimum(self.dryness[active] + cfg.drying, 1.0)
        self.steps[active] += 1
        ended = active & (self.steps >= cfg.episode_steps)
        self.over |= ended
        walked, finished_shortest = self.finished[..., 0], self.finished[..., 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            directness = np.where(walked > 0, finished_shortest / walked, np.nan)
        return Step(
            rewards=rewards,
            terminated={name: np.zeros((B, G), dtype=bool) for name in self.groups},
            truncated={
                "chooser": np.repeat(ended[:, None], G, axis=1),
                "walker": ended[:, None] & self.walked,
            },
            infos={
                "chooser": {"watered": self.watered.copy()},
                "walker": {"directness": directness},
            },
            over=ended,
        )
