"""A hierarchy over a flat multi-agent env: goals declared, not coded.

A flat env moves every agent every step. :func:`hierarchical` gives each flat agent two
levels, ``<agent>_high`` and ``<agent>_low``, from a short declaration (:class:`Goals`):

- **the goals** a high level may choose at a decision: at most ``count`` candidates,
  each ``size`` features, read from the agent's flat observation (and, with
  ``reads_state``, from the env's global state: a centralised manager), with an
  availability mask (unavailable goals are masked: :mod:`hmarl.action_masks`);
- **when a goal is done**: ``reached``, optionally ``invalid`` (it disappeared, another
  agent took it), and ``max_steps``, the longest an option may last;
- **the low level's reward**: the flat reward, a ``bonus`` on reaching, and optional
  ``shaping`` toward the goal (or a ``low_reward`` of one's own).

The hierarchical env follows hmarl's rule (observations only for the agents due to act):

============  ==========================================================================
step          what happens
============  ==========================================================================
reset         the flat env resets; every flat agent's high level decides
decision      the high levels due choose goals; the flat env does not move. This step
              takes no world time (``infos["__common__"]["elapsed"] = 0``,
              :mod:`hmarl.task_env`): it discounts no one and counts as no env step.
              Then every live flat agent's low level is due.
world step    every low level due acts; the flat env steps once with their actions.
              Each low level gets its reward; each high level gets its flat agent's
              reward (paid while it waits: SMDP credit discounts each at its own step).
              An option ends when its goal is reached or invalid or it has lasted
              ``max_steps``: that agent's high level is due next (and the other low
              levels wait through the decision step). Otherwise the low levels are due.
flat end      when a flat agent ends (terminated or truncated), both its levels end with
              final observations; the episode is over when the flat env's is.
============  ==========================================================================

**Observations.** High: ``{"observation": {"observation": <flat>, "goals": (count,
size)}, "action_mask": (count,)}``: a masked Discrete(count) choice. Low: ``{"observation":
<flat>, "goal": (size,)}``, with the flat ``action_mask`` beside it when the flat
observation carries one (the low level acts in the flat action space).

**Goal functions** take a batch of flat observations (a leading axis of n agents; a
dict of arrays for a Dict space), so one declaration serves the env and its batched
twin (:class:`hmarl.goal_env.BatchedGoalEnv`, over a task's batched flat env). With
``reads_state``, ``candidates``, ``reached`` and ``invalid`` also take ``state``: the
env's global state (:mod:`hmarl.global_state`) now, one row per agent, for goals an
agent cannot see (where the requested shelves of a warehouse are). The high level
then sees them as its candidates' features: it is a centralised manager, while the
low level sees its flat observation and its goal.

This module imports neither Ray nor torch: a task module declares its goals with it and
stays light; the envs live in :mod:`hmarl.goal_env`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from hmarl.action_masks import MASK_KEY, observation_key
from hmarl.task import Task, TaskError

HIGH, LOW = "_high", "_low"
"""Suffixes of a flat agent's two levels' ids (and of their policies' ids)."""

Obs = Any
"""A batch of flat observations: an array with a leading axis, or a dict of them."""


@dataclass(frozen=True)
class Goals:
    """What each agent's high level may choose, and when a choice is done (see the module)."""

    count: int
    """The most goals a high level chooses among at a decision (its Discrete action)."""
    size: int
    """Features that describe one goal, to the high level and to the low level."""
    candidates: Callable[[Obs], tuple[np.ndarray, np.ndarray]]
    """``candidates(obs) -> (features (n, count, size), available (n, count))`` for n flat
    observations; at least one goal must be available."""
    reached: Callable[[Obs, np.ndarray, np.ndarray], np.ndarray]
    """``reached(obs, goal (n, size), reward (n,)) -> (n,)`` bools, after each world step."""
    invalid: Callable[[Obs, np.ndarray, np.ndarray], np.ndarray] | None = None
    """``invalid(obs, goal, reward) -> (n,)`` bools: the goal no longer makes sense."""
    max_steps: int = 50
    """World steps an option may last before its high level chooses again."""
    bonus: float = 0.0
    """The low level's reward on reaching its goal, on top of the flat reward."""
    shaping: Callable[[Obs, np.ndarray], np.ndarray] | None = None
    """``potential(obs, goal) -> (n,)``: the low level also gets the potential's change
    over each world step (potential-based shaping, e.g. minus the distance to the goal)."""
    low_reward: Callable[[np.ndarray, np.ndarray, Obs, np.ndarray], np.ndarray] | None = None
    """``low_reward(reward, reached, obs, goal) -> (n,)`` in place of flat reward + bonus
    (shaping still adds)."""
    reads_state: bool = False
    """``candidates``, ``reached`` and ``invalid`` also take ``state=``: the env's global
    state now, one row per agent (a leading axis of n; a dict of arrays for a Dict
    space). The flat env must declare one (``state_space`` and ``state()``)."""

    def __post_init__(self) -> None:
        for name in ("count", "size", "max_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TaskError(f"Goals.{name} must be a whole number of at least 1, got {value!r}")
        for name in ("candidates", "reached"):
            if not callable(getattr(self, name)):
                raise TaskError(f"Goals.{name} must be callable")

    def high_observation_space(self, flat: gym.Space) -> gym.spaces.Dict:
        inner = unmasked(flat)
        goals = gym.spaces.Box(-np.inf, np.inf, (self.count, self.size), np.float32)
        return gym.spaces.Dict(
            {
                "observation": gym.spaces.Dict({"observation": inner, "goals": goals}),
                MASK_KEY: gym.spaces.Box(0, 1, (self.count,), np.int8),
            }
        )

    def low_observation_space(self, flat: gym.Space) -> gym.spaces.Dict:
        goal = gym.spaces.Box(-np.inf, np.inf, (self.size,), np.float32)
        spaces = {"observation": unmasked(flat), "goal": goal}
        if observation_key(flat) is not None:
            spaces[MASK_KEY] = flat[MASK_KEY]
        return gym.spaces.Dict(spaces)

    # -- the goal functions on batches, checked ------------------------------------------

    def choices(
        self, obs: Obs, deciding: np.ndarray, state: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(features (n, count, size) float32, available (n, count) int8) for n flat
        observations (and their envs' states, with ``reads_state``), checked: each of the
        ``deciding`` (n,) rows has a goal available (a final observation need not)."""
        features, available = self.candidates(obs, **self._state(state))
        features = np.asarray(features, dtype=np.float32)
        available = np.asarray(available).astype(bool)
        n = len(deciding)
        if features.shape != (n, self.count, self.size) or available.shape != (n, self.count):
            raise TaskError(
                f"Goals.candidates must return features ({n}, {self.count}, {self.size}) "
                f"and available ({n}, {self.count}); got {features.shape} and {available.shape}"
            )
        stuck = deciding & ~available.any(axis=1)
        if stuck.any():
            raise TaskError(
                f"Goals.candidates made no goal available to a high level that must choose "
                f"(row {int(np.flatnonzero(stuck)[0])} of {n})"
            )
        return features, available.astype(np.int8)

    def done(
        self, obs: Obs, goal: np.ndarray, reward: np.ndarray, steps: np.ndarray, state: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(reached, over) for n agents inside options: over when reached, invalid or long."""
        extra = self._state(state)
        reached = np.asarray(self.reached(obs, goal, reward, **extra), dtype=bool)
        reached = reached.reshape(len(goal))
        over = reached | (steps >= self.max_steps)
        if self.invalid is not None:
            invalid = np.asarray(self.invalid(obs, goal, reward, **extra), dtype=bool)
            over |= invalid.reshape(len(goal))
        return reached, over

    def _state(self, state: Any) -> dict[str, Any]:
        """The goal functions' ``state`` argument: given only when they read it."""
        return {"state": state} if self.reads_state else {}

    def low_rewards(
        self, reward: np.ndarray, reached: np.ndarray, before: Obs, after: Obs, goal: np.ndarray
    ) -> np.ndarray:
        """The low levels' rewards for one world step of n agents."""
        if self.low_reward is not None:
            paid = np.asarray(self.low_reward(reward, reached, after, goal), dtype=np.float64)
        else:
            paid = reward + self.bonus * reached
        if self.shaping is not None:
            paid = (
                paid
                + np.asarray(self.shaping(after, goal))
                - np.asarray(self.shaping(before, goal))
            )
        return np.asarray(paid, dtype=np.float64).reshape(len(goal))


def unmasked(flat: gym.Space) -> gym.Space:
    """A flat observation space without its action mask (the low level keeps the mask)."""
    key = observation_key(flat)
    return flat if key is None else flat[key]


def high_id(agent: str) -> str:
    return f"{agent}{HIGH}"


def low_id(agent: str) -> str:
    return f"{agent}{LOW}"


def flat_id(agent: str) -> str:
    """The flat agent a level's id belongs to."""
    return agent.removesuffix(HIGH) if agent.endswith(HIGH) else agent.removesuffix(LOW)


def hierarchical(flat: Task, goals: Goals | Callable[[Any], Goals], **fields: Any) -> Task:
    """A task whose env is ``flat``'s with a high and a low level per agent (see the module).

    ``goals`` is a :class:`Goals`, or a function of the task's config (its ``config``
    dataclass, or the plain dict) returning one, for goals that depend on the settings.
    The levels' policies are the flat agent's, suffixed ``_high`` and ``_low``. The task
    keeps the flat task's config (its settings and flags) and, when the flat task has a
    batched env, gets :class:`~hmarl.goal_env.BatchedGoalEnv` over it. ``fields`` are any
    other :class:`~hmarl.task.Task` fields (``name`` defaults to ``<flat>_hierarchical``;
    ``metrics``, ``baselines``, ``modules``, ``ppo``, ``score``, ...).
    """

    def goals_for(env_config: dict[str, Any]) -> Goals:
        return goals if isinstance(goals, Goals) else goals(flat.env_config(env_config))

    def make_env(env_config: dict[str, Any]) -> Any:
        from hmarl.goal_env import GoalEnv
        from hmarl.task_env import make_task_env

        return GoalEnv(make_task_env(flat, env_config), goals_for(env_config))

    def policy_of(agent: str) -> str:
        suffix = HIGH if agent.endswith(HIGH) else LOW
        return flat.policy_id(flat_id(agent)) + suffix

    def make_batched_env(env_config: dict[str, Any], num_envs: int) -> Any:
        from hmarl.goal_env import BatchedGoalEnv

        flat_env = flat.make_batched_env(env_config, num_envs)
        return BatchedGoalEnv(flat_env, goals_for(env_config))

    defaults = {
        "name": f"{flat.name}_hierarchical",
        "description": f"{flat.name} with a high and a low level per agent",
        "config": flat.config,
        "make_batched_env": make_batched_env if flat.make_batched_env is not None else None,
    }
    return Task(make_env=make_env, policy_of=policy_of, **{**defaults, **fields})
