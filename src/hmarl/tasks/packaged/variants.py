"""Flat or hierarchical by a setting: one task, its variant chosen by ``hierarchy``.

A benchmark task keeps its name and its env id whichever way it is trained; its config's
``hierarchy`` field chooses:

- ``"flat"``: the package's env as it is, every agent acting every step for
  ``shared_policy`` (IPPO; MAPPO with ``--critic central``);
- ``"goals"``: the hierarchy the task declares (:class:`hmarl.goals.Goals`), built by
  :func:`hmarl.goals.hierarchical` over the same env: ``agent_i_high`` chooses goals for
  ``shared_policy_high``, ``agent_i_low`` reaches them for ``shared_policy_low``.

The task's ``return`` metric reads the flat agents, or the high levels, which are paid
exactly the flat agents' rewards: each flat agent's return counts once, never once per
level.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

from hmarl.goals import HIGH, LOW, Goals, hierarchical
from hmarl.task import Metric, Task
from hmarl.tasks.packaged.agents import SHARED_POLICY

Hierarchy = Literal["flat", "goals"]
HIERARCHIES: tuple[Hierarchy, ...] = get_args(Hierarchy)
HIGH_POLICY, LOW_POLICY = SHARED_POLICY + HIGH, SHARED_POLICY + LOW
"""The policies of the ``goals`` variant."""


def check_hierarchy(value: Any) -> None:
    """Refuse a ``hierarchy`` that is not one of :data:`HIERARCHIES`, naming it."""
    if value not in HIERARCHIES:
        raise ValueError(f"hierarchy must be one of {', '.join(HIERARCHIES)}, got {value!r}")


def return_metric(description: str) -> Metric:
    """The benchmark's score: ``episode_return`` from the last info of every flat agent
    (flat) or every high level (goals)."""
    return Metric("return", (SHARED_POLICY, HIGH_POLICY), "episode_return", description=description)


def with_hierarchy(flat: Task, goals: Callable[[Any], Goals], **fields: Any) -> Task:
    """``flat`` as one task whose config's ``hierarchy`` picks the variant (module docstring).

    ``goals(config)`` declares the hierarchy for a config; ``fields`` are the task's other
    fields (baselines, metrics, ppo settings per policy of either variant, ...).
    """
    layered = hierarchical(flat, goals, name=flat.name)

    def variant(env_config: dict[str, Any]) -> Task:
        return layered if flat.env_config(env_config).hierarchy == "goals" else flat

    def make_env(env_config: dict[str, Any]) -> Any:
        return variant(env_config).make_env(env_config)

    def make_batched_env(env_config: dict[str, Any], num_envs: int) -> Any:
        return variant(env_config).make_batched_env(env_config, num_envs)

    def policy_of(agent: str) -> str:
        levelled = agent.endswith(HIGH) or agent.endswith(LOW)
        return layered.policy_of(agent) if levelled else flat.policy_of(agent)

    return Task(
        name=flat.name,
        make_env=make_env,
        policy_of=policy_of,
        config=flat.config,
        make_batched_env=make_batched_env,
        **fields,
    )
