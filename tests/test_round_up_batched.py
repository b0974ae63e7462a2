"""The batched round-up against its env, step for step, and the evaluations built on both."""

from __future__ import annotations

import numpy as np
import pytest

from hmarl.conformance import check_batched_env
from hmarl.evaluation import baseline_policies, evaluate
from hmarl.tasks.round_up import TASK
from hmarl.tasks.round_up.batched import BatchedRoundUp
from hmarl.tasks.round_up.simulation import HORIZONS, RoundUpConfig


def config(**values: object) -> dict:
    return TASK.env_config_dict(values)


# A wide reach, so that random walkers catch: respawns and interruptions get compared too.
CATCHING = {"num_robots": 3, "num_chickens": 4, "episode_steps": 25, "closeness_threshold": 0.3}


@pytest.mark.parametrize(
    ("values", "episodes"),
    [
        (CATCHING, 200),
        ({}, 10),
        ({"num_robots": 1, "num_chickens": 2, "episode_steps": 30, "closeness_threshold": 0.3}, 50),
        (
            {
                "num_robots": 8,
                "num_chickens": 3,
                "episode_steps": 30,
                "closeness_threshold": 0.25,
                "replan_every": 3,
            },
            50,
        ),
        ({**CATCHING, "replan_every": 1}, 50),
        # Every move catches: new chickens outrun the draws ahead, and yards draw again.
        ({**CATCHING, "num_robots": 20, "episode_steps": 30, "closeness_threshold": 1.414}, 20),
        ({"episode_steps": 1}, 20),
        ({**CATCHING, "team_reward": 0.5}, 50),
    ],
    ids=[
        "catching",
        "defaults",
        "one-robot",
        "crowded-replanning",
        "replan-every-move",
        "catch-every-move",
        "one-step",
        "team-reward",
    ],
)
def test_batched_equals_env(values: dict, episodes: int) -> None:
    steps = check_batched_env(TASK, config(**values), range(100, 100 + episodes), seed=1)
    assert steps == values.get("episode_steps", 500)


def test_the_comparison_sees_catches_and_interruptions() -> None:
    """The comparison's random actions (the same stream: its generator, seed 1, high then
    low) catch, and interrupt, often enough to compare respawns and interruptions."""
    cfg = RoundUpConfig(**CATCHING)
    batch = BatchedRoundUp(cfg, num_envs=200)
    batch.reset(range(100, 300))
    rng = np.random.default_rng(1)
    interruptions = 0
    while not batch.all_over:
        heading, catches = batch.due("low"), batch.catches.copy()
        actions = {"high": rng.integers(4, size=(200, 3)), "low": rng.integers(8, size=(200, 3))}
        batch.step(actions)
        dropped = heading & batch.due("high") & (batch.catches == catches)
        interruptions += int(dropped.sum())
    assert batch.catches.sum() > 200 and interruptions > 100


@pytest.mark.parametrize("policy", ["random", "priced_greedy"])
def test_evaluate_batched_equals_through_the_env(policy: str) -> None:
    cfg = config(episode_steps=150)
    seeds = range(7, 17)
    batched = evaluate(TASK, cfg, baseline_policies(TASK, cfg, 1)[policy], seeds, batched=True)
    single = evaluate(TASK, cfg, baseline_policies(TASK, cfg, 1)[policy], seeds, batched=False)
    assert batched.returns.keys() == single.returns.keys()
    for key in batched.metrics:
        assert batched.metrics[key] == pytest.approx(single.metrics[key], abs=1e-9, nan_ok=True)
    for key in batched.returns:
        assert batched.returns[key] == pytest.approx(single.returns[key], abs=1e-9)
    if policy == "priced_greedy":
        assert batched.metrics["catches"] > 5


@pytest.mark.parametrize("horizon", HORIZONS)
def test_yards_reset_one_by_one_keep_their_own_clocks_and_generators(horizon: str) -> None:
    cfg = RoundUpConfig(num_robots=1, num_chickens=2, episode_steps=3, horizon=horizon)
    batch = BatchedRoundUp(cfg, num_envs=2)
    batch.reset([0, 1])
    for _ in range(3):
        step = batch.step({"high": np.zeros((2, 1), int), "low": np.zeros((2, 1), int)})
    assert step.over.all() and batch.all_over
    ended, clear = (
        getattr(step, horizon),
        step.truncated if horizon == "terminated" else step.terminated,
    )
    assert ended["high"].all() and ended["low"].all()
    assert not clear["high"].any() and not clear["low"].any()
    batch.reset([5], where=np.array([False, True]))
    assert list(batch.over) == [True, False] and list(batch.steps) == [3, 0]
    assert batch.due("high")[1, 0] and not batch.due("high")[0, 0]
    fresh = BatchedRoundUp(cfg, num_envs=1)
    fresh.reset([5])
    assert batch.rngs[1].bit_generator.state == fresh.rngs[0].bit_generator.state
    step = batch.step({"high": np.ones((2, 1), int), "low": np.zeros((2, 1), int)})
    assert list(batch.steps) == [3, 1] and not step.over.any()
    with pytest.raises(ValueError, match="2 yards to reset but 1 seeds"):
        batch.reset([7])


def test_bad_actions_are_refused() -> None:
    batch = BatchedRoundUp(RoundUpConfig(num_robots=2, num_chickens=3), num_envs=2)
    batch.reset([0, 1])
    for actions, message in [
        ({"high": np.zeros((2, 3), dtype=int)}, r"high actions must have shape \(2, 2\)"),
        ({"low": np.zeros((2, 2), dtype=int)}, "no 'high' actions"),
        ({"high": np.full((2, 2), 1.5)}, "integer"),
        ({"high": np.array([[0, 0], [3, 0]])}, "yard 1, robot 1: high action 3 is out of range"),
    ]:
        with pytest.raises(ValueError, match=message):
            batch.step(actions)
    assert (batch.targets == -1).all() and list(batch.steps) == [0, 0]
    batch.step({"high": np.array([[0, 2], [1, 1]])})  # still usable
    positions = batch.positions.copy()
    with pytest.raises(ValueError, match="yard 0, robot 2: low action 8 is out of range"):
        batch.step({"low": np.array([[0, 8], [0, 0]])})
    assert np.array_equal(batch.positions, positions)
