"""Time to quality: how soon `hmarl train` reaches a good yard policy, over several seeds.

Each seed runs ``hmarl train --time-budget B --seed S`` exactly as a user would (a
subprocess, Ray Tune, the batched sampler, the task's modules) with a checkpoint
every two iterations; then every checkpoint is scored greedily on the same 500
held-out seeded episodes against the random policy and the oracle. Quality is a
normalised high-level score >= 0.9 with low-level success >= 0.99; the time is the
checkpoint's completion (its marker file) since the command started. In the same
run, the hand-written batched PPO of ``handwritten_ppo.py`` (same rules, same two
networks, no RLlib) trains the same seeds: its time counts from its process's start
too (imports included), with its evaluations excluded.

Other variants for comparison (``--variants``): ``rllib`` is hmarl with RLlib's own
sampler (``--sampler rllib``); ``default`` is hmarl with RLlib's default MLPs on the
flattened observations (``--modules default``). Those MLPs get the same
observations as the task's modules, but not their structure: the set module scores
each chicken from its own features with the robot's (their OCEAN vectors, the
elementwise product whose sum is the compatibility, offset and distance), where
the MLP must find the compatibility from the flat vector. ``one_thread`` is hmarl
with torch on one thread (``--torch-threads 1``), as every run was before a
time-budget run got a thread per core (``hmarl.training.torch_threads_of``).

Prints, per variant: each seed's time, the mean with a 95 % t-interval over the
seeds that reached quality, the final score, and env steps per second of training.

Run: ``python benchmarks/time_to_quality.py [--seeds 5] [--budget 60] [--variants ...]``
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spread import interval

from hmarl.checkpoints import MARKER, find_checkpoints
from hmarl.evaluation import compare, episode_seeds
from hmarl.runs import load_trained

SCORE, SUCCESS = 0.9, 0.99
EPISODES = 500
FLAGS = {
    "hmarl": [],
    "one_thread": ["--torch-threads", "1"],
    "rllib": ["--sampler", "rllib"],
    "default": ["--modules", "default"],
}

HANDWRITTEN = r"""
import json, sys, time
started = float(sys.argv[1])
sys.path.insert(0, sys.argv[4])
from handwritten_ppo import time_to_quality
imported = time.time() - started
reached, result = time_to_quality(int(sys.argv[2]), float(sys.argv[3]))
print("RESULT" + json.dumps({"reached": None if reached is None else reached + imported,
                             "rate": result.robot_steps / result.seconds}))
"""


def hmarl_seed(
    flags: list[str],
    seed: int,
    budget: float,
    out: Path,
    episodes: int = EPISODES,
    checkpoint_every: int = 2,
) -> dict:
    """One `hmarl train` run with extra ``flags``; its time to quality (checkpoints every
    ``checkpoint_every`` iterations), final score and success (on ``episodes`` held-out
    episodes) and its env steps per second."""
    start = time.time()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hmarl.cli",
            "train",
            "--time-budget",
            str(budget),
            "--seed",
            str(seed),
            "--checkpoint-every",
            str(checkpoint_every),
            "--keep-checkpoints",
            "0",  # every one: each is scored afterwards
            "--no-evaluate",
            "--out",
            str(out),
            *flags,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seeds = episode_seeds(None, episodes)  # held out: training never uses these seeds
    reached, score, success = None, math.nan, math.nan
    for checkpoint in find_checkpoints(out):
        trained = load_trained(checkpoint)
        comparison = compare(trained.task, trained.env_config, trained.policy, seeds)
        score = comparison.score
        success = comparison.policies["trained"].metrics["success_rate"]
        if reached is None and score >= SCORE and success >= SUCCESS:
            reached = (checkpoint / MARKER).stat().st_mtime - start
    (log,) = out.rglob("result.json")
    last = json.loads(log.read_text().splitlines()[-1])
    rate = last["num_env_steps_sampled_lifetime"] / last["time_total_s"]
    return {"reached": reached, "score": score, "success": success, "rate": rate}


def handwritten_seed(seed: int, budget: float) -> dict:
    """One run of the hand-written PPO in a fresh process (its imports counted)."""
    folder = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", HANDWRITTEN, str(time.time()), str(seed), str(budget), folder],
        check=True,
        capture_output=True,
        text=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT"))
    return json.loads(line[6:])


def main() -> None:
    known = [*FLAGS, "handwritten"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="runs per variant, seeds 0..N-1")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per hmarl run")
    parser.add_argument(
        "--variants",
        default="hmarl,handwritten",
        help=f"comma-separated: {', '.join(known)}",
    )
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(known))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(known)}")
    if args.seeds < 1 or args.budget <= 0:
        parser.error(
            f"--seeds must be at least 1 and --budget positive, got {args.seeds}, {args.budget}"
        )
    summary = []
    with tempfile.TemporaryDirectory(prefix="hmarl-ttq-") as workdir:
        for variant in variants:
            runs = []
            for seed in range(args.seeds):
                if variant == "handwritten":
                    run = handwritten_seed(seed, args.budget)
                else:
                    out = Path(workdir) / f"{variant}{seed}"
                    run = hmarl_seed(FLAGS[variant], seed, args.budget, out)
                runs.append(run)
                when = "-" if run["reached"] is None else f"{run['reached']:.1f} s"
                extra = (
                    f"  final score {run['score']:.3f}, success {run['success']:.3f}"
                    if "score" in run
                    else ""
                )
                print(
                    f"{variant:<11} seed {seed}: quality at {when:>7}{extra}, "
                    f"{run['rate']:,.0f} steps/s",
                    flush=True,
                )
            summary.append((variant, runs))
    print()
    for variant, runs in summary:
        times = [r["reached"] for r in runs if r["reached"] is not None]
        quality = (
            f"{interval(times)} s (min {min(times):.1f}, max {max(times):.1f})"
            if times
            else "never"
        )
        unit = "robot-steps/s" if variant == "handwritten" else "env steps/s of training"
        print(
            f"{variant:<11} time to quality, {len(times)} of {len(runs)} seeds: {quality}; "
            f"{interval([r['rate'] for r in runs], ',.0f')} {unit}"
        )
        if "score" in runs[0]:
            print(
                f"{'':<11} final score {interval([r['score'] for r in runs], '.3f')}, "
                f"success {interval([r['success'] for r in runs], '.3f')} "
                f"after {args.budget:.0f} s"
            )
    print(
        f"target: hmarl at quality within 20 s of the command's start (mean over seeds); "
        f"quality = score >= {SCORE} and success >= {SUCCESS} on {EPISODES} held-out episodes"
    )


if __name__ == "__main__":
    main()
