"""SMDP-correct advantages: by hand, RLlib's GAE as the special case, real episodes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.postprocessing.value_predictions import compute_value_targets

from hmarl.advantages import DISCOUNTS, decision_rows, gae
from hmarl.task_env import OPTION_REWARDS, STAMP

GAMMA, LAMBDA = 0.9, 0.8


def test_one_gamma_per_row_is_rllibs_gae() -> None:
    rng = np.random.default_rng(0)
    rows = 60
    rewards, values = rng.normal(size=rows), rng.normal(size=rows)
    terminateds = rng.random(rows) < 0.1
    truncateds = ~terminateds & (rng.random(rows) < 0.1)
    _, targets = gae(rewards, values, np.full(rows, GAMMA), terminateds, truncateds, LAMBDA)
    theirs = compute_value_targets(values, rewards, terminateds, truncateds, GAMMA, LAMBDA)
    np.testing.assert_allclose(targets, theirs, rtol=0, atol=1e-5)


def test_decisions_are_discounted_by_their_length() -> None:
    # An agent observed at env steps 0, 3 and 5 (then RLlib's bootstrap row repeats
    # the last observation): decisions of 3 and 2 steps.
    infos = [{STAMP: 0}, {STAMP: 3}, {STAMP: 5}, {STAMP: 5}]
    returns, discounts = decision_rows([1.0, 0.5, 0.0], infos, GAMMA, smdp=True)
    # Rewards that come with the next observation came on the decision's last step.
    np.testing.assert_allclose(returns, [GAMMA**2 * 1.0, GAMMA * 0.5, 0.0])
    np.testing.assert_allclose(discounts[:2], [GAMMA**3, GAMMA**2])

    # Rewards along the way count at their own step: 0.2 on the first, 1.0 on the last.
    infos[1] = {STAMP: 3, OPTION_REWARDS: [0.2, 0.0, 1.0]}
    returns, _ = decision_rows([1.2, 0.5, 0.0], infos, GAMMA, smdp=True)
    assert returns[0] == pytest.approx(0.2 + GAMMA**2 * 1.0)

    # Per decision, RLlib's way: one gamma each, the plain sum.
    returns, discounts = decision_rows([1.2, 0.5, 0.0], infos, GAMMA, smdp=False)
    np.testing.assert_allclose(returns, [1.2, 0.5, 0.0])
    np.testing.assert_allclose(discounts, GAMMA)


@pytest.mark.parametrize("end", ["terminated", "truncated"])
def test_smdp_advantages_by_hand(end: str) -> None:
    """Two decisions of 3 and 2 steps, then the bootstrap row."""
    values = np.array([0.4, 0.7, 0.3])  # V(s0), V(s1), V(s2)
    rewards = np.array([GAMMA**2 * 1.0, GAMMA * 0.5, 0.0])
    discounts = np.array([GAMMA**3, GAMMA**2, GAMMA])
    terminateds = np.array([False, end == "terminated", False])
    truncateds = np.array([False, end == "truncated", False])
    advantages, targets = gae(rewards, values, discounts, terminateds, truncateds, LAMBDA)

    bootstrap = 0.0 if end == "terminated" else GAMMA**2 * 0.3
    delta1 = GAMMA * 0.5 + bootstrap - 0.7
    delta0 = GAMMA**2 * 1.0 + GAMMA**3 * 0.7 - 0.4
    a1 = delta1
    a0 = delta0 + GAMMA**3 * LAMBDA * a1
    assert advantages[:2] == pytest.approx([a0, a1])
    assert targets[:2] == pytest.approx([a0 + 0.4, a1 + 0.7])


# -- through RLlib's learner pipeline, on real episodes --------------------------------------


@pytest.fixture(scope="module")
def sample(local_ray, tmp_path_factory: pytest.TempPathFactory):
    """A learner and real episodes of the corridor (one planner decision per episode)."""
    from hmarl.algorithm import HierarchicalPPO
    from hmarl.training import TrainConfig, build_config, plan

    made = []

    def make(limit: int):
        out = tmp_path_factory.mktemp("adv") / "run"
        cfg = TrainConfig(
            task="tiny_task:TASK",
            env={"limit": limit},
            out=Path(out),
            stop_iters=1,
            train_batch_size=200,
            minibatch_size=100,
            num_envs_per_env_runner=2,
            gamma=GAMMA,
            lambda_=LAMBDA,
        )
        algo = HierarchicalPPO(config=build_config(plan(cfg)))
        made.append(algo)
        return algo, algo.env_runner.sample(num_timesteps=200)

    yield make
    for algo in made:
        algo.stop()


def run_pipeline(algo, episodes, smdp: bool, gae_piece: Any = None) -> dict:
    """The learner's connector pipeline on copies of the episodes.

    hmarl's advantage piece comes last; ``gae_piece`` puts another in its place.
    """
    learner = algo.learner_group._learner
    pipeline = copy.deepcopy(learner._learner_connector)
    pipeline.connectors[-1].smdp = smdp
    if gae_piece is not None:
        pipeline.connectors[-1] = gae_piece
    return pipeline(
        rl_module=learner.module,
        batch={},
        episodes=copy.deepcopy(episodes),
        shared_data={},
        metrics=None,
    )


def rllibs(algo, episodes) -> dict:
    from ray.rllib.connectors.learner import GeneralAdvantageEstimation

    return run_pipeline(
        algo, episodes, False, GeneralAdvantageEstimation(gamma=GAMMA, lambda_=LAMBDA)
    )


def targets(batch: dict, module_id: str) -> np.ndarray:
    return batch[module_id][Postprocessing.VALUE_TARGETS].numpy()


def test_agents_acting_every_step_get_rllibs_gae(sample) -> None:
    """No time limit reached: the walker, acting every step, gets exactly RLlib's targets
    under SMDP discounting; per decision, so does the planner."""
    algo, episodes = sample(1000)
    theirs = rllibs(algo, episodes)
    smdp, per_decision = run_pipeline(algo, episodes, True), run_pipeline(algo, episodes, False)
    np.testing.assert_allclose(targets(smdp, "walker"), targets(theirs, "walker"), atol=1e-5)
    for module_id in ("planner", "walker"):
        np.testing.assert_allclose(
            targets(per_decision, module_id), targets(theirs, module_id), atol=1e-5
        )
    assert not np.allclose(targets(smdp, "planner"), targets(theirs, "planner"), atol=1e-3)


def check_planner_by_hand(algo, episodes, batch: dict) -> int:
    """The planner decides once: its decision lasts the whole episode, k = its length."""
    planner_batch = batch["planner"]
    learner = algo.learner_group._learner
    values = learner.module["planner"].compute_values(planner_batch).detach().numpy()
    rows = checked = 0
    for episode in (e for e in episodes if "planner" in e.agent_episodes):
        planner = episode.agent_episodes["planner"]
        if episode.is_done and len(planner) == 1:
            k = len(episode)  # env steps from reset to the end
            target = GAMMA ** (k - 1) * planner.get_rewards()[0]
            if episode.is_truncated:  # the time limit: bootstrap from the final observation
                target += GAMMA**k * values[rows + 1]
            got = planner_batch[Postprocessing.VALUE_TARGETS][rows].item()
            assert got == pytest.approx(target, abs=1e-5)
            assert planner_batch[DISCOUNTS][rows].item() == pytest.approx(GAMMA**k, abs=1e-6)
            checked += 1
        rows += len(planner) + 1  # its transitions, then the bootstrap row
    assert rows == len(planner_batch[Columns.REWARDS])
    return checked


def test_smdp_on_real_episodes_by_hand(sample) -> None:
    algo, episodes = sample(1000)
    assert check_planner_by_hand(algo, episodes, run_pipeline(algo, episodes, True)) >= 5


def test_a_time_limit_bootstraps(sample) -> None:
    """Agents cut off by the limit are truncated: their targets bootstrap from the final
    observation. (RLlib 2.60 also flags them terminated, and its GAE drops the bootstrap.)"""
    algo, episodes = sample(3)
    assert any(e.is_truncated for e in episodes)
    ours = run_pipeline(algo, episodes, True)
    assert check_planner_by_hand(algo, episodes, ours) >= 5
    ours_per_decision, theirs = run_pipeline(algo, episodes, False), rllibs(algo, episodes)
    assert not np.allclose(targets(ours_per_decision, "planner"), targets(theirs, "planner"))


def test_the_yards_time_limit_is_terminal_and_keeps_its_penalty(local_ray, tmp_path) -> None:
    """The yard's model (its spec sheet): running out of time is a failure of the task, -1
    for both levels, and it terminates: through RLlib's GAE and through hmarl's, nothing
    is bootstrapped past it, so the value target of an agent's last step is its -1."""
    from hmarl.algorithm import HierarchicalPPO
    from hmarl.training import TrainConfig, build_config, plan

    cfg = TrainConfig(
        env={"timeout": 4, "closeness_threshold": 0.001},  # no robot arrives in 4 steps
        sampler="rllib",
        out=tmp_path / "run",
        stop_iters=1,
        train_batch_size=64,
        minibatch_size=32,
        num_envs_per_env_runner=2,
        gamma=GAMMA,
        lambda_=LAMBDA,
    )
    algo = HierarchicalPPO(config=build_config(plan(cfg)))
    try:
        episodes = algo.env_runner.sample(num_timesteps=64)
        assert all(e.is_terminated for e in episodes if e.is_done)
        for batch in (run_pipeline(algo, episodes, True), rllibs(algo, episodes)):
            for module_id in ("high_level_policy", "low_level_policy"):
                rows = batch[module_id]
                ends = (rows[Columns.TERMINATEDS] & rows[Columns.LOSS_MASK]).numpy().astype(bool)
                assert ends.sum() >= 2
                # The last step's reward: -1 (a high level's decision, discounted to its start).
                np.testing.assert_allclose(
                    rows[Postprocessing.VALUE_TARGETS].numpy()[ends],
                    rows[Columns.REWARDS].numpy()[ends],
                    atol=1e-6,
                )
                assert (rows[Columns.REWARDS].numpy()[ends] < -0.5).all()
    finally:
        algo.stop()
