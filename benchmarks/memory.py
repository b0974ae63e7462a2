"""Memory for agents that act at different times: the memory task, recurrent against stateless.

The memory task (``hmarl.tasks.memory``) shows its high level a cue at its first decision
and asks for it at its last, with more decisions and the low level's steps in between:
only memory tells the cue then. Each seed trains four variants, ``hmarl train --task
memory --time-budget B --seed S`` as a user would (a subprocess, Ray Tune):

- ``recurrent``: the task's default, an LSTM in the high level's RLlib module;
- ``stateless``: ``--memory none``, the same module without it;

each on hmarl's batched sampler and on RLlib's own (``--sampler rllib``, where hmarl's
StockEnvRunner keeps each agent's last decision across sample cuts). The final checkpoint
is scored greedily on held-out seeded episodes. Printed per variant: the success rate
(the final decision names the cue) as the mean and its 95 % interval over the seeds,
each seed's, and env steps per second of training; then the bar of issue 22: recurrent
at least 0.95, stateless at most chance (1 / cues) + 0.05.

Run: ``python benchmarks/memory.py [--seeds 3] [--budget 150] [--episodes 2000]`` (about
32 minutes on two cores); ``--quick``: one seed, 25 s per run, 300 episodes (a smoke run
of about 2.5 minutes, mostly Ray's start-up: too short to learn the task).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from spread import interval

from hmarl.evaluation import episode_seeds, evaluate
from hmarl.runs import load_trained

VARIANTS = {
    "recurrent, batched": [],
    "stateless, batched": ["--memory", "none"],
    "recurrent, rllib": ["--sampler", "rllib"],
    "stateless, rllib": ["--memory", "none", "--sampler", "rllib"],
}
RECURRENT_BAR, STATELESS_MARGIN = 0.95, 0.05


def run_seed(flags: list[str], seed: int, budget: float, out: Path, episodes: int) -> dict:
    """One `hmarl train --task memory` run; its final checkpoint's greedy success rate on
    ``episodes`` held-out episodes, the chance level, and env steps per second."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hmarl.cli",
            "train",
            "--task",
            "memory",
            "--time-budget",
            str(budget),
            "--seed",
            str(seed),
            "--no-evaluate",
            "--out",
            str(out),
            *flags,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    trained = load_trained(out)
    result = evaluate(
        trained.task, trained.env_config, trained.policy, episode_seeds(None, episodes)
    )
    (log,) = out.rglob("result.json")
    last = json.loads(log.read_text().splitlines()[-1])
    return {
        "success": result.metrics["success_rate"],
        "chance": 1 / trained.task.env_config(trained.env_config).cues,
        "rate": last["num_env_steps_sampled_lifetime"] / last["time_total_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="runs per variant, seeds 0..N-1")
    parser.add_argument("--budget", type=float, default=150.0, help="seconds per training run")
    parser.add_argument("--episodes", type=int, default=2000, help="held-out episodes")
    parser.add_argument("--quick", action="store_true", help="one seed, 25 s per run, 300 episodes")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.budget, args.episodes = 1, 25.0, 300
    runs: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="hmarl-memory-") as workdir:
        for seed in range(args.seeds):
            for variant, flags in VARIANTS.items():
                out = Path(workdir) / f"{variant.replace(', ', '-')}{seed}"
                run = run_seed(flags, seed, args.budget, out, args.episodes)
                runs[variant].append(run)
                print(
                    f"{variant:<20} seed {seed}: success {run['success']:.3f}, "
                    f"{run['rate']:,.0f} steps/s",
                    flush=True,
                )
    chance = runs["recurrent, batched"][0]["chance"]
    print(
        f"\n{args.seeds} seeds per variant, {args.budget:.0f} s each (the whole command), "
        f"{args.episodes} held-out episodes, greedy actions; chance = {chance:.3f}; "
        "mean ± 95 % interval over seeds"
    )
    print(f"{'variant':<20}{'success':>20}  {'per seed':<24}{'env steps/s':>16}")
    for variant, found in runs.items():
        success = [r["success"] for r in found]
        seeds = " ".join(f"{s:.3f}" for s in success)
        rate = interval([r["rate"] for r in found], ",.0f")
        print(f"{variant:<20}{interval(success, '.3f'):>20}  {seeds:<24}{rate:>16}")
    print(f"bar: recurrent >= {RECURRENT_BAR}, stateless <= chance + {STATELESS_MARGIN}")
    for variant, found in runs.items():
        worst = [r["success"] for r in found]
        if variant.startswith("recurrent"):
            met = min(worst) >= RECURRENT_BAR
        else:
            met = max(worst) <= chance + STATELESS_MARGIN
        print(f"  {variant:<20} {'met' if met else 'NOT met'} (every seed)")


if __name__ == "__main__":
    main()
