"""The suite (``benchmarks/marl_suite.py``): its statistic "env steps to 90 % of the best",
its reader of a run's curve and its order of runs."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "marl_suite.py"


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("marl_suite", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def points(values: list[float]) -> list[list[float]]:
    """[env steps, seconds, return] per iteration: 1,000 env steps and 2 s each."""
    return [[1000.0 * (i + 1), 2.0 * (i + 1), v] for i, v in enumerate(values)]


def test_a_lucky_first_iteration_does_not_count(suite) -> None:
    # Iteration 1 saw only the episodes that ended early (all food loaded): 1.0.
    lucky = points([1.0] + [0.2] * 30)
    assert suite.first_reach(lucky, 0.85) == (math.inf, math.inf)


def test_reached_when_the_mean_of_the_last_ten_iterations_is(suite) -> None:
    assert suite.REACH_WINDOW == 10
    # 0.0 for ten iterations, then 1.0: the mean of the last ten reaches 0.85 when
    # nine of them are 1.0, at iteration 19.
    run = points([0.0] * 10 + [1.0] * 20)
    assert suite.first_reach(run, 0.85) == (19_000.0, 38.0)
    assert suite.first_reach(run, 0.95) == (20_000.0, 40.0)
    assert suite.first_reach(points([1.0] * 9), 0.5) == (math.inf, math.inf)  # no full window


def test_the_curve_of_a_resumed_run_joins_its_legs(suite, tmp_path) -> None:
    # A resumed run writes a second trial folder whose clock starts again at 0 and which
    # redoes the iterations after the last checkpoint; iterations that ended no episode
    # have no return.
    def row(iteration: int, value: float | None) -> str:
        metric = {} if value is None else {"return": value}
        return json.dumps(
            {
                "training_iteration": iteration,
                "num_env_steps_sampled_lifetime": 100 * iteration,
                "time_this_iter_s": 2.0,
                "env_runners": {"hmarl": {"metric": metric}},
            }
        )

    legs = {"first": [row(1, 0.1), row(2, None), row(3, 0.3)], "second": [row(3, 0.4), row(4, 0.5)]}
    for age, (leg, rows) in enumerate(legs.items()):
        (tmp_path / leg).mkdir()
        result = tmp_path / leg / "result.json"
        result.write_text("\n".join(rows) + "\n")
        os.utime(result, (1000 + age, 1000 + age))
    assert suite.curve(tmp_path) == [[100, 2, 0.1], [300, 6, 0.4], [400, 8, 0.5]]


def test_runs_go_seed_by_seed(suite, tmp_path) -> None:
    # A suite stopped after its first four runs has both variants at seed 0, not one
    # variant at seeds 0 and 1 and the other at none.
    benches = [suite.Benchmark("lbf", "a", 10), suite.Benchmark("rware", "b", 10)]
    order = [
        (bench.env_id, variant, seed)
        for bench, variant, seed, _ in suite.schedule(
            benches, ["ippo", "hierarchical"], 2, tmp_path
        )
    ]
    assert order[:4] == [
        ("a", "ippo", 0),
        ("a", "hierarchical", 0),
        ("b", "ippo", 0),
        ("b", "hierarchical", 0),
    ]
    assert sorted(order) == sorted(
        (e, v, s) for e in "ab" for v in ["ippo", "hierarchical"] for s in range(2)
    )
    assert suite.schedule(benches, ["ippo"], 1, tmp_path)[0][3] == tmp_path / "a" / "ippo" / "seed0"


def test_each_variant_is_compared_with_its_own_baselines(suite, tmp_path) -> None:
    # In the hierarchical variant the hand-written policy acts through the goal wrapper
    # and scores differently on the same episodes: no average of the two policies.
    def record(variant: str, seed: int, fetch: float) -> dict:
        returns = {"trained": 10.0 + seed, "random": 0.1, "fetch": fetch}
        return {
            "env_id": "w",
            "variant": variant,
            "seed": seed,
            "curve": points([5.0] * 12),
            "returns": returns,
        }

    records = [
        record(v, s, 34.4 if v == "hierarchical" else 29.9)
        for v in suite.VARIANTS
        for s in range(2)
    ]
    summary = suite.summarize(records, [suite.Benchmark("rware", "w", 12_000)], tmp_path)
    assert summary["w"]["references"] == {
        "ippo": {"random": 0.1, "fetch": 29.9},
        "mappo": {"random": 0.1, "fetch": 29.9},
        "hierarchical": {"random": 0.1, "fetch": 34.4},
    }
    notes = (tmp_path / "summary.md").read_text().splitlines()[-1]
    assert notes == (
        "- w: ippo, mappo: random 0.100, fetch 29.900; "
        "hierarchical: random 0.100, fetch 34.400; 90 % of the best: 9.450"
    )
    assert (tmp_path / "w.png").exists()


def test_variants_with_the_same_baselines_share_them_whatever_their_seeds(suite) -> None:
    # 29.9 averaged over 3 seeds is 29.899999999999995, over 2 it is 29.9.
    references = {
        "ippo": {"fetch": float(suite.np.mean([29.9] * 2))},
        "mappo": {"fetch": float(suite.np.mean([29.9] * 3))},
        "hierarchical": {"fetch": 34.4},
    }
    assert references["ippo"] != references["mappo"]
    assert list(suite.shared_references(references).values()) == [
        ["ippo", "mappo"],
        ["hierarchical"],
    ]
