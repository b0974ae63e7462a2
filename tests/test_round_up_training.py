"""The round-up end to end: a staged episode through either sampler and the learner.

Two robots, two chickens, a horizon of 5 steps, gamma 0.9, lambda 1. The yard is
staged (the same numbers a reader can check by hand) and the policies are scripted:
the high level takes the nearest chicken, the low level always moves S (+y), and
every value is 1 (one parameter, which a learning rate of 1e-9 leaves at 1).

========  ==========================  ===============================
          robot 1 at (0.5, 0.5)       robot 2 at (0.2, 0.2)
========  ==========================  ===============================
chicken   0 at (0.5, 0.55), c = 0.6   1 at (0.2, 0.3), c = 1.0
step 1    decides: chicken 0          decides: chicken 1
step 2    moves, catches (0.3 each)   moves (and is paid 0.3 waiting)
step 3    decides again               moves
step 4    moves                       moves, catches (0.5 each)
step 5    moves; the horizon          decides again; the horizon
========  ==========================  ===============================

The team reward pays both high levels the mean catch: 0.6 / 2 at step 2, 1.0 / 2 at
step 4. Each iteration samples 3 env steps: the first ends mid-episode, so the last
rows before its cut bootstrap (their targets add the value of what comes next); the
second ends at the horizon, which terminates (no value added).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.evaluation.postprocessing import Postprocessing
from torch import nn

import hmarl.learner
import hmarl.tasks.chicken_yard.simulation as yard_simulation
import hmarl.tasks.round_up.batched as batched_round_up
from hmarl.advantages import DISCOUNTS
from hmarl.algorithm import HierarchicalPPO
from hmarl.tasks.chicken_yard.simulation import YardLayout
from hmarl.training import TrainConfig, build_config, plan

HIGH, LOW = "high_level_policy", "low_level_policy"
GAMMA = 0.9
SOUTH = 4


def staged(layout: YardLayout) -> YardLayout:
    """The yard of the module docstring (in place of what the seed drew)."""
    e1 = [1.0, 0.0, 0.0, 0.0, 0.0]
    return YardLayout(
        chicken_positions=np.array([[0.5, 0.55], [0.2, 0.3]]),
        chicken_oceans=np.array([[0.6, 0.8, 0.0, 0.0, 0.0], e1]),
        robot_positions=np.array([[0.5, 0.5], [0.2, 0.2]]),
        robot_oceans=np.array([e1, e1]),
    )


class _Scripted(TorchRLModule, ValueFunctionAPI):
    """Actions from a rule; a value that is one learnable number, 1 at first."""

    def setup(self) -> None:
        self.value = nn.Parameter(torch.ones(1))

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self.logits(batch[Columns.OBS])}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        return self.value.expand(len(batch[Columns.OBS]["robot_position"]))


class Nearest(_Scripted):
    def logits(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        gaps = (obs["chicken_positions"] - obs["robot_position"][:, None]).norm(dim=-1)
        return -1000.0 * gaps


class South(_Scripted):
    def logits(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = torch.zeros(len(obs["robot_position"]), 8)
        logits[:, SOUTH] = 1000.0
        return logits


def trained_rows(sampler: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Two iterations of 3 env steps; per iteration, the rows each module trained on."""
    draw_yard, draw_yards = yard_simulation.draw_yard, batched_round_up.draw_yards
    # The env's own draws still happen (its generator moves on as always), then the stage.
    monkeypatch.setattr(yard_simulation, "draw_yard", lambda rng, c: staged(draw_yard(rng, c)))
    monkeypatch.setattr(
        batched_round_up, "draw_yards", lambda seeds, c: _stack(staged(draw_yards(seeds, c)))
    )
    seen: list[dict] = []

    class Recorded(hmarl.learner.PerModuleMinibatches):
        def __init__(self, batch: Any, *args: Any, **kwargs: Any) -> None:
            seen.append({m: dict(b) for m, b in batch.policy_batches.items()})
            super().__init__(batch, *args, **kwargs)

    monkeypatch.setattr(hmarl.learner, "PerModuleMinibatches", Recorded)
    p = plan(
        TrainConfig(
            task="round_up",
            env={"num_robots": 2, "num_chickens": 2, "episode_steps": 5},
            out=tmp_path / sampler,
            sampler=sampler,
            train_batch_size=3,
            minibatch_size=3,
            num_epochs=1,
            num_envs_per_env_runner=1,
            gamma=GAMMA,
            lambda_=1.0,
            lr=1e-9,
            stop_iters=2,
        )
    )
    modules = {HIGH: RLModuleSpec(module_class=Nearest), LOW: RLModuleSpec(module_class=South)}
    p.task = dataclasses.replace(p.task, modules=modules)
    algo = HierarchicalPPO(config=build_config(p))
    try:
        algo.train()
        algo.train()
    finally:
        algo.stop()
    return seen


