"""The random and oracle policies, on single observations and on (B, R) batches."""

from __future__ import annotations

import numpy as np
import pytest

from hmarl.baselines import OraclePolicy, RandomPolicy, make_baseline
from hmarl.batched import BatchedYard
from hmarl.simulation import DIRECTIONS, YardConfig
from hmarl.yard import ChickenYardEnv

CONFIG = YardConfig(num_robots=3, num_chickens=6)


def batch_of_yards() -> BatchedYard:
    batch = BatchedYard(CONFIG)
    batch.reset(range(4))
    return batch


def test_oracle_high_takes_the_most_compatible_chicken() -> None:
    env = ChickenYardEnv(CONFIG)
    obs, _ = env.reset(seed=0)
    for agent, ob in obs.items():
        choice = OraclePolicy(CONFIG).high(ob)
        assert np.shape(choice) == ()
        assert choice == np.argmax(ob["chicken_oceans"] @ ob["robot_ocean"]), agent

    batch = batch_of_yards()
    choices = OraclePolicy(CONFIG).high(batch.high_observations())
    assert choices.shape == (4, 3)
    assert np.array_equal(choices, batch.compatibilities.argmax(-1))


def best_move(position: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Distances now and after the best of the eight moves, tried one by one."""
    after = [
        np.linalg.norm(np.clip(position + d * CONFIG.move_amount, 0, 1) - target)
        for d in DIRECTIONS
    ]
    return float(np.linalg.norm(position - target)), min(after)


def test_oracle_low_takes_the_move_that_ends_closest() -> None:
    rng = np.random.default_rng(0)
    # Corners and edges included, where clipping decides which moves help.
    positions = np.concatenate([rng.random((50, 2)), [[0, 0], [1, 1], [0, 0.5], [1, 0.2]]])
    targets = np.concatenate([rng.random((50, 2)), [[0.2, 0.0], [0.9, 1.0], [0, 0.9], [1, 0]]])
    oracle = OraclePolicy(CONFIG)
    batched = oracle.low({"robot_position": positions, "target_position": targets})
    assert batched.shape == (54,)
    for i, (position, target) in enumerate(zip(positions, targets, strict=True)):
        move = oracle.low({"robot_position": position, "target_position": target})
        assert np.shape(move) == () and move == batched[i]
        now, best = best_move(position, target)
        after = np.linalg.norm(
            np.clip(position + DIRECTIONS[move] * CONFIG.move_amount, 0, 1) - target
        )
        assert after == pytest.approx(best), f"case {i}: {move} is not the best move"
        assert after < now, f"case {i}: move {move} does not bring the robot closer"


def test_oracle_low_on_batched_observations() -> None:
    batch = batch_of_yards()
    batch.step(OraclePolicy(CONFIG).high(batch.high_observations()))
    obs = batch.low_observations()
    moves = OraclePolicy(CONFIG).low(obs)
    assert moves.shape == (4, 3)
    gaps = np.linalg.norm(obs["robot_position"] - obs["target_position"], axis=-1)
    batch.step(moves)
    closer = np.linalg.norm(batch.positions - batch.low_observations()["target_position"], axis=-1)
    assert (closer < gaps).all()


def test_random_policy_shapes_ranges_and_seeding() -> None:
    batch = batch_of_yards()
    high, low = batch.high_observations(), batch.low_observations()
    a, b = RandomPolicy(CONFIG, seed=3), RandomPolicy(CONFIG, seed=3)
    assert np.array_equal(a.high(high), b.high(high)) and np.array_equal(a.low(low), b.low(low))
    many = np.stack([a.high(high) for _ in range(50)])
    assert many.shape == (50, 4, 3) and set(np.unique(many)) == set(range(6))
    moves = np.stack([a.low(low) for _ in range(50)])
    assert set(np.unique(moves)) == set(range(8))
    single = a.high({k: v[0, 0] for k, v in high.items()})
    assert np.shape(single) == () and 0 <= single < 6


def test_make_baseline() -> None:
    assert isinstance(make_baseline("random", CONFIG, seed=1), RandomPolicy)
    assert isinstance(make_baseline("oracle", CONFIG), OraclePolicy)
    with pytest.raises(ValueError, match="unknown baseline policy 'greedy'"):
        make_baseline("greedy", CONFIG)
