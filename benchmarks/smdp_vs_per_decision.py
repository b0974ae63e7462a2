"""SMDP vs per-decision discounting on the round-up: what time costs the high level.

A round-up robot's decision lasts as many env steps as the walk to its chicken.
With SMDP discounting (hmarl's default) a chicken caught k steps later is worth
gamma**k as much, so a far chicken must be worth the walk. With per-decision
discounting (RLlib's arithmetic, ``--discounting per-decision``) every decision
is discounted once however long it lasts: the walk costs nothing, and the high
level should drift toward "most compatible", whatever the distance.

Each variant trains ``hmarl train --task round_up --time-budget B --seed S`` as a
user would (a subprocess, Ray Tune, the batched sampler), seeds alternating between
the variants; each final checkpoint is scored greedily on the same held-out seeded
episodes against the task's dispatch rules. Printed per variant: the normalised
score (1 = the best rule) and what the robots did per episode: chickens caught,
compatibility per chicken, moves per chicken; each as the mean over seeds and its
95 % interval.

Run: ``python benchmarks/smdp_vs_per_decision.py [--seeds 3] [--budget 600]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from spread import interval

from hmarl.evaluation import compare, episode_seeds
from hmarl.runs import load_trained

VARIANTS = ("smdp", "per-decision")
EPISODES = 500


def train_and_score(discounting: str, seed: int, budget: float, out: Path) -> dict[str, float]:
    """One training run; its final policy's score and behaviour on held-out episodes."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hmarl.cli",
            "train",
            "--task",
            "round_up",
            "--time-budget",
            str(budget),
            "--seed",
            str(seed),
            "--discounting",
            discounting,
            "--no-evaluate",
            "--out",
            str(out),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    trained = load_trained(out)
    comparison = compare(
        trained.task, trained.env_config, trained.policy, episode_seeds(None, EPISODES)
    )
    metrics = comparison.policies["trained"].metrics
    catches = metrics["catches"]
    return {
        "score": comparison.score,
        "catches": catches,
        "compatibility per catch": metrics["caught_compatibility"] / max(catches, 1e-9),
        "moves per catch": metrics["moves_per_catch"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="runs per variant, seeds 0..N-1")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per training run")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="hmarl-smdp-") as workdir:
        for seed in range(args.seeds):
            for variant in VARIANTS:
                run = train_and_score(
                    variant, seed, args.budget, Path(workdir) / f"{variant}{seed}"
                )
                runs[variant].append(run)
                cells = ", ".join(f"{k} {v:.3f}" for k, v in run.items())
                print(f"{variant:<12} seed {seed}: {cells}", flush=True)
    print(
        f"\n{args.seeds} seeds per variant, {args.budget:.0f} s of training each, "
        f"{EPISODES} held-out episodes (mean ± 95 % interval)"
    )
    columns = list(runs[VARIANTS[0]][0])
    print(f"{'':<12}  " + "  ".join(f"{c:>24}" for c in columns))
    for variant, results in runs.items():
        cells = [interval([r[c] for r in results], ".3f") for c in columns]
        print(f"{variant:<12}  " + "  ".join(f"{cell:>24}" for cell in cells))


if __name__ == "__main__":
    main()
