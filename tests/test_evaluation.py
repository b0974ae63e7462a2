"""Evaluation of any task: returns per agent-episode, metrics from infos, scores, seeds."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from tiny_task import TASK as CORRIDOR

from hmarl.evaluation import (
    EVAL_SEED_BASE,
    Result,
    compare,
    episode_seeds,
    evaluate,
    play_episode,
    task_score,
)
from hmarl.task import Metric, Score


class GoRight:
    """Always the last cell, always walk right: every episode is easy to add up by hand."""

    def act(self, policy_id: str, obs: np.ndarray) -> np.ndarray:
        return np.full(len(obs), 3 if policy_id == "planner" else 1)


WITH_METRICS = dataclasses.replace(
    CORRIDOR,
    metrics=(
        Metric("value", "planner", "value"),
        Metric("value_when_arrived", "planner", "value", where="arrived"),
    ),
    baselines={"right": lambda context: GoRight()},
    score=Score("value", reference="right"),
)


def test_returns_are_per_agent_episode_and_metrics_come_from_last_infos() -> None:
    seeds = [3, 4, 5]
    result = evaluate(WITH_METRICS, {"limit": 20}, GoRight(), seeds)
    env = CORRIDOR.make_env({"limit": 20})
    episodes = [play_episode(CORRIDOR, env, GoRight(), s) for s in seeds]
    planner = [e.returns["planner"] for e in episodes]
    walker = [e.returns["walker"] for e in episodes if "walker" in e.returns]
    assert result.returns["planner"] == pytest.approx(np.mean(planner))
    assert result.returns["walker"] == pytest.approx(np.mean(walker))
    # Walking right from cell p to cell 3 takes 3 - p steps: -0.1 each but the last, +1.
    for episode in episodes:
        start = round(float(env.reset(seed=episode.seed)[0]["planner"][-1]) * 3)
        if start < 3:
            assert episode.returns["walker"] == pytest.approx(1.0 - 0.1 * (2 - start))
    values = [e.infos["planner"]["value"] for e in episodes]
    assert result.metrics["value"] == pytest.approx(np.mean(values))
    arrived = [e.infos["planner"]["value"] for e in episodes if e.infos["planner"]["arrived"]]
    assert result.metrics["value_when_arrived"] == pytest.approx(np.mean(arrived))
    assert result.agent_episodes["planner"] == 3


def test_to_dict_is_the_json_shape() -> None:
    result = Result({"planner": 0.5, "walker": math.nan}, {"value": math.nan}, {"planner": 1})
    assert result.to_dict() == {"returns": {"planner": 0.5, "walker": None}, "value": None}


def test_the_score_against_a_reference_and_when_undefined() -> None:
    seeds = episode_seeds(None, 30)
    comparison = compare(WITH_METRICS, {}, GoRight(), seeds)
    assert list(comparison.policies) == ["trained", "random", "right"]
    assert (
        comparison.score == pytest.approx(1.0) and comparison.score_note == "0 = random, 1 = right"
    )

    same = {name: Result({}, {"value": 0.5}, {}) for name in ("trained", "random", "right")}
    score, note = task_score(WITH_METRICS, same)
    assert score is None and note.startswith("undefined: right and random score the same value")
    assert task_score(CORRIDOR, same) == (None, "the task declares no score")


def test_evaluation_seeds_are_disjoint_from_training_seeds() -> None:
    from hmarl.training import TrainConfig

    assert episode_seeds(None, 3) == [EVAL_SEED_BASE, EVAL_SEED_BASE + 1, EVAL_SEED_BASE + 2]
    assert episode_seeds(7, 2) == [7, 8]
    with pytest.raises(ValueError, match="seed must be in"):
        TrainConfig(seed=EVAL_SEED_BASE)
    with pytest.raises(ValueError, match="no episodes"):
        evaluate(CORRIDOR, {}, GoRight(), [])
