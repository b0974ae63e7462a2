"""The multi-robot warehouse declared as an hmarl task (flat: every robot acts every step).

Nothing here imports Ray, torch or rware: the env, the batched env and the baselines
are imported when first used.
"""

from __future__ import annotations

from typing import Any

from hmarl.task import Metric, Policy, PolicyContext, Task
from hmarl.tasks.packaged.agents import SHARED_POLICY, policy_of
from hmarl.tasks.rware.config import WarehouseConfig


def make_env(env_config: dict[str, Any]) -> Any:
    from hmarl.tasks.rware.env import WarehouseEnv

    return WarehouseEnv(WarehouseConfig.from_dict(dict(env_config)))


def make_batched_env(env_config: dict[str, Any], num_envs: int) -> Any:
    from hmarl.tasks.rware.batched import BatchedWarehouse

    return BatchedWarehouse(WarehouseConfig.from_dict(dict(env_config)), num_envs)


def fetch(context: PolicyContext) -> Policy:
    from hmarl.tasks.rware.baselines import FetchPolicy

    return FetchPolicy(context)


TASK = Task(
    name="rware",
    description="the multi-robot warehouse (rware 2.0.0), flat, one shared policy",
    make_env=make_env,
    policy_of=policy_of,
    config=WarehouseConfig,
    baselines={"fetch": fetch},
    metrics=(
        Metric(
            "return",
            SHARED_POLICY,
            "episode_return",
            description="the package's episode return summed over agents",
        ),
    ),
    make_batched_env=make_batched_env,
)
