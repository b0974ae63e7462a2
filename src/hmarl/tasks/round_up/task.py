"""The round-up declared as an hmarl task: everything the toolkit needs to train it.

Nothing here imports Ray or torch: the env, the batched env, the RL modules and the
dispatch rules are imported when first used, so ``hmarl`` can check a command's
settings against :class:`RoundUpConfig` in a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hmarl.task import Metric, Policy, PolicyContext, Score, Task
from hmarl.tasks.round_up.agents import HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY, policy_of
from hmarl.tasks.round_up.simulation import RoundUpConfig


def make_env(env_config: dict[str, Any]) -> Any:
    from hmarl.tasks.round_up.env import RoundUpEnv

    return RoundUpEnv(RoundUpConfig.from_dict(dict(env_config)))


def make_batched_env(env_config: dict[str, Any], num_envs: int) -> Any:
    from hmarl.tasks.round_up.batched import BatchedRoundUp

    return BatchedRoundUp(RoundUpConfig.from_dict(dict(env_config)), num_envs)


def modules() -> dict[str, Any]:
    """A set scorer that also reads the claims, the other robots and the clock for the
    high level, with a value that sees where the other robots are heading (a
    centralised critic); the yard's goal-conditioned network for the low level (its
    view is the yard's)."""
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from hmarl.tasks.chicken_yard.modules import GoalReachingModule
    from hmarl.tasks.round_up.modules import RoundUpSetModule

    return {
        HIGH_LEVEL_POLICY: RLModuleSpec(
            module_class=RoundUpSetModule, model_config={"hidden_sizes": [64, 64]}
        ),
        LOW_LEVEL_POLICY: RLModuleSpec(
            module_class=GoalReachingModule, model_config={"hidden_sizes": [64, 64]}
        ),
    }


def dispatch(rule: str) -> Callable[[PolicyContext], Policy]:
    """The factory of a baseline: the named dispatch rule with the greedy mover."""

    def make(context: PolicyContext) -> Policy:
        from hmarl.tasks.round_up.baselines import RULES, DispatchPolicy

        return DispatchPolicy(RoundUpConfig.coerce(context.env_config), RULES[rule])

    return make


TASK = Task(
    name="round_up",
    description="robots catch chicken after chicken for a fixed time, choosing after each catch",
    make_env=make_env,
    policy_of=policy_of,
    config=RoundUpConfig,
    modules=modules,
    # The high level's value reads the global state (MAPPO's centralised critic): with
    # the team reward, most of a robot's return is the other robots' catches.
    ppo={HIGH_LEVEL_POLICY: {"critic": "central"}},
    # No schedule. In the yard the high level is held until robots can walk, since
    # until then its rewards are mostly time-out penalties. Here nothing is paid for
    # running out of time, and a high level that decides many times an episode sees
    # the results of its choices change as the low level improves, so it learns
    # alongside it rather than locking in what suited a low level that could not walk.
    baselines={
        rule: dispatch(rule)
        for rule in ("nearest", "most_compatible", "rate_greedy", "priced_greedy", "priced_sharing")
    },
    metrics=(
        Metric(
            "caught_compatibility",
            HIGH_LEVEL_POLICY,
            "caught_compatibility",
            description="compatibility of the chickens caught, per robot per episode",
        ),
        Metric(
            "catches",
            HIGH_LEVEL_POLICY,
            "catches",
            description="chickens caught, per robot per episode",
        ),
        Metric(
            "moves_per_catch",
            LOW_LEVEL_POLICY,
            "moves_per_catch",
            description="moves per chicken caught, over the robots that caught one",
        ),
    ),
    score=Score(
        "caught_compatibility",
        reference="best",
        description="compatibility caught per robot per episode; 1 = the best dispatch rule",
    ),
    make_batched_env=make_batched_env,
    # A decision that lasts k env steps is discounted by gamma**k: a chicken caught
    # sooner is worth more, which is the whole trade-off of the round-up.
    discounting="smdp",
)
