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

Which draw goes to which agent depends on the order the agents are visited in, and
RLlib visits an episode's agents in the order of a set of their ids, which changes
with Python's string hash seed (``PYTHONHASHSEED``) from process to process:
:func:`visit_agents_in_order` makes it one order, so the seed alone decides.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


def visit_agents_in_order() -> None:
    """Make RLlib's connectors visit each episode's agents sorted by id, in every process.

    Replaces ``ConnectorV2.single_agent_episode_iterator`` (a static method; read in
    RLlib 2.60.0, ``ray/rllib/connectors/connector_v2.py``), which every connector
    piece uses to walk the agents of multi-agent episodes, in the order of
    ``MultiAgentEpisode.get_agents_that_stepped()`` or ``.agent_ids``: Python sets
    of agent ids, whose order follows the process's string hash seed. That order is
    the row order of each module's batch: in the env runner it decides which agent
    gets which of torch's action draws, in the learner which rows a minibatch
    holds, so two processes with the same seed learned different weights. Single-agent
    episodes, and what the iterator yields, are unchanged; only the order is fixed.
    ``tests/test_training.py::test_any_process_learns_the_same_weights`` fails if a
    later RLlib orders agents another way again.
    """
    from ray.rllib.connectors.connector_v2 import ConnectorV2
    from ray.rllib.env.multi_agent_episode import MultiAgentEpisode

    if getattr(ConnectorV2, "_hmarl_agents_in_order", False):
        return
    iterate = ConnectorV2.single_agent_episode_iterator

    def in_order(
        episodes: list,
        agents_that_stepped_only: bool = True,
        zip_with_batch_column: Any = None,
    ) -> Iterator[Any]:
        if not episodes or not isinstance(episodes[0], MultiAgentEpisode):
            yield from iterate(episodes, agents_that_stepped_only, zip_with_batch_column)
            return
        taken: dict[tuple, int] = {}
        for episode in episodes:
            agents = (
                episode.get_agents_that_stepped() if agents_that_stepped_only else episode.agent_ids
            )
            for agent in sorted(agents, key=str):
                agent_episode = episode.agent_episodes[agent]
                if zip_with_batch_column is None:
                    yield agent_episode
                    continue
                # As RLlib's: the batch items of this (episode, agent, module), in turn.
                key = (
                    agent_episode.multi_agent_episode_id,
                    agent_episode.agent_id,
                    agent_episode.module_id,
                )
                items = zip_with_batch_column[key]
                if len(items) <= taken.get(key, 0):
                    raise ValueError(
                        "Invalid `zip_with_batch_column` data: Must structurally match the "
                        "single-agent contents in the given list of (multi-agent) episodes!"
                    )
                yield agent_episode, items[taken.get(key, 0)]
                taken[key] = taken.get(key, 0) + 1

    ConnectorV2.single_agent_episode_iterator = staticmethod(in_order)
    ConnectorV2._hmarl_agents_in_order = True
