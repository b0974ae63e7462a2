"""Level-Based Foraging declared as an hmarl task (flat: every agent acts every step).

Nothing here imports Ray, torch or lbforaging: the env, the batched env and the
baselines are imported when first used.
"""

from __future__ import annotations

from typing import Any

from hmarl.task import Metric, Policy, PolicyContext, Task
from hmarl.tasks.lbf.config import LBFConfig
from hmarl.tasks.packaged.agents import SHARED_POLICY, policy_of


def make_env(env_config: dict[str, Any]) -> Any:
    from hmarl.tasks.lbf.env import LBFEnv

    return LBFEnv(LBFConfig.from_dict(dict(env_config)))


def make_batched_env(env_config: dict[str, Any], num_envs: int) -> Any:
    from hmarl.tasks.lbf.batched import BatchedForaging

    return BatchedForaging(LBFConfig.from_dict(dict(env_config)), num_envs)


def together(context: PolicyContext) -> Policy:
    from hmarl.tasks.lbf.baselines import TogetherPolicy

    return TogetherPolicy(context)


TASK = Task(
    name="lbf",
    description="Level-Based Foraging (lbforaging 2.0.0), flat, one shared policy",
    make_env=make_env,
    policy_of=policy_of,
    config=LBFConfig,
    baselines={"together": together},
    metrics=(
        Metric(
            "return",
            SHARED_POLICY,
            "episode_return",
            description="the package's episode return summed over agents (share of food loaded)",
        ),
    ),
    make_batched_env=make_batched_env,
)
