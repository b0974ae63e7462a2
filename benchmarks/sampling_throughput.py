"""Training throughput: hmarl's batched sampler against RLlib's own, side by side in one run.

For each task, the same algorithm (HierarchicalPPO, the task's modules and
settings, its training settings among them) is trained with RLlib's
``MultiAgentEnvRunner`` (``--sampler rllib``, 16 envs per runner, the stock default)
and with hmarl's ``BatchedEnvRunner`` (256 envs as arrays), in this process with no
remote runners, and then with the batched sampler on two remote runners (``--num-env-runners 2
--num-envs-per-env-runner 256``). The number is env steps per second of training:
sampling *and* learning, over whole iterations after a warm-up one, without Ray's
and Tune's start-up (see ``startup.py`` for that). The process's peak memory is
printed too (``soak.py`` follows it over a long run).

``lbf`` (with the ``benchmarks`` extra) runs ``Foraging-8x8-2p-2f-coop-v3``: its stock
contestant steps lbforaging's own env, its batched ones hmarl's NumPy re-implementation
(``hmarl.tasks.lbf.batched``, lockstep-identical to the package).

Run: ``python benchmarks/sampling_throughput.py [--iterations 10] [--tasks round_up,lbf]``
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import ray

from hmarl.algorithm import HierarchicalPPO
from hmarl.registry import load_task
from hmarl.training import TrainConfig, build_config, plan, with_task_training

CONTESTANTS = (
    ("rllib", 16, 0),
    ("batched", 256, 0),
    ("batched", 256, 2),
)
"""(sampler, envs per runner, remote runners)."""

ENV = {"lbf": {"env_id": "Foraging-8x8-2p-2f-coop-v3"}}
"""Env settings per task (the rest default)."""


def throughput(
    task: str, sampler: str, envs: int, runners: int, iterations: int, out: Path
) -> float:
    """Env steps per second of training over ``iterations`` iterations after a warm-up."""
    cfg = TrainConfig(
        task=task,
        env=ENV.get(task, {}),
        sampler=sampler,
        num_envs_per_env_runner=envs,
        num_env_runners=runners,
        stop_iters=1,
        out=out,
    )
    cfg, _ = with_task_training(cfg, load_task(task), told=set())
    algo = HierarchicalPPO(config=build_config(plan(cfg)))
    try:
        before = algo.train()["num_env_steps_sampled_lifetime"]
        start = time.perf_counter()
        for _ in range(iterations):
            result = algo.train()
        elapsed = time.perf_counter() - start
        return (result["num_env_steps_sampled_lifetime"] - before) / elapsed
    finally:
        algo.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10, help="measured iterations each")
    parser.add_argument("--tasks", default="chicken_yard,round_up", help="comma-separated")
    args = parser.parse_args()
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hmarl-throughput-") as tmp:
        for task in args.tasks.split(","):
            for n, (sampler, envs, runners) in enumerate(CONTESTANTS):
                out = Path(tmp) / f"{task}-{n}"
                rate = throughput(task, sampler, envs, runners, args.iterations, out)
                rows.append((task, sampler, envs, runners, rate))
                print(
                    f"{task:<13} {sampler:<8} {envs:>4} envs/runner  {runners} remote runners"
                    f"  {rate:>9,.0f} env steps/s of training",
                    flush=True,
                )
    ray.shutdown()
    print()
    for task in args.tasks.split(","):
        rate = {(s, r): v for t, s, _, r, v in rows if t == task}
        stock = rate[("rllib", 0)]
        print(
            f"{task}: batched / rllib = {rate[('batched', 0)] / stock:.1f}x in-process, "
            f"{rate[('batched', 2)] / stock:.1f}x with 2 remote runners "
            f"(target >= 5x; >= 10,000 env steps/s for the yard, >= 15,000 for LBF)"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
