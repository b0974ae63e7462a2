"""Stale log-probabilities: how many of the round-up's rows were sampled by older weights.

A round-up decision lasts about ten env steps and each iteration samples eight per env,
so most high-level decisions end in a later sample than the one they started in, after
a weight update: their ``action_logp`` is the probability the *older* policy gave the
action (the policy that took it). PPO's ratio for them starts away from 1 at the first
minibatch, before any gradient step (see ``hmarl.sampler``, "Stale log-probabilities").

Trains the round-up as ``hmarl train --task round_up`` does (the batched sampler, the
task's modules, seed S) and, at every update, before its first gradient step, sets the
learner's log-probability of each trained row beside the sampled one. Printed per
policy and update: its rows, the share sampled by older weights (the two differ), the
mean |ratio - 1| over those rows, and the first minibatch's clip fraction (the share
of rows whose ratio is already outside PPO's clip range).

Early on, while the robots cannot walk, a decision lasts hundreds of steps and there
are few rows; ``--checkpoint`` continues a trained run (a run folder's checkpoint of
``hmarl train --task round_up``) to see the trained regime.

Run: ``python benchmarks/stale_logp.py [--iterations 60] [--seed 0] [--checkpoint PATH]``;
``--quick`` runs 8.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from ray.rllib.core.columns import Columns

import hmarl.learner
from hmarl.algorithm import HierarchicalPPO
from hmarl.training import TrainConfig, build_config, plan

SAME = 1e-4
"""Log-probabilities closer than this are the same weights' (float noise aside)."""


def measure(module: Any, batch: Any, clip: float) -> dict[str, float]:
    """The trained rows' ratio under ``module`` (the learner's weights now)."""
    trained = batch[Columns.LOSS_MASK].bool()
    with torch.no_grad():
        logits = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS]
        dist = module.get_train_action_dist_cls().from_logits(logits)
        now = dist.logp(batch[Columns.ACTIONS])[trained].numpy().astype(np.float64)
    then = batch[Columns.ACTION_LOGP][trained].numpy().astype(np.float64)
    ratio = np.exp(now - then)
    stale = np.abs(now - then) > SAME
    return {
        "rows": float(len(ratio)),
        "stale": float(stale.mean()),
        "|ratio-1| stale": float(np.abs(ratio[stale] - 1).mean()) if stale.any() else 0.0,
        "clipped": float((np.abs(ratio - 1) > clip).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", type=Path, help="continue this round-up checkpoint")
    parser.add_argument("--quick", action="store_true", help="8 iterations")
    args = parser.parse_args()
    iterations = 8 if args.quick else args.iterations
    found: dict[str, list[dict[str, float]]] = {}
    algo: HierarchicalPPO | None = None

    class Measured(hmarl.learner.PerModuleMinibatches):
        def __init__(self, batch: Any, *rest: Any, **kwargs: Any) -> None:
            learner = algo.learner_group._learner  # the local learner (no remote ones)
            for module_id, module_batch in batch.policy_batches.items():
                clip = learner.config.get_config_for_module(module_id).clip_param
                found.setdefault(module_id, []).append(
                    measure(learner.module[module_id].unwrapped(), module_batch, clip)
                )
            super().__init__(batch, *rest, **kwargs)

    hmarl.learner.PerModuleMinibatches = Measured
    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        with tempfile.TemporaryDirectory(prefix="hmarl-stale-") as workdir:
            cfg = TrainConfig(task="round_up", seed=args.seed, out=Path(workdir) / "run")
            algo = HierarchicalPPO(config=build_config(plan(cfg)))
            try:
                if args.checkpoint is not None:
                    algo.restore_from_path(str(args.checkpoint.resolve()))
                for _ in range(iterations):
                    algo.train()
            finally:
                algo.stop()
    finally:
        ray.shutdown()
    start = f"from {args.checkpoint}" if args.checkpoint else "from scratch"
    print(
        f"round-up {start}, {iterations} updates (seed {args.seed}); the first has no older weights"
    )
    for module_id, updates in found.items():
        print(f"\n{module_id}")
        columns = list(updates[0])
        print(f"{'update':>6} " + " ".join(f"{c:>16}" for c in columns))
        for i, row in enumerate(updates, 1):
            print(f"{i:>6} " + " ".join(f"{row[c]:>16.3f}" for c in columns))
        later = updates[1:]
        mean = {c: np.mean([row[c] for row in later]) for c in columns}
        print(f"{'mean':>6} " + " ".join(f"{mean[c]:>16.3f}" for c in columns) + "  (updates 2-)")


if __name__ == "__main__":
    main()
