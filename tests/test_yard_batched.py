"""The batched yard against the yard's env, step for step, and the evaluations built on both."""

from __future__ import annotations

import numpy as np
import pytest

from hmarl.conformance import check_batched_env
from hmarl.evaluation import baseline_policies, evaluate, run_batched
from hmarl.tasks.chicken_yard import TASK
from hmarl.tasks.chicken_yard.batched import BatchedYard
from hmarl.tasks.chicken_yard.simulation import YardConfig


def config(**values: object) -> dict:
    return TASK.env_config_dict(values)


@pytest.mark.parametrize(
    ("values", "episodes"),
    [
        ({"num_robots": 3, "num_chickens": 4, "timeout": 100}, 300),
        ({}, 20),
        ({"num_robots": 1, "num_chickens": 1, "timeout": 1}, 20),
        ({"num_robots": 8, "num_chickens": 20, "timeout": 60}, 20),
    ],
    ids=["small-yards", "defaults", "timeout-1", "crowded"],
)
def test_batched_equals_env(values: dict, episodes: int) -> None:
    steps = check_batched_env(TASK, config(**values), range(100, 100 + episodes), seed=1)
    assert steps >= 1


def test_both_ways_of_ending_are_compared() -> None:
    """Random moves rarely arrive; the oracle's always do: the checks see both ends."""
    cfg = config(num_robots=3, num_chickens=4, timeout=60)
    seeds = range(200)
    oracle = baseline_policies(TASK, cfg)["oracle"]
    tallies = run_batched(TASK, cfg, oracle, seeds)
    assert tallies["low_level_policy"].column("arrived").mean() == 1.0
    random = run_batched(TASK, cfg, baseline_policies(TASK, cfg, 0)["random"], seeds)
    assert random["low_level_policy"].column("arrived").mean() < 0.5


@pytest.mark.parametrize("policy", ["random", "oracle"])
def test_evaluate_batched_equals_through_the_env(policy: str) -> None:
    cfg = config(timeout=300)
    seeds = range(7, 27)
    batched = evaluate(TASK, cfg, baseline_policies(TASK, cfg, 1)[policy], seeds, batched=True)
    single = evaluate(TASK, cfg, baseline_policies(TASK, cfg, 1)[policy], seeds, batched=False)
    assert batched.returns.keys() == single.returns.keys()
    for key in batched.metrics:
        assert batched.metrics[key] == pytest.approx(single.metrics[key], abs=1e-12)
    for key in batched.returns:
        assert batched.returns[key] == pytest.approx(single.returns[key], abs=1e-12)


def test_oracle_beats_random() -> None:
    cfg = config()
    seeds = range(200)
    oracle = evaluate(TASK, cfg, baseline_policies(TASK, cfg)["oracle"], seeds).metrics
    random = evaluate(TASK, cfg, baseline_policies(TASK, cfg, 0)["random"], seeds).metrics
    assert oracle["success_rate"] == 1.0
    assert oracle["mean_compatibility"] > random["mean_compatibility"] + 0.1
    # The SPEC's reference values, loosely: 200 episodes are not many.
    assert oracle["mean_compatibility"] == pytest.approx(0.933, abs=0.02)
    assert random["mean_compatibility"] == pytest.approx(0.772, abs=0.03)
    assert oracle["mean_steps"] < random["mean_steps"]


def test_yards_reset_one_by_one_keep_their_own_clocks() -> None:
    yard = BatchedYard(YardConfig(num_robots=1, num_chickens=2, timeout=3), num_envs=2)
    yard.reset([0, 1])
    for _ in range(3):
        step = yard.step({"high": np.zeros((2, 1), int), "low": np.zeros((2, 1), int)})
    assert step.over.all() and yard.all_over
    yard.reset([5], where=np.array([False, True]))
    assert list(yard.over) == [True, False] and list(yard.steps) == [3, 0]
    assert yard.due("high")[1, 0] and not yard.due("high")[0, 0]
    step = yard.step({"high": np.ones((2, 1), int), "low": np.zeros((2, 1), int)})
    assert list(yard.steps) == [3, 1] and not step.over.any()
    with pytest.raises(ValueError, match="2 yards to reset but 1 seeds"):
        yard.reset([7])


def test_bad_actions_are_refused() -> None:
    batch = BatchedYard(YardConfig(num_robots=2, num_chickens=3), num_envs=2)
    batch.reset([0, 1])
    positions = batch.positions.copy()
    for actions, message in [
        ({"high": np.zeros((2, 3), dtype=int)}, r"high actions must have shape \(2, 2\)"),
        ({"low": np.zeros((2, 2), dtype=int)}, "no 'high' actions"),
        ({"high": np.full((2, 2), 1.5)}, "integer"),
        ({"high": np.array([[0, 0], [3, 0]])}, "yard 1, robot 1: high action 3 is out of range"),
        ({"high": np.array([[0, -1], [0, 0]])}, "yard 0, robot 2: high action -1 is out of"),
    ]:
        with pytest.raises(ValueError, match=message):
            batch.step(actions)
    assert np.array_equal(batch.targets, -np.ones((2, 2))) and list(batch.steps) == [0, 0]
    batch.step({"high": np.array([[0, 2], [1, 1]])})  # still usable
    with pytest.raises(ValueError, match="yard 0, robot 2: low action 8 is out of range"):
        batch.step({"low": np.array([[0, 8], [0, 0]])})
    assert np.array_equal(batch.positions, positions)
