"""Environment steps per second: hmarl's yard vs the 2022 tutorial's, side by side.

All three run the same uniform random policy on the default yard in one process:
- ``ChickenYardEnv`` and the tutorial's env, one env step at a time (env steps/s);
- ``BatchedYard`` with many yards at once (yard-steps/s: yards x steps per second).

Run: ``python benchmarks/env_throughput.py [--seconds S] [--yards B]``
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
from tutorial_env import TutorialEnv

from hmarl.batched import BatchedYard
from hmarl.yard import ChickenYardEnv


def env_steps_per_second(env, seconds: float, seed: int = 0) -> float:
    """Step ``env`` with uniform random actions for the agents due to act."""
    # Python's own generator: NumPy's costs microseconds a call, which would swamp
    # the step being measured.
    rng = random.Random(seed)
    spaces = {a: env.action_spaces[a].n for a in env.possible_agents}
    steps, episode = 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        obs, _ = env.reset(seed=episode)
        episode += 1
        due, done = list(obs), False
        while not done:
            obs, _, terminated, truncated, _ = env.step({a: rng.randrange(spaces[a]) for a in due})
            # Final observations of finishing agents come too; they are not due.
            due = [a for a in obs if not (terminated.get(a) or truncated.get(a))]
            done = terminated["__all__"] or truncated["__all__"]
            steps += 1
    return steps / (time.perf_counter() - start)


def batched_steps_per_second(yards: int, seconds: float, seed: int = 0) -> float:
    """Yard-steps per second of the batched yard under uniform random actions."""
    rng = np.random.default_rng(seed)
    yard = BatchedYard()
    chickens = yard.config.num_chickens
    steps, episode = 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        yard.reset(range(episode * yards, (episode + 1) * yards))
        episode += 1
        shape = (yards, yard.config.num_robots)
        yard.step(rng.integers(chickens, size=shape))
        steps += 1
        while not yard.all_done and time.perf_counter() - start < seconds:
            yard.step(rng.integers(8, size=shape))
            steps += 1
    return steps * yards / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="time per contestant")
    parser.add_argument("--yards", type=int, default=4096, help="yards in the batch")
    args = parser.parse_args()

    tutorial = env_steps_per_second(TutorialEnv(), args.seconds)
    ours = env_steps_per_second(ChickenYardEnv(), args.seconds)
    batched = batched_steps_per_second(args.yards, args.seconds)
    print(f"tutorial env (re-implemented):  {tutorial:12,.0f} env steps/s")
    print(f"ChickenYardEnv:                 {ours:12,.0f} env steps/s")
    print(f"BatchedYard ({args.yards} yards):      {batched:12,.0f} yard-steps/s")
    print(f"ChickenYardEnv / tutorial: {ours / tutorial:.1f}x (target >= 2x)")
    print(f"BatchedYard / tutorial:    {batched / tutorial:.0f}x (target >= 1000x)")


if __name__ == "__main__":
    main()
