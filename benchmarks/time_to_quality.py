"""Time to quality: how soon `hmarl train` reaches a good policy on this machine.

Runs ``hmarl train --time-budget B`` exactly as a user would (a subprocess, Ray
Tune, default settings) with a checkpoint every two iterations, then scores every
checkpoint greedily on the same 500 seeded episodes against the random and oracle
policies. Quality is a normalised high-level score >= 0.9 with low-level success
>= 0.99; the time is the checkpoint's age since the command started. Then the same
budget again with RLlib's default MLP modules on flattened observations
(``--modules default``), to show what the custom modules buy.

Run: ``python benchmarks/time_to_quality.py [--budget 180] [--only custom]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hmarl.checkpoints import find_checkpoints
from hmarl.evaluation import compare, episode_seeds
from hmarl.runs import load_trained

SCORE, SUCCESS = 0.9, 0.99
EPISODES = 500


def run_training(modules: str, budget: float, out: Path) -> tuple[float, float]:
    """Train with the command line; return its start time (epoch seconds) and duration."""
    start = time.time()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hmarl.cli",
            "train",
            "--time-budget",
            str(budget),
            "--checkpoint-every",
            "2",
            "--no-evaluate",
            "--modules",
            modules,
            "--out",
            str(out),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return start, time.time() - start


def sampling_rates(out: Path) -> tuple[float, float]:
    """Env steps per second: per second of training (learning included), and while
    sampling alone (RLlib's smoothed sampling timer, last iteration)."""
    (log,) = out.rglob("result.json")
    last = json.loads(log.read_text().splitlines()[-1])
    overall = last["num_env_steps_sampled_lifetime"] / last["time_total_s"]
    sampling = (
        last["env_runners"]["num_env_steps_sampled"] / last["timers"]["env_runner_sampling_timer"]
    )
    return overall, sampling


def report(modules: str, budget: float, workdir: Path) -> None:
    out = workdir / modules
    start, took = run_training(modules, budget, out)
    seeds = episode_seeds(None, EPISODES)  # held out: training never uses these seeds
    reached = None
    for checkpoint in find_checkpoints(out):
        trained = load_trained(checkpoint)
        comparison = compare(trained.task, trained.env_config, trained.policy, seeds)
        ours, random, oracle = (
            comparison.policies[k].metrics for k in ("trained", "random", "oracle")
        )
        score = comparison.score
        age = (checkpoint / "rllib_checkpoint.json").stat().st_mtime - start
        print(
            f"  {modules:>7} {age:6.1f} s  score {score:6.3f}  success {ours['success_rate']:.3f}"
            f"  steps {ours['mean_steps']:5.1f}"
        )
        if reached is None and score >= SCORE and ours["success_rate"] >= SUCCESS:
            reached = age
    when = f"{reached:.0f} s" if reached is not None else f"not within {budget:.0f} s"
    print(f"{modules} modules: score >= {SCORE} with success >= {SUCCESS} at {when}")
    print(
        f"{modules} modules: final score {score:.3f}, success {ours['success_rate']:.3f}, "
        f"steps to arrive {ours['mean_steps']:.1f} (oracle {oracle['mean_steps']:.1f}); "
        f"compatibility {ours['mean_compatibility']:.3f} "
        f"(random {random['mean_compatibility']:.3f}, oracle {oracle['mean_compatibility']:.3f})"
    )
    overall, sampling = sampling_rates(out)
    print(f"{modules} modules: the command took {took:.0f} s of its {budget:.0f} s budget")
    print(
        f"{modules} modules: env steps/s during training: {overall:,.0f} per second of "
        f"training (sampling and learning), {sampling:,.0f} while sampling"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=180.0, help="seconds per training run")
    parser.add_argument("--only", choices=("custom", "default"), help="run one variant only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hmarl-ttq-") as workdir:
        for modules in [args.only] if args.only else ["custom", "default"]:
            report(modules, args.budget, Path(workdir))
    print(f"target: score >= {SCORE} and success >= {SUCCESS} within 180 s; >= 1,500 steps/s")


if __name__ == "__main__":
    main()
