"""Lifts as an RLlib multi-agent environment: a thin adapter over the simulation."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from .simulation import Building, LiftsConfig

DISPATCHER = "dispatcher"
MOTOR = "motor"


def dispatcher(lift: int) -> str:
    return f"lift_{lift + 1}_dispatcher"


def motor(lift: int) -> str:
    return f"lift_{lift + 1}_motor"


class LiftsEnv(MultiAgentEnv):
    """A dispatcher sends each lift to a floor (high level); its motor drives there (low level).

    **Agents.** ``lift_{i}_dispatcher`` and ``lift_{i}_motor`` for i = 1..num_lifts.
    Observations come only for the agents due to act next: that is the hierarchy.

    **Actions.** Dispatcher: ``Discrete(num_floors)``, the floor to go to. Motor:
    ``Discrete(3)``: down, stay, up.

    **Observations** (``Box``, float32). Dispatcher: passengers waiting per floor
    (divided by max_waiting), then the lift's floor (divided by the top floor).
    Motor: the lift's floor, its target floor, and their difference (each divided
    by the top floor).

    **Flow.** ``reset()`` observes every dispatcher. A dispatcher's step sends its
    lift; on the next steps its motor drives, one floor a step, until the lift
    reaches the floor; then the dispatcher decides again.

    **Rewards.** Dispatcher: the passengers collected on arrival, divided by
    max_waiting. Motor: -step_cost for each step on its way, +1 on arrival.

    **Episode end.** After ``episode_steps`` steps every agent is *truncated* (a
    time limit, so values bootstrap) with a final observation. The dispatcher's
    last info holds ``passengers``, all it collected in the episode.

    >>> env = LiftsEnv({"num_floors": 4})
    >>> obs, _ = env.reset(seed=0)
    >>> sorted(obs)
    ['lift_1_dispatcher']
    >>> obs, rewards, *_ = env.step({"lift_1_dispatcher": 3})
    >>> sorted(obs)
    ['lift_1_motor']
    """

    def __init__(self, config: LiftsConfig | dict[str, Any] | None = None) -> None:
        super().__init__()
        if not isinstance(config, LiftsConfig):
            config = LiftsConfig(**dict(config or {}))
        self.config = config
        self.building = Building(config)
        lifts = range(config.num_lifts)
        self.possible_agents = [a for i in lifts for a in (dispatcher(i), motor(i))]
        self.agents = []
        floors = config.num_floors
        high = gym.spaces.Box(0.0, np.inf, shape=(floors + 1,), dtype=np.float32)
        low = gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
        self.observation_spaces = {
            a: high if a.endswith(DISPATCHER) else low for a in self.possible_agents
        }
        self.action_spaces = {
            a: gym.spaces.Discrete(floors if a.endswith(DISPATCHER) else 3)
            for a in self.possible_agents
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        self.building.reset(self.np_random)
        self.agents = [dispatcher(i) for i in range(self.config.num_lifts)]
        self._seen = set(self.agents)
        return {a: self._observe(a) for a in self.agents}, {}

    def step(self, action_dict: dict[str, Any]) -> tuple:
        if set(action_dict) != set(self.agents):
            raise ValueError(f"actions are due from exactly {sorted(self.agents)}")
        rewards: dict[str, float] = {}
        next_agents = []
        for agent, action in action_dict.items():
            lift = int(agent.split("_")[1]) - 1
            if agent.endswith(DISPATCHER):
                self.building.dispatch(lift, int(action))
                next_agents.append(motor(lift))
                continue
            collected = self.building.drive(lift, int(action) - 1)
            if collected is None:
                rewards[agent] = -self.config.step_cost
                next_agents.append(agent)
            else:
                rewards[agent] = 1.0
                rewards[dispatcher(lift)] = collected / self.config.max_waiting
                next_agents.append(dispatcher(lift))
        if self.building.tick(self.np_random):
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
        infos = {
            dispatcher(i): {"passengers": int(self.building.collected[i])}
            for i in range(self.config.num_lifts)
        }
        self.agents = []
        truncateds = dict.fromkeys(ended, True) | {"__all__": True}
        return obs, rewards, {"__all__": False}, truncateds, infos

    def _observe(self, agent: str) -> np.ndarray:
        b, top = self.building, self.config.num_floors - 1
        lift = int(agent.split("_")[1]) - 1
        if agent.endswith(DISPATCHER):
            waiting = b.waiting / self.config.max_waiting
            return np.append(waiting, b.positions[lift] / top).astype(np.float32)
        target = b.targets[lift] if b.targets[lift] is not None else b.positions[lift]
        position = b.positions[lift]
        return np.array([position / top, target / top, (target - position) / top], np.float32)
