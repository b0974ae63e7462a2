"""The progress line of `hmarl train`: returns, metrics, learning stats, faults, warnings."""

from __future__ import annotations

import itertools
import math
import time
from types import SimpleNamespace

from hmarl.report import TrainingProgress, console
from hmarl.tasks.chicken_yard import TASK
from hmarl.training import TrainConfig

HIGH, LOW = "high_level_policy", "low_level_policy"


def result(iteration: int, high: float, success: float, **hmarl: object) -> dict:
    return {
        "training_iteration": iteration,
        "num_env_steps_sampled_lifetime": 1000.0 * iteration,
        "env_runners": {
            "num_env_steps_sampled": 1000,
            "hmarl": {
                "return": {HIGH: high, LOW: 0.5},
                "metric": {"success_rate": success, "mean_compatibility": 0.7},
                "count": {"success_rate": 10.0},
            },
        },
        "learners": {
            HIGH: {
                "entropy": 1.5,
                "mean_kl_loss": 0.01,
                "clip_fraction": 0.2,
                "vf_explained_var": 0.4,
            },
            LOW: {
                "entropy": 2.0,
                "mean_kl_loss": 0.02,
                "clip_fraction": 0.1,
                "vf_explained_var": 0.6,
            },
        },
        "hmarl": {"schedule_open": 0.0, "schedule_stalled": 0.0, **hmarl},
    }


def lines(results: list[dict], every: float = 0.0) -> list[str]:
    plan = SimpleNamespace(
        cfg=TrainConfig(stop_iters=len(results)),
        task=TASK,
        policies={HIGH: None, LOW: None},
        time_left=None,
    )
    progress = TrainingProgress(plan, time.monotonic(), every=every)
    with console.capture() as captured:
        for r in results:
            progress.update(r)
        progress.close()
    return captured.get().splitlines()


def test_each_iteration_shows_returns_metrics_and_learning_per_policy() -> None:
    (line,) = lines([result(1, 0.75, 0.5)])
    assert line.startswith("iter    1  return (sampled actions) high_level 0.75 low_level 0.50")
    assert "success rate 0.500" in line and "mean compatibility 0.700" in line
    assert "[high_level: H 1.50 kl 0.01 clip 0.20 ev 0.40; low_level: H 2.00" in line


def test_an_iteration_without_finished_episodes_shows_the_last_values() -> None:
    _, second = lines([result(1, 0.75, 0.5), result(2, math.nan, math.nan)])
    assert "high_level 0.75" in second and "success rate 0.500" in second
    assert "iter    2" in second


def test_a_resumed_runs_first_rate_counts_only_its_own_steps(monkeypatch) -> None:
    # Resumed at iteration 1000, the lifetime count holds the million steps sampled
    # before; the first line's rate is this iteration's 1,000 steps over its one second.
    clock = itertools.chain([0.0, 0.0], itertools.repeat(1.0))  # the start, then the result
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    (line,) = lines([result(1000, 0.1, 0.3)])
    assert " 1,000 steps/s" in line


def test_faults_are_counted_and_each_error_shown_once() -> None:
    error = "chicken_yard env failed at step 7 (agents robot_1_low): boom"
    out = lines(
        [
            result(1, 0.1, 0.1, env_runner_failures=1, env_runner_errors=[error]),
            result(2, 0.1, 0.1, env_runner_failures=2, env_runner_errors=[error]),
        ]
    )
    assert sum(error in line for line in out) == 1
    assert "env failures 1" in out[0] and "env failures 2" in out[-1]


def test_a_stalled_schedule_is_reported_once_with_its_metric() -> None:
    out = lines(
        [result(1, 0.1, 0.3, schedule_stalled=1.0), result(2, 0.1, 0.3, schedule_stalled=1.0)]
    )
    warnings = [line for line in out if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "holds high_level_policy back" in warnings[0]
    assert "success_rate is 0.300, below 0.9" in warnings[0]


def test_progress_every_n_seconds_keeps_the_first_and_the_last_line_and_warnings() -> None:
    results = [result(i, 0.1, 0.3, schedule_stalled=float(i == 3)) for i in range(1, 6)]
    out = lines(results, every=3600.0)
    assert [line.split()[1] for line in out if line.startswith("iter")] == ["1", "5"]
    assert sum(line.startswith("warning:") for line in out) == 1
