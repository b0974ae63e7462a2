"""The multi-robot warehouse declared as an hmarl task: flat, or with a hierarchy of goals.

The config's ``hierarchy`` chooses (:mod:`hmarl.tasks.packaged.variants`): ``"flat"``,
every robot acts every step with the package's actions for ``shared_policy``;
``"goals"``, a high level (a centralised manager: it chooses among goals read from the
warehouse's state) picks a requested shelf, a goal or a free place, and a low level
drives there and lifts or puts down (:mod:`hmarl.tasks.rware.goals`). Nothing here
imports Ray, torch or rware: the envs, the batched envs, the goals and the baselines
are imported when first used.
"""

from __future__ import annotations

from typing import Any

from hmarl.goals import Goals
from hmarl.task import Policy, PolicyContext, Task
from hmarl.tasks.packaged.agents import policy_of
from hmarl.tasks.packaged.variants import SPARSE_REWARD_TRAINING, return_metric, with_hierarchy
from hmarl.tasks.rware.config import WarehouseConfig


def make_env(env_config: dict[str, Any]) -> Any:
    from hmarl.tasks.rware.env import WarehouseEnv

    return WarehouseEnv(WarehouseConfig.from_dict(dict(env_config)))


def make_batched_env(env_config: dict[str, Any], num_envs: int) -> Any:
    from hmarl.tasks.rware.batched import BatchedWarehouse

    return BatchedWarehouse(WarehouseConfig.from_dict(dict(env_config)), num_envs)


def goals(config: WarehouseConfig) -> Goals:
    from hmarl.tasks.rware.goals import goals_for

    return goals_for(config)


def fetch(context: PolicyContext) -> Policy:
    from hmarl.tasks.rware.baselines import FetchPolicy

    return FetchPolicy(context)


FLAT = Task(
    name="rware",
    make_env=make_env,
    policy_of=policy_of,
    config=WarehouseConfig,
    make_batched_env=make_batched_env,
)

TASK = with_hierarchy(
    FLAT,
    goals,
    description="the multi-robot warehouse (rware 2.0.0), flat or with goals (--hierarchy)",
    # As EPyMARL scores IPPO and MAPPO (its "soft_policies" sample when testing too), and
    # because a greedy policy can lock into a loop: agents that contest a cell both stay,
    # the state repeats, and so do their most likely actions, to the time limit.
    evaluation_actions="sampled",
    # Deliveries are sparse (a random team makes 0.03 an episode): see
    # SPARSE_REWARD_TRAINING.
    training=SPARSE_REWARD_TRAINING,
    baselines={"fetch": fetch},
    metrics=(return_metric("the package's episode return summed over agents"),),
)
