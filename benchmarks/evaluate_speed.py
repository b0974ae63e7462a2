"""Evaluation speed: `hmarl evaluate`'s batched path vs one env episode at a time.

Both use the same trained modules and the same seeded episodes, in one process:
- batched: :func:`hmarl.evaluation.evaluate`, every episode on the batched yard
  at once, one forward pass per level per step for all of them;
- one at a time: :func:`hmarl.evaluation.play_episode` on the yard's env, a
  forward pass per agent per step, the way the 2022 tutorial evaluated.

Then 10,000 episodes through the batched path, the issue's yardstick (< 30 s).

Run: ``python benchmarks/evaluate_speed.py [--checkpoint PATH] [--episodes 200]``
(without a checkpoint it trains one for 12 iterations first).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hmarl.evaluation import episode_seeds, evaluate, play_episode
from hmarl.runs import load_trained


def train_checkpoint(out: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hmarl.cli",
            "train",
            "--stop-iters",
            "12",
            "--no-evaluate",
            "--out",
            str(out),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="a trained checkpoint or run folder")
    parser.add_argument("--episodes", type=int, default=200, help="episodes for the comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hmarl-eval-") as tmp:
        trained = load_trained(args.checkpoint or train_checkpoint(Path(tmp) / "run"))
    task, config, policy = trained.task, trained.env_config, trained.policy
    seeds = episode_seeds(None, args.episodes)

    start = time.perf_counter()
    evaluate(task, config, policy, seeds)
    batched = args.episodes / (time.perf_counter() - start)

    env = task.make_env(config)
    start = time.perf_counter()
    for seed in seeds:
        play_episode(task, env, policy, seed)
    single = args.episodes / (time.perf_counter() - start)

    start = time.perf_counter()
    metrics = evaluate(task, config, policy, episode_seeds(None, 10_000)).metrics
    big = time.perf_counter() - start

    print(f"checkpoint: {trained.source}")
    print(f"batched evaluate:          {batched:10,.0f} episodes/s ({args.episodes} episodes)")
    print(f"one episode at a time:     {single:10,.0f} episodes/s ({args.episodes} episodes)")
    print(f"batched / one at a time:   {batched / single:10.1f}x (target >= 20x)")
    print(
        f"10,000 episodes batched:   {big:10.1f} s (target < 30 s); success "
        f"{metrics['success_rate']:.3f}, compatibility {metrics['mean_compatibility']:.3f}"
    )


if __name__ == "__main__":
    main()
