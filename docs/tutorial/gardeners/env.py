"""The garden as an RLlib multi-agent environment: a thin adapter over the simulation."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from .simulation import MOVES, Garden, GardenConfig


def chooser(gardener: int) -> str:
    return f"gardener_{gardener + 1}_chooser"


def walker(gardener: int) -> str:
    return f"gardener_{gardener + 1}_walker"


def gardener_of(agent: str) -> int:
    return int(agent.split("_")[1]) - 1


def spaces(config: GardenConfig) -> dict[str, tuple[gym.Space, gym.Space]]:
    """Each level's observation and action space: ``{"chooser": (obs, action), ...}``."""
    return {
        "chooser": (
            gym.spaces.Box(-1.0, 1.0, shape=(config.num_plants * 3,), dtype=np.float32),
            gym.spaces.Discrete(config.num_plants),
        ),
        "walker": (
            gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
            gym.spaces.Discrete(len(MOVES)),
        ),
    }


class GardenEnv(MultiAgentEnv):
    """A chooser picks each gardener's plant (high level); its walker walks there (low level).

    **Agents.** ``gardener_{i}_chooser`` and ``gardener_{i}_walker`` for i = 1..num_gardeners.
    Observations come only for the agents due to act next: that is the hierarchy.

    **Actions.** Chooser: ``Discrete(num_plants)``, the plant to water. Walker:
    ``Discrete(5)``: north, east, south, west, stay.

    **Observations** (``Box``, float32). Chooser: for each plant, its offset from the
    gardener (dx, dy, divided by size - 1) and its dryness. Walker: the offset of its
    plant.

    **Flow.** ``reset()`` observes every chooser. A chooser's step sends its gardener
    (who does not move on that step); on the next steps its walker moves, one cell a
    step, until it stands on the plant and waters it; then the chooser decides again.

    **Rewards.** Chooser: the dryness of the plant it watered, when it is watered.
    Walker: -step_cost for each step that does not arrive, +1 on arrival.

    **Episode end.** After ``episode_steps`` steps every agent is *truncated* (a time
    limit, so values bootstrap) with a final observation. The chooser's last info holds
    ``watered``, all its gardener watered in the episode; the walker's ``directness``,
    the shortest paths' steps over the steps its finished walks took (1: no detour).

    >>> env = GardenEnv({"num_gardeners": 1})
    >>> obs, _ = env.reset(seed=0)
    >>> sorted(obs)
    ['gardener_1_chooser']
    >>> obs, rewards, *_ = env.step({"gardener_1_chooser": 0})
    >>> sorted(obs)
    ['gardener_1_walker']
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(self, config: GardenConfig | dict[str, Any] | None = None) -> None:
        super().__init__()
        if not isinstance(config, GardenConfig):
            config = GardenConfig(**dict(config or {}))
        self.config = config
        self.garden = Garden(config)
        self.render_mode: str | None = None
        gardeners = range(config.num_gardeners)
        self.possible_agents = [a for g in gardeners for a in (chooser(g), walker(g))]
        self.agents = []
        level = spaces(config)
        self.observation_spaces = {a: level[a.rsplit("_", 1)[1]][0] for a in self.possible_agents}
        self.action_spaces = {a: level[a.rsplit("_", 1)[1]][1] for a in self.possible_agents}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        self.garden.reset(self.np_random)
        self.agents = [chooser(g) for g in range(self.config.num_gardeners)]
        self._seen = set(self.agents)
        # Per gardener: the current walk's steps and its shortest path; finished walks' sums.
        self._walk = np.zeros((self.config.num_gardeners, 2), dtype=np.int64)
        self._finished = np.zeros((self.config.num_gardeners, 2), dtype=np.int64)
        return {a: self._observe(a) for a in self.agents}, {}

    def step(self, action_dict: dict[str, Any]) -> tuple:
        if set(action_dict) != set(self.agents):
            raise ValueError(f"actions are due from exactly {sorted(self.agents)}")
        rewards: dict[str, float] = {}
        next_agents = []
        for agent, action in action_dict.items():
            g = gardener_of(agent)
            if agent.endswith("chooser"):
                self.garden.choose(g, int(action))
                offset = self.garden.plants[int(action)] - self.garden.gardeners[g]
                self._walk[g] = (0, max(int(np.abs(offset).sum()), 1))  # staying takes a step
                next_agents.append(walker(g))
                continue
            self._walk[g, 0] += 1
            worth = self.garden.walk(g, int(action))
            if worth is None:
                rewards[agent] = -self.config.step_cost
                next_agents.append(agent)
            else:
                rewards[agent] = 1.0
                rewards[chooser(g)] = worth
                self._finished[g] += self._walk[g]
                next_agents.append(chooser(g))
        if self.garden.tick():
            return self._end(rewards)
        self.agents = next_agents
        self._seen.update(next_agents)
        obs = {a: self._observe(a) for a in self.agents}
        return obs, rewards, {"__all__": False}, {"__all__": False}, {}

    def _end(self, rewards: dict[str, float]) -> tuple:
        """The time limit: every agent that has observed gets a final observation."""
        ended = [a for a in self.possible_agents if a in self._seen]
        obs = {a: self._observe(a) for a in ended}
        rewards = dict.fromkeys(ended, 0.0) | rewards  # RLlib wants one for every observer
        infos: dict[str, dict] = {}
        for g in range(self.config.num_gardeners):
            infos[chooser(g)] = {"watered": float(self.garden.watered[g])}
            walked, shortest = self._finished[g]
            if walked:  # a walker that never arrived has no directness to report
                infos[walker(g)] = {"directness": float(shortest / walked)}
        self.agents = []
        truncateds = dict.fromkeys(ended, True) | {"__all__": True}
        return obs, rewards, {"__all__": False}, truncateds, infos

    def _observe(self, agent: str) -> np.ndarray:
        garden, g = self.garden, gardener_of(agent)
        scale = self.config.size - 1
        offsets = (garden.plants - garden.gardeners[g]) / scale
        if agent.endswith("chooser"):
            return np.column_stack([offsets, garden.dryness]).ravel().astype(np.float32)
        target = garden.targets[g]
        return (offsets[target] if target is not None else np.zeros(2)).astype(np.float32)

    def render(self) -> np.ndarray | None:
        """A frame: plants green when wet, brown when dry; gardeners blue; 32 pixels a cell."""
        if self.render_mode != "rgb_array":
            return None
        cell, size = 32, self.config.size
        frame = np.full((size * cell, size * cell, 3), 235, dtype=np.uint8)
        wet, dry = np.array([40, 160, 40]), np.array([150, 100, 40])
        for (x, y), dryness in zip(self.garden.plants, self.garden.dryness, strict=True):
            colour = (1 - dryness) * wet + dryness * dry
            frame[y * cell + 4 : (y + 1) * cell - 4, x * cell + 4 : (x + 1) * cell - 4] = colour
        for x, y in self.garden.gardeners:
            frame[y * cell + 10 : (y + 1) * cell - 10, x * cell + 10 : (x + 1) * cell - 10] = (
                40,
                80,
                220,
            )
        return frame
