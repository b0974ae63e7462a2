"""The round-up's dispatch rules: the hand-written policies a trained hierarchy must beat.

Each rule scores every chicken from a deciding robot's high-level observation; the
robot takes the best chicken that no other robot is heading for (any chicken, if
every one is claimed) and walks there with the yard's greedy mover
(:func:`~hmarl.tasks.chicken_yard.baselines.greedy_move`). The rules, weakest first:

================  ===========================================================
rule              a chicken's score
================  ===========================================================
nearest           minus its distance
most_compatible   its compatibility
rate_greedy       compatibility per step: compatibility / (1 + travel), the 1
                  for the deciding step
priced_greedy     compatibility - price * travel
priced_sharing    priced_greedy's, but a chicken another robot would score
                  higher (at the same price, from where it decides next: its
                  target's place, once it has walked there) is taken only if
                  every chicken is
================  ===========================================================

where travel is the moves the greedy mover needs to come within reach
(:func:`travel_steps`). ``priced_sharing`` is ``priced_greedy`` that also reads the
other robots' personalities and targets, as the trained policy may: the strongest
rule we know. The price is tuned on training seeds by :func:`tune_price`;
:data:`PRICE` is what that found at the defaults for both priced rules, so
evaluation does not tune again (``python -m hmarl.tasks.round_up.baselines``
repeats the search).
Observation fields may carry any leading dimensions: one agent's observation gives a
scalar action, a batch of them an array of actions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hmarl.tasks.chicken_yard.baselines import compatibilities, greedy_move
from hmarl.tasks.chicken_yard.simulation import distances
from hmarl.tasks.round_up.agents import HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY
from hmarl.tasks.round_up.simulation import RoundUpConfig

Observation = dict[str, np.ndarray]
Rule = Callable[[Observation, RoundUpConfig], np.ndarray]
"""(observation, config) -> (..., C) a score per chicken; the highest is taken."""

PRICE = 0.05
"""The priced rules' price per step of travel, as :func:`tune_price` found it for each
at the defaults (seeds 0..99 of :data:`PRICES`; see the module docstring)."""

PRICES = tuple(round(0.01 * i, 2) for i in range(11))
"""The prices :func:`tune_price` tries by default: 0.00, 0.01, ..., 0.10."""

LEFT_TO_ANOTHER = 100.0
"""What ``priced_sharing`` takes off a chicken another robot scores higher: more than
any two scores differ (compatibility lies in [-1, 1], travel is a few dozen moves)."""


def moves_between(start: np.ndarray, end: np.ndarray, config: RoundUpConfig) -> np.ndarray:
    """Moves the greedy mover needs from ``start`` to come within reach of ``end``
    (positions in the last axis, the rest broadcast).

    Diagonal moves cover both axes at once, so the longer axis decides; an estimate,
    since reach is Euclidean.
    """
    gap = np.abs(end - start).max(-1)
    return np.ceil(np.maximum(gap - config.closeness_threshold, 0.0) / config.move_amount)


def travel_steps(obs: Observation, config: RoundUpConfig) -> np.ndarray:
    """(..., C) moves the greedy mover needs to come within reach of each chicken."""
    return moves_between(obs["robot_position"][..., None, :], obs["chicken_positions"], config)


def nearest(obs: Observation, config: RoundUpConfig) -> np.ndarray:
    return -distances(obs["robot_position"][..., None, :], obs["chicken_positions"])


def most_compatible(obs: Observation, config: RoundUpConfig) -> np.ndarray:
    return compatibilities(obs)


def rate_greedy(obs: Observation, config: RoundUpConfig) -> np.ndarray:
    return compatibilities(obs) / (1.0 + travel_steps(obs, config))


def priced_greedy(price: float) -> Rule:
    """Compatibility minus ``price`` per step of travel."""

    def score(obs: Observation, config: RoundUpConfig) -> np.ndarray:
        return compatibilities(obs) - price * travel_steps(obs, config)

    return score


def priced_sharing(price: float) -> Rule:
    """``priced_greedy(price)``, leaving each chicken to the robot that scores it best.

    Another robot's score for a chicken counts its travel from where it will next
    decide: its target's place, after the moves there and the deciding step, if it is
    heading for one; where it stands, if it is deciding. A chicken another robot
    scores higher drops below every chicken this robot scores best, so the robot
    takes one of those if there is any.
    """
    mine = priced_greedy(price)

    def score(obs: Observation, config: RoundUpConfig) -> np.ndarray:
        scores = mine(obs, config)  # (..., C)
        targets = obs["other_targets"]  # (..., R - 1, C)
        if targets.shape[-2] == 0:
            return scores
        chickens, here = obs["chicken_positions"], obs["other_positions"]
        heading = targets.sum(-1) > 0.5  # (..., R - 1)
        there = targets @ chickens  # (..., R - 1, 2) each one's target; 0s while deciding
        first_leg = np.where(heading, moves_between(here, there, config) + 1, 0.0)
        start = np.where(heading[..., None], there, here)
        travel = first_leg[..., None] + moves_between(
            start[..., None, :], chickens[..., None, :, :], config
        )
        theirs = np.einsum("...ro,...co->...rc", obs["other_oceans"], obs["chicken_oceans"])
        best_other = (theirs - price * travel).max(-2)  # (..., C)
        return np.where(scores >= best_other, scores, scores - LEFT_TO_ANOTHER)

    return score


RULES: dict[str, Rule] = {
    "nearest": nearest,
    "most_compatible": most_compatible,
    "rate_greedy": rate_greedy,
    "priced_greedy": priced_greedy(PRICE),
    "priced_sharing": priced_sharing(PRICE),
}
"""The task's baselines by name, weakest first."""


