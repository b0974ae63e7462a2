"""Train tiny runs in one process, one Ray session; print a digest of each run's weights.

``python weights_digest.py OUT SEED...`` trains the chicken yard with each sampler and
each seed, in that order, and prints one JSON object: sampler -> seed -> digest. The
reproducibility test runs it in processes with different string hash seeds.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import ray

from hmarl.algorithm import HierarchicalPPO
from hmarl.training import TrainConfig, build_config, plan


def digest(algo: HierarchicalPPO) -> str:
    weights = algo.learner_group.get_weights()
    h = hashlib.sha256()
    for module in sorted(weights):
        for name in sorted(weights[module]):
            h.update(f"{module}/{name}".encode())
            h.update(np.ascontiguousarray(weights[module][name]).tobytes())
    return h.hexdigest()


def main(out: Path, seeds: list[int]) -> dict[str, dict[int, str]]:
    found: dict[str, dict[int, str]] = {}
    for sampler in ("batched", "rllib"):
        for seed in seeds:
            cfg = TrainConfig(
                out=out / f"{sampler}-{seed}",
                seed=seed,
                sampler=sampler,
                train_batch_size=300,
                minibatch_size=100,
                num_epochs=1,
                num_envs_per_env_runner=2,
                stop_iters=2,
                schedule_threshold=0.0,
                env={"timeout": 60},
            )
            algo = HierarchicalPPO(config=build_config(plan(cfg)))
            try:
                for _ in range(cfg.stop_iters):
                    algo.train()
                found.setdefault(sampler, {})[seed] = digest(algo)
            finally:
                algo.stop()
    return found


if __name__ == "__main__":
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        print(json.dumps(main(Path(sys.argv[1]), [int(s) for s in sys.argv[2:]])))
    finally:
        ray.shutdown()
