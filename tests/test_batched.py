"""The batched yard against the RLlib env, step for step, and the evaluations built on both."""

from __future__ import annotations

import numpy as np
import pytest

from hmarl.baselines import OraclePolicy, RandomPolicy
from hmarl.batched import BatchedYard
from hmarl.evaluation import evaluate, evaluate_env
from hmarl.simulation import YardConfig
from hmarl.yard import ChickenYardEnv, robot_index


def run_lockstep(config: YardConfig, seeds: range, greedy: float) -> tuple[int, int]:
    """Drive a batched yard and one env per seed with the same actions; assert they agree.

    Moves are random, except that with probability ``greedy`` a robot takes the
    oracle's move, so that arrivals happen as well as time limits. Returns the
    numbers of arrivals and of truncations seen.
    """
    rng = np.random.default_rng(seeds[0])
    oracle = OraclePolicy(config)
    batch = BatchedYard(config)
    batch.reset(seeds)
    envs = [ChickenYardEnv(config) for _ in seeds]
    for env, seed in zip(envs, seeds, strict=True):
        env.reset(seed=seed)
    shape = (len(seeds), config.num_robots)
    arrivals = truncations = 0

    actions = rng.integers(config.num_chickens, size=shape)
    while not batch.all_done:
        if batch.steps:
            actions = np.where(
                rng.random(shape) < greedy,
                oracle.low(batch.low_observations()),
                rng.integers(8, size=shape),
            )
        result = batch.step(actions)
        high, low = np.zeros(shape), np.zeros(shape)
        arrived, truncated = np.zeros(shape, bool), np.zeros(shape, bool)
        for b, env in enumerate(envs):
            if not env.due_agents:
                continue
            _, rewards, terminateds, truncateds, _ = env.step(
                {a: actions[b, robot_index(a)] for a in env.due_agents}
            )
            for agent, reward in rewards.items():
                (high if agent.endswith("_high") else low)[b, robot_index(agent)] = reward
            for ended, flags in ((arrived, terminateds), (truncated, truncateds)):
                for agent, flag in flags.items():
                    if flag and agent.endswith("_high"):
                        ended[b, robot_index(agent)] = True

        where = f"step {batch.steps}"
        positions = np.stack([env.yard.positions for env in envs])
        assert np.array_equal(batch.positions, positions), where
        targets = [[-1 if t is None else t for t in env.yard.targets] for env in envs]
        assert np.array_equal(batch.targets, targets), where
        assert np.array_equal(result.arrived, arrived), where
        assert np.array_equal(result.truncated, truncated), where
        assert np.array_equal(batch.done.all(axis=1), [not env.due_agents for env in envs]), where
        np.testing.assert_array_equal(result.low_rewards, low, err_msg=where)
        # Compatibilities come from a (B, R, O) @ (B, O, C) product in one and an
        # (R, O) @ (O, C) product in the other: equal up to rounding only.
        np.testing.assert_allclose(result.high_rewards, high, rtol=0, atol=1e-12, err_msg=where)
        arrivals += int(arrived.sum())
        truncations += int(truncated.sum())

    assert not any(env.due_agents for env in envs)
    return arrivals, truncations


def test_batched_equals_env_on_1000_episodes() -> None:
    config = YardConfig(num_robots=3, num_chickens=4, timeout=100)
    arrivals, truncations = run_lockstep(config, range(1000), greedy=0.2)
    assert arrivals > 100 and truncations > 100, "both ways of ending should be exercised"


@pytest.mark.parametrize(
    ("config", "episodes"),
    [(YardConfig(), 20), (YardConfig(num_robots=1, num_chickens=1, timeout=1), 20)],
    ids=["defaults", "timeout-1"],
)
def test_batched_equals_env(config: YardConfig, episodes: int) -> None:
    run_lockstep(config, range(100, 100 + episodes), greedy=0.3)


@pytest.mark.parametrize("policy", ["random", "oracle"])
def test_evaluate_equals_evaluate_env(policy: str) -> None:
    config = YardConfig(timeout=300)
    seeds = range(7, 27)

    def make() -> RandomPolicy | OraclePolicy:
        return RandomPolicy(config, seed=1) if policy == "random" else OraclePolicy(config)

    batched, single = evaluate(make(), config, seeds), evaluate_env(make(), config, seeds)
    assert batched.mean_compatibility == pytest.approx(single.mean_compatibility, abs=1e-12)
    assert batched.success_rate == single.success_rate
    assert batched.mean_steps == single.mean_steps


def test_oracle_beats_random() -> None:
    config = YardConfig()
    seeds = range(200)
    oracle = evaluate(OraclePolicy(config), config, seeds)
    random = evaluate(RandomPolicy(config, seed=0), config, seeds)
    assert oracle.success_rate == 1.0
    assert oracle.mean_compatibility > random.mean_compatibility + 0.1
    # The SPEC's reference values, loosely: 200 episodes are not many.
    assert oracle.mean_compatibility == pytest.approx(0.933, abs=0.02)
    assert random.mean_compatibility == pytest.approx(0.772, abs=0.03)
    assert oracle.mean_steps < random.mean_steps


def test_bad_actions_are_refused() -> None:
    batch = BatchedYard(YardConfig(num_robots=2, num_chickens=3))
    batch.reset([0, 1])
    positions = batch.positions.copy()
    for actions, message in [
        (np.zeros((2, 3), dtype=int), r"actions must have shape \(2, 2\), got \(2, 3\)"),
        (np.zeros(2, dtype=int), "actions must have shape"),
        (np.full((2, 2), 1.5), "integer"),
        (np.array([[0, 0], [3, 0]]), "yard 1, robot 1: action 3 is out of range"),
        (np.array([[0, -1], [0, 0]]), "yard 0, robot 2: action -1 is out of range"),
    ]:
        with pytest.raises(ValueError, match=message):
            batch.step(actions)
    assert np.array_equal(batch.targets, -np.ones((2, 2))) and batch.steps == 0
    batch.step(np.array([[0, 2], [1, 1]]))  # still usable
    with pytest.raises(ValueError, match="yard 0, robot 2: action 8 is out of range"):
        batch.step(np.array([[0, 8], [0, 0]]))
    assert np.array_equal(batch.positions, positions)
