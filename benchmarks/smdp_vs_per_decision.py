"""SMDP vs per-decision discounting on the round-up: what time costs the high level.

A round-up robot's decision lasts as many env steps as the walk to its chicken.
With SMDP discounting (hmarl's default) a chicken caught k steps later is worth
gamma**k as much, so a far chicken must be worth the walk. With per-decision
discounting (RLlib's arithmetic, ``--discounting per-decision``) every decision
is discounted once however long it lasts: the walk costs nothing, and the high
level should drift toward "most compatible", whatever the distance.

Per-decision discounting with gamma 0.99 per *decision* also looks much further
ahead than 0.99 per env step does, so the comparison would be unfair to it without
a third variant: ``per-decision, gamma**L``, the same discounting with the high
level's gamma set to 0.99**L, where L is the mean decision length (env steps per
high-level decision) of the SMDP run of the same seed, measured on training seeds.
Its horizon in env steps is then the SMDP run's, on average; only the timing of
each discount differs (the low level decides every step, so its gamma stays 0.99).

Each variant trains ``hmarl train --task round_up --time-budget B --seed S`` as a
user would (a subprocess, Ray Tune, the batched sampler; the third with a task file
that sets the high level's gamma), seeds in turn, the variants in the order above;
each final checkpoint is scored greedily on the same held-out seeded episodes against
the task's dispatch rules. Printed per variant: the normalised score (1 = the best
rule) and what the robots did per episode: chickens caught, compatibility per
chicken, moves per chicken; each as the mean over seeds and its 95 % interval.

Run: ``python benchmarks/smdp_vs_per_decision.py [--seeds 3] [--budget 600]``;
``--quick`` (one seed, 25-second runs, 100 episodes) checks that it works.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from spread import interval

from hmarl.batched_env import select
from hmarl.evaluation import compare, episode_seeds
from hmarl.runs import Trained, load_trained
from hmarl.tasks.round_up import TASK

VARIANTS = ("smdp", "per-decision", "per-decision, gamma**L")
GAMMA = 0.99
"""hmarl's default gamma, per env step (SMDP) or per decision (per-decision)."""
LENGTH_EPISODES = 100
"""Training-seed episodes the SMDP policy's mean decision length is measured on."""
RETUNED_TASK = """\
import dataclasses

from hmarl.tasks.round_up import TASK as ROUND_UP

# The round-up, its high level's gamma per decision set to {gamma} ({base}**{length:.2f});
# its other PPO settings (the centralised critic) as the task has them.
HIGH = {{**ROUND_UP.ppo.get("high_level_policy", {{}}), "gamma": {gamma}}}
TASK = dataclasses.replace(ROUND_UP, ppo={{**ROUND_UP.ppo, "high_level_policy": HIGH}})
"""


def mean_decision_length(trained: Trained, episodes: int) -> float:
    """Env steps per high-level decision of ``trained``, greedy, on training seeds 0..N-1."""
    env = trained.task.make_batched_env(trained.env_config, episodes)
    env.reset(list(range(episodes)))
    robots = len(env.groups["high"])
    decisions = robot_steps = 0
    while not env.over.all():
        robot_steps += robots * int((~env.over).sum())
        actions = {}
        for group, policy in (("high", "high_level_policy"), ("low", "low_level_policy")):
            due = env.due(group)
            actions[group] = np.zeros(due.shape, dtype=np.int64)
            if due.any():
                actions[group][due] = trained.policy.act(
                    policy, select(env.observations(group), due)
                )
        decisions += int(env.due("high").sum())
        env.step(actions)
    return robot_steps / decisions


def train_and_score(
    variant: str, seed: int, budget: float, out: Path, episodes: int, task_ref: str = "round_up"
) -> tuple[dict[str, float], Trained]:
    """One training run; its final policy's score and behaviour on held-out episodes."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hmarl.cli",
            "train",
            "--task",
            task_ref,
            "--time-budget",
            str(budget),
            "--seed",
            str(seed),
            "--discounting",
            "smdp" if variant == "smdp" else "per-decision",
            "--no-evaluate",
            "--out",
            str(out),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=out.parent,  # where the retuned task's file is (``--task retuned_N:TASK``)
    )
    trained = load_trained(out, task=TASK)
    comparison = compare(
        trained.task, trained.env_config, trained.policy, episode_seeds(None, episodes)
    )
    metrics = comparison.policies["trained"].metrics
    catches = metrics["catches"]
    return {
        "score": comparison.score,
        "catches": catches,
        "compatibility per catch": metrics["caught_compatibility"] / max(catches, 1e-9),
        "moves per catch": metrics["moves_per_catch"],
    }, trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="runs per variant, seeds 0..N-1")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per training run")
    parser.add_argument("--episodes", type=int, default=500, help="held-out episodes scored")
    parser.add_argument("--quick", action="store_true", help="1 seed, 25 s runs, 100 episodes")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.budget, args.episodes = 1, 25.0, 100
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="hmarl-smdp-") as workdir:
        work = Path(workdir)
        for seed in range(args.seeds):
            length = None
            for variant in VARIANTS:
                task_ref, note = "round_up", ""
                if variant == "per-decision, gamma**L":
                    gamma = GAMMA**length
                    module = f"retuned_{seed}"
                    (work / f"{module}.py").write_text(
                        RETUNED_TASK.format(gamma=gamma, base=GAMMA, length=length)
                    )
                    task_ref, note = f"{module}:TASK", f" (L {length:.2f}, gamma {gamma:.4f})"
                out = work / f"variant{VARIANTS.index(variant)}-seed{seed}"
                run, trained = train_and_score(
                    variant, seed, args.budget, out, args.episodes, task_ref
                )
                if variant == "smdp":
                    length = mean_decision_length(trained, LENGTH_EPISODES)
                runs[variant].append(run)
                cells = ", ".join(f"{k} {v:.3f}" for k, v in run.items())
                print(f"{variant:<24} seed {seed}: {cells}{note}", flush=True)
    print(
        f"\n{args.seeds} seeds per variant, {args.budget:.0f} s of training each, "
        f"{args.episodes} held-out episodes (mean ± 95 % interval)"
    )
    columns = list(runs[VARIANTS[0]][0])
    print(f"{'':<24}  " + "  ".join(f"{c:>24}" for c in columns))
    for variant, results in runs.items():
        cells = [interval([r[c] for r in results], ".3f") for c in columns]
        print(f"{variant:<24}  " + "  ".join(f"{cell:>24}" for cell in cells))


if __name__ == "__main__":
    main()
