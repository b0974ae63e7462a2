"""The benchmark tasks' reference policies: random and the hand-written baselines.

For each env id, hmarl's evaluation (the batched env, held-out seeds from 1,000,000,000)
plays every policy of ``hmarl.evaluation.baseline_policies`` on the same episodes and
prints the benchmark's score, the package's episode return summed over the agents
(LBF: the share of the food loaded; RWARE: deliveries), as the mean over episodes
with its 95 % t-interval.

Run: ``python benchmarks/marl_baselines.py [--episodes N] [--env-id ID ...] [--quick]``
(``--quick``: 200 LBF and 20 RWARE episodes, under a minute; needs the extra).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from spread import interval

from hmarl.evaluation import baseline_policies, episode_seeds, run_batched
from hmarl.registry import load_task

ENV_IDS = [
    "Foraging-8x8-2p-2f-coop-v3",
    "Foraging-10x10-3p-3f-v3",
    "Foraging-15x15-4p-3f-v3",
    "Foraging-2s-8x8-2p-2f-coop-v3",
    "rware-tiny-2ag-v2",
    "rware-tiny-4ag-v2",
    "rware-small-4ag-v2",
]


def episode_returns(task, config: dict, policy, seeds: list[int]) -> np.ndarray:
    """The benchmark's score of each episode (every agent's final info carries it)."""
    tally = next(iter(run_batched(task, config, policy, seeds).values()))
    agents = tally.count // len(seeds)
    # The agents of an episode end together and are tallied side by side.
    return tally.column("episode_return")[::agents]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, help="episodes per env id (1000 LBF, 200 RWARE)")
    parser.add_argument("--env-id", action="append", help="only these ids (repeatable)")
    parser.add_argument("--quick", action="store_true", help="200 LBF, 20 RWARE episodes")
    args = parser.parse_args()
    print(f"{'env id':<32} {'policy':<10} {'return':>16}  episodes  seconds")
    for env_id in args.env_id or ENV_IDS:
        lbf = env_id.startswith("Foraging")
        task = load_task("lbf" if lbf else "rware")
        episodes = args.episodes or ((200 if lbf else 20) if args.quick else (1000 if lbf else 200))
        config = {"env_id": env_id}
        seeds = episode_seeds(None, episodes)
        for name, policy in baseline_policies(task, config, seeds[0]).items():
            began = time.perf_counter()
            values = episode_returns(task, config, policy, seeds)
            took = time.perf_counter() - began
            score = interval(values.tolist(), ".3f")
            print(f"{env_id:<32} {name:<10} {score:>16}  {len(values):>8}  {took:>7.1f}")


if __name__ == "__main__":
    main()
