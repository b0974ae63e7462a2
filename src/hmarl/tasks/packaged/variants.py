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


SPARSE_REWARD_TRAINING = {
    "train_batch_size": 8192,
    "minibatch_size": 4096,
    "lr": 3e-4,
    "entropy_coeff": 0.03,
    "checkpoint_every": 20,
}
"""Both packages' training settings (``Task.training``), for rewards a random team almost
never earns: four times the run's batch (more rewarded steps per update), a smaller step
and more entropy. At the run's defaults (2,048 env steps a batch, lr 1e-3, entropy 0.003)
PPO follows the noise of its standardised advantages and collapses to earning nothing:
``Foraging-8x8-2p-2f-coop-v3`` 0.000 after 180 s and ``rware-tiny-2ag-v2`` 0.000 after
600 s, against 0.980 and 6.47 with these (seed 0; 2026-12-03, ``hmarl train`` with these in
``--config``)."""


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
