"""The lifts declared as an hmarl task: the one object ``hmarl train --task`` needs.

Only ``name``, ``make_env`` and ``policy_of`` are required. The rest shows the
optional parts: typed settings (each field a ``hmarl train`` flag), a metric read
from the agents' last infos, a hand-written baseline and a score against it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hmarl import Metric, PolicyContext, Score, Task

from .simulation import LiftsConfig

NAME = "lifts"


def make_env(env_config: dict[str, Any]) -> Any:
    from .env import LiftsEnv

    return LiftsEnv(LiftsConfig(**env_config))


def policy_of(agent_id: str) -> str:
    """``lift_{i}_dispatcher`` acts for the dispatcher policy, ``lift_{i}_motor`` for the motor."""
    return agent_id.rsplit("_", 1)[1]


class Busiest:
    """A hand-written rule: go to the floor with the most passengers, straight there."""

    def act(self, policy_id: str, obs: np.ndarray) -> np.ndarray:
        if policy_id == "dispatcher":
            return obs[:, :-1].argmax(axis=1)
        return np.sign(obs[:, 2]).astype(np.int64) + 1  # down, stay, up


def busiest(context: PolicyContext) -> Busiest:
    return Busiest()


TASK = Task(
    name=NAME,
    description="a dispatcher picks a floor (high level), a lift's motor drives there (low)",
    make_env=make_env,
    policy_of=policy_of,
    config=LiftsConfig,
    metrics=(
        Metric(
            "passengers",
            "dispatcher",
            "passengers",
            description="passengers a lift collected in an episode",
        ),
    ),
    baselines={"busiest": busiest},
    score=Score("passengers", reference="busiest"),
)
