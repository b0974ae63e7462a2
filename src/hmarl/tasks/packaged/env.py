"""A package's multi-agent gym env as an RLlib ``MultiAgentEnv``: a thin adapter.

The package's env *is* the simulation; this adapter only renames. Observations and
actions are the package's own, one per agent (``agent_0`` .. in package order), and
every agent acts every step. One thing changes on purpose: both packages report
their time limit as ``terminated`` (``done``) and never as truncated. Running out of
time is not a state of the task, so the adapter reports it as **truncated** (values
bootstrap past it); an episode that ends by the task's own rule (all food collected)
stays terminated. EPyMARL counts the time limit as terminal: the returns compare,
the value targets differ.

Subclasses say which end is the time limit (:meth:`PackageEnv.time_limit_reached`)
and draw frames (:meth:`PackageEnv.make_renderer`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from hmarl.tasks.chicken_yard.env import check_actions
from hmarl.tasks.packaged.agents import agent_ids

AgentDict = dict[str, Any]
"""A per-agent dict keyed by agent id, as RLlib passes them."""


class PackageEnv(MultiAgentEnv):
    """A package's gym env with agents ``agent_0`` .. (see the module docstring).

    ``package`` is the package's unwrapped env. At the end of an episode every agent
    gets an info ``episode_return``: the package's rewards summed over the episode
    and over all agents (the benchmark's score).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(self, package: gym.Env, render_mode: str | None = None) -> None:
        super().__init__()
        self.package = package
        """The package's env (unwrapped): the simulation, stepped as it is."""
        self.render_mode = render_mode
        self.possible_agents = agent_ids(len(package.action_space))
        self.agents = []
        # One space object for all agents (they share one policy), the package's own.
        observation_space, action_space = package.observation_space[0], package.action_space[0]
        self.observation_spaces = dict.fromkeys(self.possible_agents, observation_space)
        self.action_spaces = dict.fromkeys(self.possible_agents, action_space)
        self._due: set[str] = set()
        self._started = False
        self._renderer: Any = None
        self.episode_return = 0.0
        """The package's rewards summed over this episode and over all agents."""

    @property
    def due_agents(self) -> list[str]:
        """The agents that must (and alone may) get actions in the next ``step``."""
        return sorted(self._due)

    def time_limit_reached(self) -> bool:
        """Did the package's episode end (``done``) by its time limit, not by its rules?"""
        raise NotImplementedError

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[AgentDict, AgentDict]:
        observations, _ = self.package.reset(seed=seed)
        self._started = True
        self._due = set(self.possible_agents)
        self.agents = list(self.possible_agents)
        self.episode_return = 0.0
        return dict(zip(self.possible_agents, observations, strict=True)), {}

    def step(
        self, action_dict: AgentDict
    ) -> tuple[AgentDict, AgentDict, AgentDict, AgentDict, AgentDict]:
        check_actions(
            action_dict, self._due, self.action_spaces, self.possible_agents, self._started
        )
        actions = [int(action_dict[agent]) for agent in self.possible_agents]
        observations, rewards, done, truncated, _ = self.package.step(actions)
        rewards = {a: float(r) for a, r in zip(self.possible_agents, rewards, strict=True)}
        self.episode_return += sum(rewards.values())
        obs = dict(zip(self.possible_agents, observations, strict=True))
        terminateds: AgentDict = {"__all__": False}
        truncateds: AgentDict = {"__all__": False}
        infos: AgentDict = {}
        if done or truncated:
            cut = bool(truncated) or self.time_limit_reached()
            flags = truncateds if cut else terminateds
            flags.update(dict.fromkeys(self.possible_agents, True), __all__=True)
            infos = {a: {"episode_return": self.episode_return} for a in self.possible_agents}
            self._due = set()
        return obs, rewards, terminateds, truncateds, infos

    def make_renderer(self) -> Any:
        """An object with ``frame(env) -> (H, W, 3) uint8``; pygame, no display."""
        raise NotImplementedError

    def render(self) -> np.ndarray | None:
        """The env now as an (H, W, 3) uint8 frame (with ``render_mode="rgb_array"``)."""
        if self.render_mode is None:
            return None
        if self.render_mode != "rgb_array":
            raise ValueError(f"render_mode {self.render_mode!r} is not one of {self.metadata}")
        if self._renderer is None:
            self._renderer = self.make_renderer()
        return self._renderer.frame(self)
