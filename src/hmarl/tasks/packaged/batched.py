"""What the batched benchmark envs share: resets through the package, episode bookkeeping.

A batched re-implementation (:class:`PackageBatchedEnv`) holds B copies of a package's
env as arrays and steps them in one call, following :mod:`hmarl.batched_env` with one
group, ``agents``, whose agents are all due every step until the episode ends.

**Resets run the package's own code.** Env b reset with seed s must start exactly as
the package's env after ``reset(seed=s)``, and a package's reset is a stream of
draws from its generator with rejection loops between them. So each reset runs that
code on one helper instance of the package's env and copies the state it drew into
row b (:meth:`PackageBatchedEnv.load`). Resets happen once an episode, so this costs
little; the steps, thousands of times more frequent, are NumPy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from hmarl.tasks.chicken_yard.batched import checked_actions
from hmarl.tasks.packaged.agents import GROUP, agent_ids


@dataclass
class PackageStep:
    """What one step did (see :class:`hmarl.batched_env.BatchedStep`); arrays are (B, N)."""

    rewards: dict[str, np.ndarray]
    terminated: dict[str, np.ndarray]
    truncated: dict[str, np.ndarray]
    infos: dict[str, dict[str, np.ndarray]]
    over: np.ndarray


class PackageBatchedEnv:
    """B copies of a package's env (a :class:`hmarl.batched_env.BatchedEnv`).

    Subclasses implement :meth:`load` (copy a freshly reset package env into a row),
    :meth:`advance` (one step of every live env) and :meth:`observe` (every agent's
    observation, as the package computes it). Actions of envs whose episode is over
    are ignored until they are reset.
    """

    def __init__(self, package: gym.Env, num_envs: int) -> None:
        self.package = package
        """A helper instance of the package's env: resets run on it."""
        self.num_envs = num_envs
        n = len(package.action_space)
        self.num_agents = n
        self.groups = {GROUP: agent_ids(n)}
        self.observation_spaces = {GROUP: package.observation_space[0]}
        self.action_spaces = {GROUP: package.action_space[0]}
        self.steps = np.zeros(num_envs, dtype=np.int64)
        """(B,) steps since each env's reset."""
        self.over = np.ones(num_envs, dtype=bool)
        """(B,) envs whose episode is over (waiting for a reset)."""
        self.episode_return = np.zeros(num_envs)
        """(B,) the package's rewards summed over the episode and over all agents."""
        self._obs = np.zeros((num_envs, n, *self.observation_spaces[GROUP].shape), np.float32)
        self._due = np.zeros((num_envs, n), dtype=bool)

    # -- what a package's re-implementation provides -----------------------------------

    def load(self, row: int, seed: int) -> None:
        """Reset the helper env with ``seed`` (through the package's code) into ``row``."""
        raise NotImplementedError

    def load_state(self, row: int, env: gym.Env) -> None:
        """Copy a package env's state (its clock included) into ``row``."""
        raise NotImplementedError

    def advance(
        self, actions: np.ndarray, live: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step of the ``live`` envs: their (B, N) rewards, and (B,) flags: the
        episode ended by the package's rules, and by its time limit."""
        raise NotImplementedError

    def observe(self) -> np.ndarray:
        """Every agent's observation now, (B, N, ...) float32."""
        raise NotImplementedError

    # -- the batched env API ----------------------------------------------------------

    def reset(self, seeds: Sequence[int], where: np.ndarray | None = None) -> None:
        """Start new episodes: env b with seed s as the package's env after ``reset(seed=s)``."""
        rows = np.arange(self.num_envs) if where is None else np.flatnonzero(where)
        if len(seeds) != len(rows):
            raise ValueError(f"{len(rows)} envs to reset but {len(seeds)} seeds")
        for row, seed in zip(rows, seeds, strict=True):
            self.load(int(row), int(seed))
        self.over[rows] = False
        self.episode_return[rows] = 0.0
        self._due[rows] = True
        self._obs = self.observe()

    def adopt(self, row: int, env: gym.Env) -> None:
        """Take over a package env's episode as it stands (the lockstep tests' start)."""
        self.load_state(row, env)
        self.over[row] = False
        self.episode_return[row] = 0.0
        self._due[row] = True
        self._obs = self.observe()

    def due(self, group: str) -> np.ndarray:
        """(B, N): every agent of an env whose episode is running."""
        return self._due

    def observations(self, group: str) -> np.ndarray:
        """(B, N, ...) what each agent observes (the final observation once over)."""
        return self._obs

    def step(
        self, actions: Mapping[str, np.ndarray], where: np.ndarray | None = None
    ) -> PackageStep:
        """Advance every running env one step; ``actions["agents"]`` is (B, N).

        With ``where`` (B,) bools only those envs advance: the others stand still (their
        clocks too), their actions unread, their rewards 0 and their flags false.
        """
        live = ~self.over if where is None else ~self.over & np.asarray(where, dtype=bool)
        read = self._due & live[:, None]
        chosen = checked_actions(actions, GROUP, read, int(self.action_spaces[GROUP].n))
        chosen = np.where(read, chosen, 0)  # the actions of envs that do not move are not read
        rewards, ended, time_limit = self.advance(chosen, live)
        self.steps += live
        # Summed agent by agent, in package order, as the env adapter sums them.
        for i in range(self.num_agents):
            self.episode_return += rewards[:, i]
        over = live & (ended | time_limit)
        self.over |= over
        self._due = np.repeat(~self.over[:, None], self.num_agents, axis=1)
        self._obs = self.observe()
        # An episode that ends by the package's rules terminates; the time limit truncates.
        terminated = np.repeat((over & ended)[:, None], self.num_agents, axis=1)
        truncated = np.repeat((over & ~ended)[:, None], self.num_agents, axis=1)
        returns = np.repeat(self.episode_return[:, None], self.num_agents, axis=1)
        return PackageStep(
            rewards={GROUP: rewards},
            terminated={GROUP: terminated},
            truncated={GROUP: truncated},
            infos={GROUP: {"episode_return": returns}},
            over=over,
        )
