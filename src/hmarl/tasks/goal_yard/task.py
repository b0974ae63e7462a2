"""The goal yard: the chicken yard rebuilt as a flat yard and a declared hierarchy.

:data:`FLAT` is a flat task (every robot moves every step; a robot that reaches a chicken
catches it). :data:`TASK` gives each robot a high level that chooses a chicken and a
low level that walks to it, declared, not coded: the goals are the chickens, reaching
one is the chicken yard's arrival, and the low level is paid as the chicken yard pays
it; :func:`hmarl.goals.hierarchical` builds the rest (who acts when, what each level
sees, the high level paid the flat reward, decisions that take no time).

One difference remains, and it is the world's: in the flat yard a robot catches
whatever chicken it reaches, where the chicken yard's robot walks past every chicken
but the one it chose. Until a robot passes within reach of another chicken, the two
move the same robots to the same chickens for the same rewards (tests/test_goal_yard.py).

Nothing here imports Ray or torch (see :mod:`hmarl.tasks.chicken_yard.task`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hmarl.goals import Goals, hierarchical
from hmarl.task import Metric, PolicyContext, Schedule, Score, Task
from hmarl.tasks.chicken_yard.simulation import has_arrived, squared_distances
from hmarl.tasks.goal_yard.agents import HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY, POLICY, POSITION
from hmarl.tasks.goal_yard.simulation import FlatYardConfig, moves_allowed


def make_env(env_config: dict[str, Any]) -> Any:
    from hmarl.tasks.goal_yard.env import FlatYardEnv

    return FlatYardEnv(FlatYardConfig.from_dict(dict(env_config)))


def make_batched_env(env_config: dict[str, Any], num_envs: int) -> Any:
    from hmarl.tasks.goal_yard.batched import BatchedFlatYard

    return BatchedFlatYard(FlatYardConfig.from_dict(dict(env_config)), num_envs)


FLAT = Task(
    name="flat_yard",
    description="robots walk the chicken yard; reaching a chicken catches it",
    make_env=make_env,
    policy_of=lambda agent: POLICY,
    config=FlatYardConfig,
    make_batched_env=make_batched_env,
)


def chickens(obs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Every chicken is a goal, described by its x, y and personality; all may be chosen."""
    features = np.concatenate([obs["chicken_positions"], obs["chicken_oceans"]], axis=-1)
    return features, np.ones(features.shape[:2], dtype=bool)


def goals_for(config: FlatYardConfig) -> Goals:
    """The chickens as goals; reaching one, and the low level's pay, as in the chicken yard."""

    def reached(obs: dict, goal: np.ndarray, reward: np.ndarray) -> np.ndarray:
        # On the observed (float32) positions, where the yards decide on float64 ones: the
        # two could disagree only within float32 rounding of the threshold.
        robot = obs["robot_position"].astype(np.float64)
        return has_arrived(squared_distances(robot, goal[:, POSITION].astype(np.float64)), config)

    def low_reward(reward: np.ndarray, reached: np.ndarray, obs: dict, goal: Any) -> np.ndarray:
        out_of_time = obs["time_left"][:, 0] <= 0
        paid = (config.arrival_reward, config.timeout_reward)
        return np.select([reached, out_of_time], paid, config.step_reward)

    # An option lasts until its robot reaches the chicken or runs out of time.
    return Goals(
        count=config.num_chickens,
        size=2 + config.num_ocean_features,
        candidates=chickens,
        reached=reached,
        low_reward=low_reward,
        max_steps=moves_allowed(config),
    )


def modules() -> dict[str, Any]:
    """The chicken yard's networks, reading the goal yard's views."""
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from hmarl.tasks.goal_yard.modules import GoalSetModule, GoalWalkingModule

    sizes = {"hidden_sizes": [64, 64]}
    return {
        HIGH_LEVEL_POLICY: RLModuleSpec(module_class=GoalSetModule, model_config=sizes),
        LOW_LEVEL_POLICY: RLModuleSpec(module_class=GoalWalkingModule, model_config=sizes),
    }


def oracle(context: PolicyContext) -> Any:
    from hmarl.tasks.goal_yard.baselines import OraclePolicy

    return OraclePolicy(FlatYardConfig.coerce(context.env_config))


# Everything below the goals is the chicken yard's training set-up, for the same reasons
# (hmarl.tasks.chicken_yard.task says them).
TASK = hierarchical(
    FLAT,
    goals_for,
    name="goal_yard",
    description="the chicken yard as a flat yard with a declared hierarchy",
    modules=modules,
    ppo={HIGH_LEVEL_POLICY: {"lr": 2e-3}, LOW_LEVEL_POLICY: {"lr": 2e-3}},
    schedule=Schedule(hold=HIGH_LEVEL_POLICY, metric="success_rate", threshold=0.9),
    baselines={"oracle": oracle},
    metrics=(
        Metric(
            "mean_compatibility",
            HIGH_LEVEL_POLICY,
            "compatibility",
            description="compatibility with the chicken caught, per robot that caught one",
        ),
        Metric(
            "success_rate",
            LOW_LEVEL_POLICY,
            "arrived",
            description="robots that caught a chicken in time",
        ),
        Metric(
            "mean_steps",
            LOW_LEVEL_POLICY,
            "steps",
            where="arrived",
            description="moves to catch, over the robots that caught one",
        ),
    ),
    score=Score("mean_compatibility", reference="oracle"),
    discounting="per-decision",
)
