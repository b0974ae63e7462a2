"""The round-up's horizon, terminated or truncated: what the high level's value learns near it.

Both levels of the round-up observe the clock (``time_left``), so a state at the
horizon is a state with no time left: nothing is caught after it. With
``horizon="terminated"`` (the default) the env ends the episode there as the task's own
end, and the last decisions' targets are what they really earned. With ``"truncated"``
it is a time limit: each robot's last decision bootstraps from the value of
its final observation, at ``time_left`` = 0, a state the value never trains on
(bootstrap rows are loss-masked), so whatever the network says there is added to the
targets of the decisions before it, and through them to the values near the end.

Each variant trains the round-up (hmarl's batched sampler, the task's modules, seed
S) for the same wall-clock budget, with its ``horizon``. Then, on fresh episodes played by the
trained policy as it samples in training, every high-level decision's value V(s) is
set beside the return it actually got from there to the horizon (SMDP: each reward
discounted by gamma per env step since the decision). Printed per variant and
``time_left`` bin: the decisions, the mean value, the mean return, and the value's
bias (value - return); with termination the bias should stay near 0 up to the
horizon, with truncation it should grow there.

Run: ``python benchmarks/round_up_horizon.py [--budget 300] [--seed 0]``;
``--quick`` (two 45-second runs on 100-step episodes) checks that it works.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from ray.rllib.core.columns import Columns

from hmarl.algorithm import HierarchicalPPO
from hmarl.batched_env import select
from hmarl.evaluation import episode_seeds
from hmarl.global_state import GLOBAL_STATE
from hmarl.tasks.round_up import TASK
from hmarl.tasks.round_up.batched import BatchedRoundUp
from hmarl.tasks.round_up.simulation import HORIZONS, RoundUpConfig
from hmarl.training import TrainConfig, build_config, plan

BINS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.01)
"""Edges of the ``time_left`` bins (at the decision)."""
HIGH, LOW = "high_level_policy", "low_level_policy"


def train(cfg: TrainConfig, budget: float) -> HierarchicalPPO:
    algo = HierarchicalPPO(config=build_config(plan(cfg)))
    end = time.monotonic() + budget
    while time.monotonic() < end:
        algo.train()
    return algo


def _torch(obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in obs.items()}


def values_and_returns(
    modules: dict[str, Any], config: RoundUpConfig, seeds: list[int], gamma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every high-level decision on episodes of ``seeds``: its time left, V(s), return."""
    env = BatchedRoundUp(config, len(seeds))
    env.reset(seeds)
    rewards, decisions = [], []  # rewards[t]: (B, R); decisions: (t, due mask, values)
    for t in range(config.episode_steps):
        actions = {}
        for group, policy in (("high", HIGH), ("low", LOW)):
            due = env.due(group)
            actions[group] = np.zeros(due.shape, dtype=np.int64)
            if not due.any():
                continue
            module = modules[policy]
            obs = {Columns.OBS: _torch(select(env.observations(group), due))}
            with torch.no_grad():
                logits = module.forward_exploration(obs)[Columns.ACTION_DIST_INPUTS]
                dist = module.get_exploration_action_dist_cls().from_logits(logits)
                actions[group][due] = dist.sample().numpy()
                if group == "high":
                    # The value is a centralised critic: each decision's env's state.
                    rows = np.nonzero(due)[0]
                    state = {k: v[rows] for k, v in env.states().items()}
                    values = module.compute_values({**obs, GLOBAL_STATE: _torch(state)})
                    decisions.append((t, due, values.numpy()))
        rewards.append(env.step(actions).rewards["high"])
    # Return to go from each step: G[t] = r[t] + gamma * G[t + 1], nothing past the horizon.
    to_go = np.zeros((len(rewards) + 1, *rewards[0].shape))
    for t in range(len(rewards) - 1, -1, -1):
        to_go[t] = rewards[t] + gamma * to_go[t + 1]
    time_left, values, returns = [], [], []
    for t, due, value in decisions:
        time_left.append(np.full(len(value), 1.0 - t / config.episode_steps))
        values.append(value)
        returns.append(to_go[t][due])
    return np.concatenate(time_left), np.concatenate(values), np.concatenate(returns)


def report(time_left: np.ndarray, values: np.ndarray, returns: np.ndarray) -> None:
    print("high-level value against the return it got, by time left")
    print(f"{'time left':>12} {'decisions':>10} {'value':>8} {'return':>8} {'bias':>8}")
    for low, high in itertools.pairwise(BINS):
        inside = (time_left >= low) & (time_left < high)
        if not inside.any():
            continue
        v, g = values[inside].mean(), returns[inside].mean()
        label = f"[{low:.2f}, {min(high, 1.0):.2f}{']' if high > 1 else ')'}"
        print(f"{label:>12} {inside.sum():>10} {v:>8.3f} {g:>8.3f} {v - g:>+8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=200, help="fresh episodes measured")
    parser.add_argument("--quick", action="store_true", help="45 s each, 100-step episodes")
    args = parser.parse_args()
    env = {"episode_steps": 100} if args.quick else {}
    budget = 45.0 if args.quick else args.budget
    # Fewer envs on short runs, so that episodes end (and horizons are seen) early on.
    envs = 64 if args.quick else None
    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        with tempfile.TemporaryDirectory(prefix="hmarl-horizon-") as workdir:
            for variant in HORIZONS:
                cfg = TrainConfig(
                    task="round_up",
                    env={**env, "horizon": variant},
                    seed=args.seed,
                    out=Path(workdir) / variant,
                    time_budget=budget,
                    num_envs_per_env_runner=envs,
                )
                algo = train(cfg, budget)
                try:
                    iterations = algo.iteration
                    modules = {p: algo.get_module(p) for p in (HIGH, LOW)}
                    config = RoundUpConfig.from_dict(TASK.env_config_dict(cfg.env))
                    seeds = episode_seeds(None, args.episodes)  # held-out episodes
                    measured = values_and_returns(modules, config, seeds, cfg.gamma)
                finally:
                    algo.stop()
                print(f"\n{variant}: {iterations} iterations in {budget:.0f} s (seed {args.seed})")
                report(*measured)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
