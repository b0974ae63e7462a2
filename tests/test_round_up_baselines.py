"""The round-up's dispatch rules: what each picks, on single observations and batches, and how
they rank on seeded episodes."""

from __future__ import annotations

import numpy as np
import pytest

from hmarl.evaluation import EVAL_SEED_BASE, baseline_policies, evaluate
from hmarl.tasks.round_up import TASK
from hmarl.tasks.round_up.baselines import (
    PRICE,
    PRICES,
    RULES,
    DispatchPolicy,
    pick,
    priced_greedy,
    travel_steps,
    tune_price,
)
from hmarl.tasks.round_up.batched import BatchedRoundUp
from hmarl.tasks.round_up.env import RoundUpEnv
from hmarl.tasks.round_up.simulation import RoundUpConfig

CONFIG = RoundUpConfig()
HIGH, LOW = "high_level_policy", "low_level_policy"


def crafted() -> dict[str, np.ndarray]:
    """A robot at the centre; chicken 0 near and dull, 1 far and ideal, 2 between, 3 claimed
    by the one other robot, who stands by it and is the one chicken 0 suits.

    Personalities are unit vectors along two axes, so compatibilities are easy to read.
    """
    u = np.array([1.0, 0.0, 0.0, 0.0, 0.0])
    v = np.array([0.0, 1.0, 0.0, 0.0, 0.0])
    return {
        "robot_ocean": u,
        "robot_position": np.array([0.5, 0.5]),
        "chicken_oceans": np.stack([0.1 * u + 0.995 * v, u, 0.8 * u + 0.6 * v, u]),
        "chicken_positions": np.array([[0.5, 0.57], [0.96, 0.05], [0.72, 0.5], [0.5, 0.52]]),
        "chicken_claimed": np.array([0.0, 0.0, 0.0, 1.0]),
        "other_positions": np.array([[0.5, 0.55]]),
        "other_oceans": v[None],
        "other_targets": np.array([[0.0, 0.0, 0.0, 1.0]]),
    }


def test_travel_is_the_longer_axis_in_moves() -> None:
    obs = crafted()
    # Gaps 0.07, 0.46, 0.22 and 0.02, less the reach of 0.03, in moves of 0.03, rounded up.
    assert list(travel_steps(obs, CONFIG)) == [2, 15, 7, 0]


@pytest.mark.parametrize(
    ("rule", "chicken"),
    [
        ("nearest", 0),
        ("most_compatible", 1),
        ("rate_greedy", 2),
        ("priced_greedy", 2),
        ("priced_sharing", 2),
    ],
)
def test_each_rule_picks_and_skips_the_claimed_chicken(rule: str, chicken: int) -> None:
    # Chicken 3, the nearest and the most compatible, is claimed by another robot.
    choice = DispatchPolicy(CONFIG, RULES[rule]).act(HIGH, crafted())
    assert np.shape(choice) == () and choice == chicken


def test_a_price_trades_compatibility_for_travel() -> None:
    obs = crafted()
    assert pick(priced_greedy(0.0)(obs, CONFIG), obs["chicken_claimed"]) == 1
    assert pick(priced_greedy(1.0)(obs, CONFIG), obs["chicken_claimed"]) == 0


def test_sharing_leaves_a_chicken_to_the_robot_it_suits_better() -> None:
    obs = crafted()
    # The other robot stands by chicken 2 now, deciding, and chicken 2 suits it perfectly.
    obs["other_positions"] = np.array([[0.72, 0.47]])
    obs["other_oceans"] = obs["chicken_oceans"][2][None]
    obs["other_targets"] = np.zeros((1, 4))
    obs["chicken_claimed"] = np.zeros(4)
    rule = RULES["priced_sharing"]
    # Chicken 3, ideal and next to this robot, is this robot's by either rule.
    assert pick(RULES["priced_greedy"](obs, CONFIG), obs["chicken_claimed"]) == 3
    assert pick(rule(obs, CONFIG), obs["chicken_claimed"]) == 3
    # With chicken 3 far away in the corner: priced alone, chicken 2 is best (0.8 - 7
    # moves' price); left to the other robot, the far ideal chicken 1 (1.0 - 15 moves'
    # price) beats the near dull chicken 0.
    obs["chicken_positions"][3] = [0.05, 0.95]
    assert pick(RULES["priced_greedy"](obs, CONFIG), obs["chicken_claimed"]) == 2
    assert pick(rule(obs, CONFIG), obs["chicken_claimed"]) == 1
    # With no one else, it is priced_greedy.
    alone = {**obs, "other_oceans": np.zeros((0, 5)), "other_targets": np.zeros((0, 4))}
    assert pick(rule(alone, CONFIG), obs["chicken_claimed"]) == 2


def test_with_every_chicken_claimed_any_will_do() -> None:
    scores = np.array([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]])
    claimed = np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    assert list(pick(scores, claimed)) == [1, 1]


def test_rules_act_on_batches_of_the_env_and_the_batched_env() -> None:
    env = RoundUpEnv(CONFIG)
    obs, _ = env.reset(seed=0)
    batch = BatchedRoundUp(CONFIG, num_envs=4)
    batch.reset([0, 1, 2, 3])
    for rule in RULES.values():
        policy = DispatchPolicy(CONFIG, rule)
        choices = policy.act(HIGH, batch.observations("high"))
        assert choices.shape == (4, 3)
        for agent, ob in obs.items():
            assert policy.act(HIGH, ob) == choices[0, int(agent.split("_")[1]) - 1]
    batch.step({"high": choices})
    moves = DispatchPolicy(CONFIG, RULES["nearest"]).act(LOW, batch.observations("low"))
    assert moves.shape == (4, 3) and moves.dtype.kind == "i"


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="no policy 'middle'"):
        DispatchPolicy(CONFIG, RULES["nearest"]).act("middle", {})


def test_the_rules_rank_as_documented() -> None:
    """On 40 seeded episodes (the order holds by wide margins; the numbers loosely)."""
    cfg = TASK.env_config_dict()
    policies = baseline_policies(TASK, cfg, 0)
    assert list(policies) == ["random", *RULES]
    caught = {
        name: evaluate(TASK, cfg, policy, range(40)).metrics["caught_compatibility"]
        for name, policy in policies.items()
    }
    # Compatibility lies in [-1, 1]: catching blind gains nothing on average.
    assert abs(caught["random"]) < 1 and abs(caught["nearest"]) < 1.5
    assert caught["most_compatible"] > caught["nearest"] + 8
    assert caught["rate_greedy"] > caught["most_compatible"] + 0.3
    assert caught["priced_greedy"] > caught["rate_greedy"] + 1
    assert caught["priced_greedy"] == pytest.approx(14.0, abs=1.0)
    assert caught["priced_sharing"] > caught["priced_greedy"] + 0.5


@pytest.mark.parametrize("rule", ["priced_greedy", "priced_sharing"])
def test_the_documented_price_is_the_best_on_training_seeds(rule: str) -> None:
    """The documented search itself: 0.00, 0.01, ..., 0.10 on training seeds 0-99."""
    table = tune_price(rule)
    assert list(table) == list(PRICES) and len(PRICES) == 11
    assert max(table, key=table.get) == PRICE


def test_the_price_is_never_tuned_on_evaluation_seeds() -> None:
    with pytest.raises(ValueError, match="training seeds"):
        tune_price(seeds=[EVAL_SEED_BASE], prices=(PRICE,))
