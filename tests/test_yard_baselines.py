"""The yard's oracle, on single observations and on (B, R) batches."""

from __future__ import annotations

import numpy as np
import pytest

from hmarl.tasks.chicken_yard.baselines import OraclePolicy
from hmarl.tasks.chicken_yard.batched import BatchedYard
from hmarl.tasks.chicken_yard.env import ChickenYardEnv
from hmarl.tasks.chicken_yard.simulation import DIRECTIONS, YardConfig

CONFIG = YardConfig(num_robots=3, num_chickens=6)
HIGH, LOW = "high_level_policy", "low_level_policy"


def batch_of_yards() -> BatchedYard:
    batch = BatchedYard(CONFIG, num_envs=4)
    batch.reset(range(4))
    return batch


def test_oracle_high_takes_the_most_compatible_chicken() -> None:
    env = ChickenYardEnv(CONFIG)
    obs, _ = env.reset(seed=0)
    for agent, ob in obs.items():
        choice = OraclePolicy(CONFIG).act(HIGH, ob)
        assert np.shape(choice) == ()
        assert choice == np.argmax(ob["chicken_oceans"] @ ob["robot_ocean"]), agent

    batch = batch_of_yards()
    choices = OraclePolicy(CONFIG).act(HIGH, batch.observations("high"))
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
    batched = oracle.act(LOW, {"robot_position": positions, "target_position": targets})
    assert batched.shape == (54,)
    for i, (position, target) in enumerate(zip(positions, targets, strict=True)):
        move = oracle.act(LOW, {"robot_position": position, "target_position": target})
        assert np.shape(move) == () and move == batched[i]
        now, best = best_move(position, target)
        after = np.linalg.norm(
            np.clip(position + DIRECTIONS[move] * CONFIG.move_amount, 0, 1) - target
        )
        assert after == pytest.approx(best), f"case {i}: {move} is not the best move"
        assert after < now, f"case {i}: move {move} does not bring the robot closer"


def test_oracle_low_on_batched_observations() -> None:
    batch = batch_of_yards()
    oracle = OraclePolicy(CONFIG)
    batch.step({"high": oracle.act(HIGH, batch.observations("high"))})
    obs = batch.observations("low")
    moves = oracle.act(LOW, obs)
    assert moves.shape == (4, 3)
    gaps = np.linalg.norm(obs["robot_position"] - obs["target_position"], axis=-1)
    batch.step({"low": moves})
    closer = np.linalg.norm(batch.positions - batch.observations("low")["target_position"], axis=-1)
    assert (closer < gaps).all()


def test_oracle_refuses_an_unknown_policy() -> None:
    with pytest.raises(ValueError, match="no policy 'middle'"):
        OraclePolicy(CONFIG).act("middle", {})
