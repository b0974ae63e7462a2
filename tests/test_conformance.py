"""hmarl's conformance checks catch each break of the protocol, and only real ones."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from tiny_task import CorridorEnv

from hmarl.conformance import _random_actions, check_batched_env, check_determinism, check_env
from hmarl.tasks.chicken_yard import TASK as YARD
from hmarl.tasks.chicken_yard.batched import BatchedYard, YardStep
from hmarl.tasks.chicken_yard.simulation import YardConfig


class NoRewardForTheObserver(CorridorEnv):
    """Drops the planner's reward when the episode ends on its own step."""

    def step(self, actions: dict) -> tuple:
        obs, rewards, *rest = super().step(actions)
        if "planner" in actions and "planner" in obs:
            rewards.pop("planner", None)
        return (obs, rewards, *rest)


class Unseeded(CorridorEnv):
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        return super().reset(seed=None)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            NoRewardForTheObserver({"limit": 1}),
            "planner acted and observes again, but got no reward",
        ),
    ],
)
def test_check_env_names_the_break(env: Any, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_env(env, episodes=2)


def test_check_determinism_catches_an_unseeded_env() -> None:
    with pytest.raises(AssertionError, match="episode 0, step 0: obs"):
        check_determinism(lambda: Unseeded(), episodes=1)


def test_a_step_budget_stops_quietly() -> None:
    check_env(CorridorEnv({"limit": 10_000}), episodes=3, step_budget=50)


class WrongRewards(BatchedYard):
    def step(self, actions: Any) -> YardStep:
        step = super().step(actions)
        step.rewards["low"][:] += 1.0
        return step


def test_check_batched_env_catches_a_difference() -> None:
    task = dataclasses.replace(
        YARD, make_batched_env=lambda config, n: WrongRewards(YardConfig(**config), n)
    )
    with pytest.raises(AssertionError, match=r"env 0 \(seed 0\), step 1: robot_1_low reward"):
        check_batched_env(task, YARD.env_config_dict({"timeout": 20}), [0, 1])


def test_check_batched_env_on_a_partly_reset_batch() -> None:
    """Yards that end early wait; the others run on: every step still agrees."""
    config = YARD.env_config_dict({"timeout": 50, "closeness_threshold": 0.3})
    assert check_batched_env(YARD, config, list(range(40)), seed=3) == 50


def test_random_actions_of_every_shape() -> None:
    rng = np.random.default_rng(0)
    assert _random_actions(rng, gym.spaces.Discrete(3, start=2), (4, 2)).min() >= 2
    boxes = _random_actions(rng, gym.spaces.Box(-1, 1, (3,)), (4, 2))
    assert boxes.shape == (4, 2, 3)
