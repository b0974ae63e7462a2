"""Where an env runner's randomness comes from: its episode seeds and its action draws.

A run's seed (``TrainConfig.seed``) decides everything, so two runs with the same
seed and settings sample the same episodes and learn the same weights (with
``num_env_runners=0``: remote runners race each other). Each env runner draws its
episode seeds from its own generator, seeded from the run's seed and the runner's
index, and RLlib seeds torch (its action sampling) from the run's seed too.

When a run is resumed, or a failed runner is brought back, a runner starting its
stream over would replay the episodes of the run's first iterations. So the
algorithm *reseeds* the runners then, with a salt that differs each time (the env
steps sampled so far, and how many runners were restored before): the new episodes
are new, and a run resumed twice from one checkpoint still samples the same ones.
The seeds stay below :data:`hmarl.evaluation.EVAL_SEED_BASE`, so training never
plays an evaluation episode.
"""

from __future__ import annotations

import numpy as np
import torch

from hmarl.evaluation import EVAL_SEED_BASE


def runner_generator(seed: int | None, worker_index: int | None, *salt: int) -> np.random.Generator:
    """The generator of an env runner's episode seeds."""
    return np.random.default_rng([seed or 0, worker_index or 0, *salt])


def reseeded(seed: int | None, worker_index: int | None, *salt: int) -> np.random.Generator:
    """A runner's new generator after a resume or a restart; torch's draws follow it.

    (At a runner's start RLlib has seeded torch already, from the run's seed.)
    """
    generator = runner_generator(seed, worker_index, *salt)
    torch.manual_seed(int(generator.integers(2**31)))
    return generator


def draw_seeds(generator: np.random.Generator, count: int) -> list[int]:
    """``count`` episode seeds for training: never an evaluation seed."""
    return generator.integers(0, EVAL_SEED_BASE, size=count).tolist()