def _stack(layout: YardLayout) -> YardLayout:
    """One staged yard as a batch of one."""
    return YardLayout(*(np.asarray(part)[None] for part in dataclasses.astuple(layout)))


def per_agent(batch: dict) -> list[list[tuple]]:
    """Each agent's trained rows in time order: (reward, discount, terminated, truncated,
    value target). Both samplers put an agent's rows together, its bootstrap row last,
    and the agents in id order."""
    columns = [
        batch[c].numpy()
        for c in (
            Columns.REWARDS,
            DISCOUNTS,
            Columns.TERMINATEDS,
            Columns.TRUNCATEDS,
            Postprocessing.VALUE_TARGETS,
            Columns.LOSS_MASK,
        )
    ]
    agents, rows = [], []
    for reward, discount, terminated, truncated, target, trained in zip(*columns, strict=True):
        if not trained:  # the bootstrap row closes the agent's rows
            agents.append(rows)
            rows = []
            continue
        rows.append(
            (float(reward), float(discount), bool(terminated), bool(truncated), float(target))
        )
    assert not rows, "rows after the last bootstrap row"
    return agents


def approx(rows: list[tuple]) -> list[tuple]:
    return [
        (pytest.approx(r, abs=1e-6), pytest.approx(d, abs=1e-6), term, trunc, pytest.approx(v))
        for r, d, term, trunc, v in rows
    ]


@pytest.mark.filterwarnings("ignore:var\\(\\)")  # RLlib's explained variance on 1 row
@pytest.mark.parametrize("sampler", ["batched", "rllib"])
def test_a_staged_episode_gives_the_rows_a_reader_computes(
    sampler: str, local_ray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = trained_rows(sampler, tmp_path, monkeypatch)

    # Iteration 1, steps 1-3. Robot 1's first decision: 2 steps, 0.3 at its 2nd;
    # cut by the sample, so its value target adds 0.81 x V = 0.81. Robot 2's is
    # still running: no row yet.
    assert per_agent(first[HIGH]) == [approx([(0.9 * 0.3, 0.81, False, True, 0.27 + 0.81)])]
    # Robot 1's catch (+1 at step 2, nothing at step 3 while it decides), cut; robot 2's
    # two moves (-0.001 each), the second cut: -0.001 + 0.9, then -0.001 + 0.9 x that.
    assert per_agent(first[LOW]) == [
        approx([(1.0, 0.81, False, True, 1.81)]),
        approx(
            [(-0.001, 0.9, False, False, -0.001 + 0.9 * 0.899), (-0.001, 0.9, False, True, 0.899)]
        ),
    ]

    # Iteration 2, steps 4-5 (and the next episode's first step, whose decisions run on).
    robot_1, robot_2 = per_agent(second[HIGH])
    # Robot 2's first decision: 4 steps, paid while it waited (0.3 at its 2nd step) and
    # at its catch (0.5 at its 4th): 0.9 x 0.3 + 0.9**3 x 0.5. Its second decision, at
    # the horizon, is terminated: its target is its reward alone, and so is the first's.
    first_return = 0.9 * 0.3 + 0.9**3 * 0.5
    assert robot_2 == approx(
        [(first_return, 0.9**4, False, False, first_return), (0.0, 0.9, True, False, 0.0)]
    )
    # Robot 1 decided at step 3 for a chicken that respawned at random; whatever it got,
    # its last row ends at the horizon without a bootstrapped value.
    reward, _, terminated, truncated, target = robot_1[-1]
    assert terminated and not truncated and target == pytest.approx(reward)
    # Robot 2's catch at step 4 (+1, then 0 at step 5 while it decides): terminated too.
    assert per_agent(second[LOW])[1] == approx([(1.0, 0.81, True, False, 1.0)])
