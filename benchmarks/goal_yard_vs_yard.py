"""The goal yard against the chicken yard: does a declared hierarchy train as well as a coded one?

``goal_yard`` is the chicken yard rebuilt as a flat yard plus a declaration
(:mod:`hmarl.tasks.goal_yard`); ``chicken_yard`` codes its hierarchy by hand. Each seed
trains both, ``hmarl train --task T --time-budget B --seed S`` as a user would (a
subprocess, Ray Tune, the batched sampler, the task's modules), with a checkpoint every
two iterations (``--checkpoint-every``); then every checkpoint is scored greedily on the
same held-out seeded episodes against the random policy and the task's oracle
(``time_to_quality.py``'s ``hmarl_seed``). Printed per task, as the mean and its 95 %
interval over the seeds: the final normalised score (0 = random, 1 = the task's oracle),
the final success rate, the time to quality (score >= 0.9 and success >= 0.99; the seeds
that reached it), and env steps per second of training.

Read the columns side by side with what differs between the tasks:

- the worlds: a goal-yard robot catches whatever chicken it reaches, so about 4 in 10
  episodes at the defaults end a robot's walk at another chicken than the one it chose
  (tests/test_goal_yard.py counts them), and the goal yard's oracle catches less
  compatible chickens than the chicken yard's;
- the success rate: in the goal yard, catching any chicken in time, which even a random
  walk mostly does in 999 moves; in the chicken yard, reaching the chosen one;
- mean compatibility: in the goal yard, of the chicken caught (robots out of time are left
  out); in the chicken yard, of the one chosen;
- env steps: the chicken yard counts its decision step, the goal yard's decisions take
  no world time.

Run: ``python benchmarks/goal_yard_vs_yard.py [--seeds 3] [--budget 60]``;
``--quick``: one seed, 35 s each, 100 episodes, a checkpoint every 10 iterations (a smoke
run of about 2 minutes; scoring every checkpoint is most of a run's time).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from spread import interval
from time_to_quality import EPISODES, SCORE, SUCCESS, hmarl_seed

TASKS = ("chicken_yard", "goal_yard")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="runs per task, seeds 0..N-1")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per training run")
    parser.add_argument("--episodes", type=int, default=EPISODES, help="held-out episodes")
    parser.add_argument(
        "--checkpoint-every", type=int, default=2, help="iterations between scored checkpoints"
    )
    parser.add_argument(
        "--quick", action="store_true", help="one seed, 35 s, 100 episodes, checkpoints every 10"
    )
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.budget, args.episodes, args.checkpoint_every = 1, 35.0, 100, 10
    runs: dict[str, list[dict]] = {task: [] for task in TASKS}
    with tempfile.TemporaryDirectory(prefix="hmarl-goal-yard-") as workdir:
        for seed in range(args.seeds):
            for task in TASKS:
                out = Path(workdir) / f"{task}{seed}"
                run = hmarl_seed(
                    ["--task", task], seed, args.budget, out, args.episodes, args.checkpoint_every
                )
                runs[task].append(run)
                when = "-" if run["reached"] is None else f"{run['reached']:.1f} s"
                print(
                    f"{task:<12} seed {seed}: score {run['score']:.3f}, success "
                    f"{run['success']:.3f}, quality at {when}, {run['rate']:,.0f} steps/s",
                    flush=True,
                )
    print(
        f"\n{args.seeds} seeds per task, {args.budget:.0f} s each (the whole command), "
        f"{args.episodes} held-out episodes; mean ± 95 % interval over seeds"
    )
    print(f"{'':<24}" + "".join(f"{task:>22}" for task in TASKS))
    rows = {
        "normalised score": lambda rs: interval([r["score"] for r in rs], ".3f"),
        "success rate": lambda rs: interval([r["success"] for r in rs], ".3f"),
        "time to quality (s)": time_to_quality,
        "env steps/s": lambda rs: interval([r["rate"] for r in rs], ",.0f"),
    }
    for name, cell in rows.items():
        print(f"{name:<24}" + "".join(f"{cell(runs[task]):>22}" for task in TASKS))
    print(f"quality = score >= {SCORE} and success >= {SUCCESS}")


def time_to_quality(runs: list[dict]) -> str:
    times = [r["reached"] for r in runs if r["reached"] is not None]
    reached = f"{len(times)}/{len(runs)} seeds"
    return f"{interval(times)} ({reached})" if times else f"never ({reached})"


if __name__ == "__main__":
    main()