def pick(scores: np.ndarray, claimed: np.ndarray) -> np.ndarray:
    """The best-scoring chicken no other robot is heading for (any, if all are claimed)."""
    free = claimed < 0.5
    free |= ~free.any(axis=-1, keepdims=True)
    return np.where(free, scores, -np.inf).argmax(-1)


class DispatchPolicy:
    """A rule for the high level, the yard's greedy mover for the low level."""

    def __init__(self, config: RoundUpConfig, rule: Rule) -> None:
        self.config = config
        self.rule = rule

    def act(self, policy_id: str, obs: Observation) -> np.ndarray:
        if policy_id == HIGH_LEVEL_POLICY:
            return pick(self.rule(obs, self.config), obs["chicken_claimed"])
        if policy_id == LOW_LEVEL_POLICY:
            return greedy_move(obs, self.config.move_amount)
        raise ValueError(f"the round-up's dispatch rules have no policy {policy_id!r}")


PRICED_RULES: dict[str, Callable[[float], Rule]] = {
    "priced_greedy": priced_greedy,
    "priced_sharing": priced_sharing,
}
"""The rules with a price, by name: what :func:`tune_price` tunes."""


def tune_price(
    rule: str = "priced_greedy",
    config: RoundUpConfig | None = None,
    seeds: Sequence[int] = range(100),
    prices: Sequence[float] = PRICES,
) -> dict[float, float]:
    """The priced ``rule``'s caught compatibility per robot per episode at each price.

    Played on the batched env, on training seeds (the evaluation's seeds, from
    :data:`hmarl.evaluation.EVAL_SEED_BASE` on, are refused: a price tuned on them
    would flatter the baseline). The best price is ``max(table, key=table.get)``.
    """
    from hmarl.evaluation import EVAL_SEED_BASE, evaluate
    from hmarl.tasks.round_up.task import TASK

    config = config or RoundUpConfig()
    if max(seeds) >= EVAL_SEED_BASE:
        raise ValueError(f"tune on training seeds (below {EVAL_SEED_BASE:,}), not evaluation's")
    return {
        price: evaluate(
            TASK, config.to_dict(), DispatchPolicy(config, PRICED_RULES[rule](price)), seeds
        ).metrics["caught_compatibility"]
        for price in prices
    }


if __name__ == "__main__":
    for name in PRICED_RULES:
        table = tune_price(name)
        for price, caught in table.items():
            print(f"{name} at price {price:.2f}: caught compatibility {caught:.3f}")
        print(f"{name}'s best price: {max(table, key=table.get)}")
