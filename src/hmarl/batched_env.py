"""The batched env contract: B copies of a task's env stepped as arrays, one call for all.

A task may declare ``make_batched_env(env_config, num_envs)``. hmarl then evaluates
on it (thousands of episodes a second) and samples from it for training, and
:func:`hmarl.conformance.check_batched_env` holds it equal to the task's env, step
for step, on the same seeds and actions.

Agents come in *groups*: the agents of a group share one policy and one pair of
spaces, and every array of a group is (B, N, ...), with its N agents in the order of
``groups[name]``. Observation arrays follow the group's observation space with two
leading axes (a dict of arrays for a Dict space).

The flow matches the single env's: after ``reset`` and after each ``step``,
``due(group)`` marks the agents that must act next, and ``observations(group)``
holds what they see. An agent that ends on a step (``terminated`` or ``truncated``)
has its final observation in ``observations(group)`` after that step, and its last
info values in ``infos``. An env whose episode is ``over`` waits, ignoring its
actions, until ``reset`` is called for it (``where`` picks the envs to reset), so
the caller reads the final observations first.

A batched env whose task's env has a global state (:mod:`hmarl.global_state`) gives it
too: the same ``state_space`` and ``states()``, every env's state at once (a leading
axis of ``num_envs``), for centralised critics. Observations may carry action masks
(:mod:`hmarl.action_masks`) as the task's env's do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np


class BatchedStep(Protocol):
    """What one ``step`` did, per env and agent; every array is (B, N) or (B,)."""

    rewards: Mapping[str, np.ndarray]
    """Reward of each agent on this step, per group (0 for agents that got none)."""
    terminated: Mapping[str, np.ndarray]
    """Agents whose episode ended on this step for good."""
    truncated: Mapping[str, np.ndarray]
    """Agents cut off on this step by a limit outside the task (values bootstrap)."""
    infos: Mapping[str, Mapping[str, np.ndarray]]
    """Last-info values, per group and key, of the agents that ended on this step."""
    over: np.ndarray
    """(B,) envs whose episode ended on this step."""
    # Optional: ``elapsed``, (B,) whole numbers, the world time the step took in each env
    # (0 for a step in which only high levels chose; see hmarl.task_env). 1s if absent.


class BatchedEnv(Protocol):
    """``num_envs`` copies of a task's env (see the module docstring)."""

    groups: Mapping[str, Sequence[str]]
    """Group name -> the agent ids in it, in array order."""
    observation_spaces: Mapping[str, gym.Space]
    """Group name -> the observation space of one of its agents."""
    action_spaces: Mapping[str, gym.Space]
    """Group name -> the action space of one of its agents."""
    num_envs: int

    def reset(self, seeds: Sequence[int], where: np.ndarray | None = None) -> None:
        """Start new episodes: one seed per env reset, in order (every env if ``where`` is None).

        Env b reset with seed s starts exactly as the task's env after ``reset(seed=s)``.
        """
        ...

    def observations(self, group: str) -> Any: ...

    def due(self, group: str) -> np.ndarray: ...

    def step(
        self, actions: Mapping[str, np.ndarray], where: np.ndarray | None = None
    ) -> BatchedStep:
        """Advance every env one step; ``actions[group]`` is (B, N), read where due.

        With ``where`` (B,) bools, only those envs advance; the others stand still, their
        rewards 0 and their flags false (the goal wrapper, :mod:`hmarl.goals`, pauses
        envs whose high levels are choosing). Envs that never run under it may ignore it.
        """
        ...


def select(obs: Any, mask: np.ndarray) -> Any:
    """The rows of a (B, N, ...) observation structure where ``mask`` (B, N) is true."""
    if isinstance(obs, Mapping):
        return {key: select(value, mask) for key, value in obs.items()}
    return obs[mask]


def agent_groups(env: BatchedEnv) -> dict[str, tuple[str, int]]:
    """Agent id -> (its group, its index in the group's arrays)."""
    return {
        agent: (group, index)
        for group, agents in env.groups.items()
        for index, agent in enumerate(agents)
    }


def world_time(step: Any, num_envs: int) -> np.ndarray:
    """(B,) the world time a batched step took in each env: its ``elapsed``, else 1s."""
    elapsed = getattr(step, "elapsed", None)
    if elapsed is None:
        return np.ones(num_envs, dtype=np.int64)
    return np.asarray(elapsed, dtype=np.int64)
