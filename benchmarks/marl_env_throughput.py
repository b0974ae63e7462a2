"""Env steps per second: lbforaging's and rware's own envs vs hmarl's batched re-implementations.

For each env id, the same uniform random actions:

- the package's env (``gym.make(env_id)``, unwrapped), one env step at a time, reset
  with a new seed when an episode ends;
- hmarl's batched env with ``--envs`` envs at once (env steps/s: envs x steps per
  second), resetting each env whose episode ended as the batched sampler does, through
  the package's own reset code; also the time of one batched step alone, in ms.

Side by side, with the ratio. The batched sampler's target downstream is 15,000 env
steps a second of *training* (sampling and learning) on 2 cores for
Foraging-8x8-2p-2f-coop-v3, so one step of 256 envs should take well under 2 ms.

Run: ``python benchmarks/marl_env_throughput.py [--seconds S] [--envs B] [--quick]``
(``--quick``: 1 second a contestant, about a minute in all; needs the extra:
``pip install -e ".[benchmarks]"``).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
from marl_baselines import ENV_IDS  # the same seven variants as the reference policies'

from hmarl.registry import load_task


def task_of(env_id: str):
    return load_task("lbf" if env_id.startswith("Foraging") else "rware")


def package_steps_per_second(env_id: str, seconds: float) -> float:
    """The package's env, stepped one env step at a time with uniform random actions."""
    task_of(env_id).env_config({"env_id": env_id})  # registers the ids the packages lack
    env = gym.make(env_id, disable_env_checker=True).unwrapped
    rng = np.random.default_rng(0)
    actions = env.action_space[0].n
    agents = len(env.action_space)
    steps, episode = 0, 0
    env.reset(seed=episode)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        # A block of actions drawn at once: NumPy's per-call cost would show otherwise.
        for row in rng.integers(actions, size=(100, agents)).tolist():
            _, _, done, _, _ = env.step(row)
            steps += 1
            if done:
                episode += 1
                env.reset(seed=episode)
    return steps / (time.perf_counter() - start)


def batched_steps_per_second(env_id: str, envs: int, seconds: float) -> tuple[float, float]:
    """Env steps/s of the batched env (resets included), and ms per batched step alone."""
    task = task_of(env_id)
    batched = task.make_batched_env({"env_id": env_id}, envs)
    rng = np.random.default_rng(0)
    shape = (envs, batched.num_agents)
    actions = batched.action_spaces["agents"].n
    next_seed = envs
    batched.reset(list(range(envs)))
    steps, stepping = 0, 0.0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        chosen = rng.integers(actions, size=shape)
        began = time.perf_counter()
        step = batched.step({"agents": chosen})
        stepping += time.perf_counter() - began
        steps += 1
        if step.over.any():
            count = int(step.over.sum())
            batched.reset(list(range(next_seed, next_seed + count)), where=step.over)
            next_seed += count
    return steps * envs / (time.perf_counter() - start), 1000 * stepping / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time per contestant")
    parser.add_argument("--envs", type=int, default=256, help="envs in the batch")
    parser.add_argument("--quick", action="store_true", help="1 second per contestant")
    parser.add_argument("--env-id", action="append", help="only these ids (repeatable)")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else args.seconds
    print(
        f"{'env id':<32} {'package env':>14} {f'batched x{args.envs}':>16} "
        f"{'ratio':>8} {'ms/step':>8}"
    )
    for env_id in args.env_id or ENV_IDS:
        package = package_steps_per_second(env_id, seconds)
        batched, ms = batched_steps_per_second(env_id, args.envs, seconds)
        print(
            f"{env_id:<32} {package:>14,.0f} {batched:>16,.0f} {batched / package:>7.0f}x "
            f"{ms:>8.2f}"
        )
    print("(env steps per second, uniform random actions; ms/step: one batched step alone)")


if __name__ == "__main__":
    main()
