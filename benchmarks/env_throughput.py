"""Environment steps per second: hmarl's yard vs the 2022 tutorial's, side by side.

All three run the same uniform random policy on the default yard in one process:
- ``ChickenYardEnv`` and the tutorial's env, one env step at a time (env steps/s);
- ``BatchedYard`` with many yards at once (yard-steps/s: yards x steps per second),
  counting the time its resets take (one generator per seed, as the env seeds) and
  without it.

Run: ``python benchmarks/env_throughput.py [--seconds S] [--yards B]``
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
from tutorial_env import TutorialEnv

from hmarl.tasks.chicken_yard.batched import BatchedYard
from hmarl.tasks.chicken_yard.env import ChickenYardEnv


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


def batched_steps_per_second(yards: int, seconds: float, seed: int = 0) -> tuple[float, float]:
    """Yard-steps per second of the batched yard under uniform random actions:
    counting the time to reset the yards, and counting steps alone."""
    rng = np.random.default_rng(seed)
    yard = BatchedYard(num_envs=yards)
    shape = (yards, yard.config.num_robots)
    steps, episode, resetting = 0, 0, 0.0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        began = time.perf_counter()
        yard.reset(range(episode * yards, (episode + 1) * yards))
        resetting += time.perf_counter() - began
        episode += 1
        yard.step({"high": rng.integers(yard.config.num_chickens, size=shape)})
        steps += 1
        while not yard.all_over and time.perf_counter() - start < seconds:
            # int8: the same uniform directions, drawn four times faster than int64.
            yard.step({"low": rng.integers(8, size=shape, dtype=np.int8)})
            steps += 1
    elapsed = time.perf_counter() - start
    return steps * yards / elapsed, steps * yards / (elapsed - resetting)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="time per contestant")
    parser.add_argument("--yards", type=int, default=16384, help="yards in the batch")
    args = parser.parse_args()

    tutorial = env_steps_per_second(TutorialEnv(), args.seconds)
    ours = env_steps_per_second(ChickenYardEnv(), args.seconds)
    batched, stepping = batched_steps_per_second(args.yards, args.seconds)
    print(f"tutorial env (re-implemented):      {tutorial:12,.0f} env steps/s")
    print(f"ChickenYardEnv:                     {ours:12,.0f} env steps/s")
    print(
        f"BatchedYard, {args.yards} yards:         {batched:12,.0f} yard-steps/s (resets included)"
    )
    print(f"BatchedYard, steps alone:           {stepping:12,.0f} yard-steps/s")
    print(f"ChickenYardEnv / tutorial: {ours / tutorial:6.1f}x (target >= 2x)")
    print(
        f"BatchedYard / tutorial:    {batched / tutorial:6.0f}x (target >= 1000x; "
        f"{stepping / tutorial:.0f}x for steps alone)"
    )


if __name__ == "__main__":
    main()
