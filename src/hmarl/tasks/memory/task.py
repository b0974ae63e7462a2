"""The memory task declared as an hmarl task: a test of memory for agents that act now and then.

Nothing here imports Ray or torch: the env, the batched env and the baseline are
imported when first used.
"""

from __future__ import annotations

from typing import Any

from hmarl.task import Metric, Policy, PolicyContext, Score, Task
from hmarl.tasks.memory.config import (
    HIGH_LEVEL_POLICY,
    LOW_LEVEL_POLICY,
    MemoryConfig,
    policy_of,
)


def make_env(env_config: dict[str, Any]) -> Any:
    from hmarl.tasks.memory.env import MemoryEnv

    return MemoryEnv(MemoryConfig.from_dict(dict(env_config)))


def make_batched_env(env_config: dict[str, Any], num_envs: int) -> Any:
    from hmarl.tasks.memory.batched import BatchedMemory

    return BatchedMemory(MemoryConfig.from_dict(dict(env_config)), num_envs)


def recall(context: PolicyContext) -> Policy:
    from hmarl.tasks.memory.baselines import RecallPolicy

    return RecallPolicy(context.env_config)


TASK = Task(
    name="memory",
    description="a cue seen at the first high-level decision, named at the last (memory)",
    make_env=make_env,
    policy_of=policy_of,
    config=MemoryConfig,
    # The high level needs memory: an LSTM in RLlib's default module (--memory none
    # takes it away). An episode's high level decides middle_decisions + 2 times, so
    # with its bootstrap row its rows of an episode fit one sequence of 8 (by default).
    ppo={HIGH_LEVEL_POLICY: {"memory": "lstm", "max_seq_len": 8}},
    baselines={"recall": recall},
    metrics=(
        Metric(
            "success_rate",
            HIGH_LEVEL_POLICY,
            "correct",
            description="episodes whose final decision named the cue (chance: 1 / cues)",
        ),
        Metric(
            "followed",
            LOW_LEVEL_POLICY,
            "followed",
            description="the low level's steps that carried out the high level's option",
        ),
    ),
    score=Score("success_rate", reference="recall"),
    make_batched_env=make_batched_env,
)
