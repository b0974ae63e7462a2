"""Level-Based Foraging declared as an hmarl task: flat, or with a hierarchy of goals.

The config's ``hierarchy`` chooses (:mod:`hmarl.tasks.packaged.variants`): ``"flat"``,
every agent acts every step with the package's actions for ``shared_policy``;
``"goals"``, a high level picks a food or to wait, a low level walks beside it and
loads (:mod:`hmarl.tasks.lbf.goals`). Nothing here imports Ray, torch or lbforaging:
the envs, the batched envs, the goals and the baselines are imported when first used.
"""

from __future__ import annotations

from typing import Any

from hmarl.goals import Goals
from hmarl.task import Policy, PolicyContext, Task
from hmarl.tasks.lbf.config import LBFConfig
from hmarl.tasks.packaged.agents import policy_of
from hmarl.tasks.packaged.variants import SPARSE_REWARD_TRAINING, return_metric, with_hierarchy


def make_env(env_config: dict[str, Any]) -> Any:
    from hmarl.tasks.lbf.env import LBFEnv

    return LBFEnv(LBFConfig.from_dict(dict(env_config)))


def make_batched_env(env_config: dict[str, Any], num_envs: int) -> Any:
    from hmarl.tasks.lbf.batched import BatchedForaging

    return BatchedForaging(LBFConfig.from_dict(dict(env_config)), num_envs)


def goals(config: LBFConfig) -> Goals:
    from hmarl.tasks.lbf.goals import goals_for

    return goals_for(config)


def together(context: PolicyContext) -> Policy:
    from hmarl.tasks.lbf.baselines import TogetherPolicy

    return TogetherPolicy(context)


FLAT = Task(
    name="lbf",
    make_env=make_env,
    policy_of=policy_of,
    config=LBFConfig,
    make_batched_env=make_batched_env,
)

TASK = with_hierarchy(
    FLAT,
    goals,
    description="Level-Based Foraging (lbforaging 2.0.0), flat or with goals (--hierarchy)",
    # As EPyMARL scores IPPO and MAPPO (its "soft_policies" sample when testing too), and
    # because a greedy policy can lock into a loop: agents that contest a cell both stay,
    # the state repeats, and so do their most likely actions, to the time limit.
    evaluation_actions="sampled",
    # Food is sparse (a random team loads 0.6 % of it): see SPARSE_REWARD_TRAINING. On
    # this task lr 3e-4 with entropy 0.01 reached 0.845 after 180 s (seed 0).
    training=SPARSE_REWARD_TRAINING,
    baselines={"together": together},
    metrics=(
        return_metric("the package's episode return summed over agents (share of food loaded)"),
    ),
)
