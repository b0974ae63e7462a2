"""The goal wrapper against hand-computed numbers: options end on reaching, on invalidation
and on the time cap; high levels are paid while they wait, each reward at its own world
step; decisions take no world time; both levels end with final observations; masked
goals cannot be chosen; the batched twin is the same env."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from line_task import FLAT, GOALS, MAX_STEPS, TASK
from ray.rllib.core.columns import Columns
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED

from hmarl.advantages import DISCOUNTS, decision_rows
from hmarl.algorithm import HierarchicalPPO
from hmarl.conformance import assert_same, check_batched_env, check_determinism, check_env
from hmarl.goals import hierarchical
from hmarl.task_env import COMMON, OPTION_REWARDS, STAMP, EnvFault, StampedEnv, make_task_env
from hmarl.training import TrainConfig, build_config, plan

LEFT, STAY, RIGHT = 0, 1, 2
GAMMA = 0.9


def line(seed: int, max_steps: int = 10, **config: int) -> StampedEnv:
    """The hierarchical line, stamped as RLlib's env runners see it (seed 0: items at cells
    3, 2, 5 as items 0, 1, 2; agent a0 at cell 0, a1 at cell 1)."""
    task = hierarchical(FLAT, dataclasses.replace(GOALS, max_steps=max_steps))
    env = StampedEnv(make_task_env(task, config), "line")
    env.reset(seed=seed)
    return env


def test_the_flat_and_batched_envs_and_the_hierarchy_pass_every_check() -> None:
    env = make_task_env(TASK, {})
    check_env(env, seed=0, episodes=40)
    check_determinism(lambda: make_task_env(TASK, {}), seed=0, episodes=5)
    assert check_batched_env(FLAT, {}, list(range(16))) > 0
    assert check_batched_env(TASK, {}, list(range(64))) > 0


def test_an_option_ends_on_invalidation_and_the_high_level_is_paid_while_it_waits() -> None:
    env = line(seed=0)
    obs, rewards, *_, infos = env.step({"a0_high": 2, "a1_high": 1})  # cells 5 and 2
    assert sorted(obs) == ["a0_low", "a1_low"] and rewards == {}
    assert infos[COMMON]["elapsed"] == 0 and env.t == 0  # no world time passed
    np.testing.assert_allclose(obs["a0_low"]["goal"], [1.0, 1.0])  # cell 5 of 0..5, there

    obs, rewards, *_ = env.step({"a0_low": RIGHT, "a1_low": LEFT})  # t=1: cells 1, 0
    assert sorted(obs) == ["a0_low", "a1_low"] and rewards["a0_high"] == 0.0
    # t=2: a0 takes item 1 on its way (paid, not its goal); a1's goal is gone: invalid.
    obs, rewards, *_ = env.step({"a0_low": RIGHT, "a1_low": STAY})
    assert sorted(obs) == ["a1_high"]  # a0's low level waits through a1's decision
    assert rewards == {"a0_low": 1.0, "a0_high": 1.0, "a1_low": 0.0, "a1_high": 0.0}
    assert obs["a1_high"]["action_mask"].tolist() == [1, 0, 1]  # item 1 is masked
    masked = line(seed=0)
    for actions in ({"a0_high": 2, "a1_high": 1}, {"a0_low": RIGHT, "a1_low": LEFT}):
        masked.step(actions)
    masked.step({"a0_low": RIGHT, "a1_low": STAY})
    with pytest.raises(EnvFault, match="a1_high chose goal 1, which is not available"):
        masked.step({"a1_high": 1})
    obs, rewards, *_ = env.step({"a1_high": 0})  # cell 3
    assert sorted(obs) == ["a0_low", "a1_low"] and env.t == 2
    assert obs["a0_low"]["goal"][0] == 1.0  # a0's option goes on
    # t=3: a0 takes item 0, a1's new goal: invalid again; t=4 a0 walks on.
    obs, rewards, *_ = env.step({"a0_low": RIGHT, "a1_low": RIGHT})
    assert sorted(obs) == ["a1_high"] and rewards["a0_high"] == 1.0
    obs, *_ = env.step({"a1_high": 2})
    obs, rewards, *_ = env.step({"a0_low": RIGHT, "a1_low": STAY})
    assert sorted(obs) == ["a0_low", "a1_low"] and rewards["a0_high"] == 0.0
    # t=5: a0 reaches its goal, the last item: the flat episode ends, and every level.
    obs, rewards, terminateds, truncateds, infos = env.step({"a0_low": RIGHT, "a1_low": STAY})
    assert sorted(obs) == ["a0_high", "a0_low", "a1_high", "a1_low"]
    assert terminateds == dict.fromkeys([*obs, "__all__"], True)
    assert not any(truncateds.values())
    assert rewards["a0_low"] == 1.0 + GOALS.bonus and rewards["a0_high"] == 1.0
    # a0's high level decided at world time 0 and observed again at 5, two decision
    # steps in between counting no time; it was paid 0, 1, 1, 0, 1 on the way.
    final = infos["a0_high"]
    assert final[STAMP] == 5 and final[OPTION_REWARDS] == [0.0, 1.0, 1.0, 0.0, 1.0]
    returns, discounts = decision_rows([3.0, 0.0], [{STAMP: 0}, final, final], GAMMA, smdp=True)
    assert discounts[0] == pytest.approx(GAMMA**5)
    assert returns[0] == pytest.approx(GAMMA + GAMMA**2 + GAMMA**4)
    assert infos["a0_low"][STAMP] == 5 and "collected" in infos["a1_low"]


def test_an_option_ends_on_the_time_cap() -> None:
    env = line(seed=0, max_steps=MAX_STEPS)
    env.step({"a0_high": 2, "a1_high": 2})  # both for cell 5; both stand still
    for _ in range(MAX_STEPS - 1):
        obs, *_ = env.step({"a0_low": STAY, "a1_low": STAY})
        assert sorted(obs) == ["a0_low", "a1_low"]
    obs, *_ = env.step({"a0_low": STAY, "a1_low": STAY})
    assert sorted(obs) == ["a0_high", "a1_high"] and env.t == MAX_STEPS


def test_a_truncated_flat_episode_truncates_both_levels() -> None:
    env = line(seed=0, limit=2)
    env.step({"a0_high": 2, "a1_high": 2})
    env.step({"a0_low": STAY, "a1_low": STAY})
    obs, rewards, terminateds, truncateds, _ = env.step({"a0_low": STAY, "a1_low": STAY})
    assert sorted(obs) == ["a0_high", "a0_low", "a1_high", "a1_low"]
    assert truncateds == dict.fromkeys([*obs, "__all__"], True)
    assert not any(terminateds.values()) and set(rewards) == set(obs)


@pytest.mark.parametrize("sampler", ["batched", "rllib"])
def test_decision_steps_take_no_world_time(sampler: str, local_ray, tmp_path, monkeypatch) -> None:
    """Low levels wait through their fellows' decision steps undiscounted, and env-step
    counters count world steps only, with either sampler."""
    world = {"steps": 0, "calls": 0}
    step = StampedEnv.step

    def counting(self: StampedEnv, actions: dict) -> tuple:
        out = step(self, actions)
        world["steps"] += self.last_elapsed
        world["calls"] += 1
        return out

    monkeypatch.setattr(StampedEnv, "step", counting)
    cfg = TrainConfig(
        task="line_task:TASK",
        out=tmp_path / sampler,
        stop_iters=1,
        sampler=sampler,
        gamma=GAMMA,
        train_batch_size=200,
        minibatch_size=200,
        num_envs_per_env_runner=4,
    )
    algo = HierarchicalPPO(config=build_config(plan(cfg)))
    try:
        runner = algo.env_runner
        learner = algo.learner_group._learner
        world.update(steps=0, calls=0)  # the sample's steps only (not the pre-flight's)
        sampled = runner.sample(num_timesteps=120)
        if sampler == "batched":
            batch = learner._make_batch_if_necessary(
                training_data=_training_data(sampled)
            ).policy_batches["walker_low"]
        else:
            batch = learner._learner_connector(
                rl_module=learner.module,
                batch={},
                episodes=sampled,
                shared_data={},
                metrics=None,
            )["walker_low"]
        metrics = runner.get_metrics()
    finally:
        algo.stop()
    rows = np.asarray(batch[Columns.LOSS_MASK], bool)
    discounts = np.asarray(batch[DISCOUNTS])[rows]
    np.testing.assert_allclose(discounts, GAMMA)  # one world step each, decisions or not
    counted = metrics[NUM_ENV_STEPS_SAMPLED]
    if sampler == "rllib":  # RLlib's runner stepped the envs: every call, counted by time
        assert world["calls"] > world["steps"] == counted
    assert 120 <= counted < 120 + 4


def _training_data(batch: dict) -> Any:
    from ray.rllib.core.learner.training_data import TrainingData

    return TrainingData(
        batch=MultiAgentBatch({p: SampleBatch(c) for p, c in batch.items()}, env_steps=1)
    )


def test_a_refused_step_names_the_agent_and_changes_nothing() -> None:
    env, twin = (make_task_env(TASK, {}) for _ in range(2))
    for e in (env, twin):
        e.reset(seed=0)
    bad_steps = [
        ({}, "no action for \\['a0_high', 'a1_high'\\]"),
        ({"a0_high": 0}, "no action for \\['a1_high'\\]"),
        ({"a0_high": 0, "a1_high": 3}, "a1_high: action 3 is not in Discrete\\(3\\)"),
        ({"a0_high": 0, "a1_low": STAY}, "agents \\['a1_low'\\] are not due"),
    ]
    for actions, message in bad_steps:
        with pytest.raises(ValueError, match=message):
            env.step(actions)
    env.step({"a0_high": 2, "a1_high": 1})
    twin.step({"a0_high": 2, "a1_high": 1})
    with pytest.raises(ValueError, match="a0_low: action 5 is not in Discrete\\(3\\)"):
        env.step({"a0_low": 5, "a1_low": STAY})
    assert_same(
        env.step({"a0_low": RIGHT, "a1_low": LEFT}),
        twin.step({"a0_low": RIGHT, "a1_low": LEFT}),
        "",
    )


def test_goals_that_read_the_global_state_see_what_the_observation_holds() -> None:
    """The line's state holds its items as its observations do: goals read from the state
    (``reads_state``) make the very env that goals read from the observations make, single
    and batched; a flat env without a state is refused."""
    from hmarl.conformance import play
    from hmarl.task import TaskError

    agents = len(FLAT.make_env({}).possible_agents)

    def items(state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return state[:, agents : agents + 3], state[:, agents + 3 :]

    def candidates(obs: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cells, present = items(state)
        return np.stack([cells, present], axis=-1), present > 0

    def invalid(obs: np.ndarray, goal: np.ndarray, reward: np.ndarray, state: np.ndarray):
        cells, present = items(state)
        return ~(np.isclose(cells, goal[:, :1]) & (present > 0)).any(axis=1)

    def reached(obs: np.ndarray, goal: np.ndarray, reward: np.ndarray, state: np.ndarray):
        return GOALS.reached(obs, goal, reward)

    by_state = dataclasses.replace(
        GOALS, candidates=candidates, invalid=invalid, reached=reached, reads_state=True
    )
    task = hierarchical(FLAT, by_state)
    runs = [play(make_task_env(t, {}), 3, 20, 10_000) for t in (TASK, task)]
    for a, b in zip(*runs, strict=True):
        for name in ("obs", "rewards", "terminateds", "truncateds", "infos"):
            assert_same(getattr(a, name), getattr(b, name), f"{a.where}: {name}")
    assert check_batched_env(task, {}, list(range(32))) > 0

    def stateless(config: dict) -> Any:
        env = FLAT.make_env(config)
        env.state_space = None
        return env

    bare = dataclasses.replace(FLAT, make_env=stateless)
    with pytest.raises(TaskError, match="reads_state: the flat env declares no global state"):
        make_task_env(hierarchical(bare, by_state), {})
