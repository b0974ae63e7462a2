"""hmarl's conformance checks catch each break of the protocol, and only real ones."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from tiny_task import CorridorEnv

from hmarl.conformance import (
    Transition,
    _random_actions,
    check_batched_env,
    check_determinism,
    check_env,
    check_rllib_env_checker,
    check_rllib_episodes,
    check_rllib_rules,
)
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


# -- what RLlib enforces, before it does ------------------------------------------------


class TruncatedWithoutAFinalObservation(CorridorEnv):
    """At the time limit the walker, which has acted, is truncated without an observation."""

    def step(self, actions: dict) -> tuple:
        obs, rewards, terminateds, truncateds, infos = super().step(actions)
        if truncateds.get("__all__"):
            obs.pop("walker", None)
            rewards.pop("walker", None)
        return obs, rewards, terminateds, truncateds, infos


class RewardsTheWaitingPlanner(CorridorEnv):
    """Lists only the walker in ``agents`` but rewards the planner for having chosen."""

    def step(self, actions: dict) -> tuple:
        obs, rewards, *rest = super().step(actions)
        if "planner" in actions:
            rewards = {"planner": 0.0} | rewards
        return (obs, rewards, *rest)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            NoRewardForTheObserver({"limit": 1}),
            "step 1: planner: RLlib's episode refuses the step: an agent that acted and "
            "observes again gets a reward on that step",
        ),
        (
            TruncatedWithoutAFinalObservation({"limit": 5}),
            "step 5: walker: RLlib's episode refuses the step: an agent truncated after it "
            "acted needs a final observation",
        ),
    ],
    ids=["no-reward", "no-final-observation"],
)
def test_rllib_episodes_refuse_what_rllib_refuses(env: Any, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_rllib_episodes(env, lambda agent: agent, seed=0, episodes=3)


def test_rllib_episodes_are_played_whole() -> None:
    env = YARD.make_env(YARD.env_config_dict({"timeout": 100}))
    # The budget ends no episode early: the first is played to its time limit, no second.
    assert check_rllib_episodes(env, YARD.policy_id, seed=0, episodes=2, step_budget=10) == 100


def test_a_reward_for_an_agent_env_agents_does_not_list() -> None:
    """The mistake that RLlib's env checker makes a traceback of, named in one line."""
    with pytest.raises(AssertionError) as caught:
        check_env(RewardsTheWaitingPlanner(), episodes=1)
    assert str(caught.value) == (
        "episode 0, step 1: planner gets a reward but env.agents ['walker'] does not list "
        "it; RLlib's env checker refuses a first step that names an agent env.agents does "
        "not list (list every agent still in the episode, or give a waiting agent its "
        "reward when it next observes)"
    )
    with pytest.raises(AssertionError, match=r"^RLlib's env checker .*reward has agent_ids"):
        check_rllib_env_checker(RewardsTheWaitingPlanner())


def test_no_reward_after_an_agent_ended() -> None:
    t = Transition(0, 7, {"walker": 1}, {"walker": 0}, {"planner": 1.0}, {}, {}, {})
    with pytest.raises(AssertionError, match="step 7: planner gets a reward after it ended"):
        check_rllib_rules(t, listed={"walker"}, ended={"planner"})
