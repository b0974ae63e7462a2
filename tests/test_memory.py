"""Memory for agents that act at different times (hmarl.sequences): each agent's state is its
own, held while it waits, reset at its episode's start, carried across sample cuts and
through a resume; the learner's sequences are RLlib's own; padding never trains;
evaluation and exports keep each agent's state.

Most tests run on the clock (tests/clock_task.py), whose every observation says how many
decisions its agent has taken: the state a module that counts decisions must hold."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import onnxruntime
import pytest
import torch
from clock_task import LSTM_TASK, TASK, ClockEnv
from ray.rllib.connectors.common import AddStatesFromEpisodesToBatch
from ray.rllib.core.columns import Columns
from ray.rllib.env.multi_agent_episode import MultiAgentEpisode
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from test_sampler import _training_data, recorded_algo, replay

import hmarl
from hmarl.advantages import DISCOUNTS, add_advantages
from hmarl.algorithm import HierarchicalPPO
from hmarl.conformance import check_batched_env
from hmarl.evaluation import episode_seeds, evaluate, play_episode
from hmarl.export import DESCRIPTION_FILE, export, load_policy
from hmarl.learner import PerModuleMinibatches
from hmarl.policies import ModulePolicy
from hmarl.runs import RunRecord
from hmarl.stock_runner import MemoryEpisode
from hmarl.training import TrainConfig, build_config, plan

CLOCK, CLOCK_LSTM = "clock_task:TASK", "clock_task:LSTM_TASK"


def clock_algo(tmp_path: Path, sampler: str, ref: str = CLOCK, **settings: Any) -> HierarchicalPPO:
    config = TrainConfig(
        task=ref,
        out=tmp_path / sampler,
        sampler=sampler,
        stop_iters=1,
        train_batch_size=120,
        minibatch_size=40,
        num_epochs=2,
        num_envs_per_env_runner=4,
        **settings,
    )
    return HierarchicalPPO(config=build_config(plan(config)))


def sampled(algo: HierarchicalPPO, steps: int) -> dict[str, dict[str, Any]]:
    """One sample of the algorithm's runner, as the learner gets it (numpy columns)."""
    runner = algo.env_runner
    found = runner.sample(num_timesteps=steps)
    if algo.config.sampler != "batched":  # RLlib's episodes, through RLlib's learner pieces
        learner = algo.learner_group._learner
        found = learner._learner_connector(
            rl_module=learner.module, batch={}, episodes=found, shared_data={}, metrics=None
        )
    return {p: _numpy(columns) for p, columns in found.items()}


def _numpy(tree_: Any) -> Any:
    if isinstance(tree_, dict):
        return {k: _numpy(v) for k, v in tree_.items()}
    return tree_.detach().cpu().numpy() if isinstance(tree_, torch.Tensor) else np.asarray(tree_)


def runs(batch: dict[str, Any]) -> list[list[int]]:
    """The sequences of each agent's run (its rows of one sample of one episode), in order:
    a run ends with the sequence that holds its bootstrap row (loss mask false, last row)."""
    lengths, mask = batch[Columns.SEQ_LENS], batch[Columns.LOSS_MASK]
    found, current = [], []
    for s, length in enumerate(lengths):
        current.append(s)
        if not mask[s, length - 1]:
            found.append(current)
            current = []
    assert not current, "sequences after the last bootstrap row"
    return found


def check_counts(batch: dict[str, Any]) -> np.ndarray:
    """Assert that every real row's state is its agent's decisions so far in its episode;
    return each run's first count. Padding never trains."""
    obs, lengths = batch[Columns.OBS], batch[Columns.SEQ_LENS]
    count = batch[Columns.STATE_IN]["count"][:, 0]
    width = obs.shape[1]
    real = np.arange(width)[None, :] < lengths[:, None]
    expected = count[:, None] + np.arange(width)[None, :]
    np.testing.assert_array_equal(obs[..., 0][real], expected[real])
    assert not batch[Columns.LOSS_MASK][~real].any(), "a padded row trains"
    assert lengths.max() <= width == 3
    return np.array([count[run[0]] for run in runs(batch)])


# -- RLlib's cut and hmarl's ----------------------------------------------------------------


class _Counting:
    """What RLlib's AddStatesFromEpisodesToBatch asks of a module: a nested state."""

    model_config = {"max_seq_len": 4}  # noqa: RUF012

    def is_stateful(self) -> bool:
        return True

    def get_initial_state(self) -> dict[str, np.ndarray]:
        return {"h": np.zeros(1, np.float32)}


class _Modules(dict):
    def is_stateful(self) -> bool:
        return True


def _hierarchy_episode(kind: type) -> MultiAgentEpisode:
    """The high level decides (its state becomes 1), its low level acts four times (states
    1 to 4), and the high level observes again (the low level's last action hangs)."""
    space = gym.spaces.Box(-1.0, 100.0, (1,), np.float32)
    episode = kind(
        observation_space={"high": space, "low": space},
        action_space={"high": gym.spaces.Discrete(2), "low": gym.spaces.Discrete(2)},
        agent_to_module_mapping_fn=lambda agent, episode: agent,
    )
    episode.add_env_reset(observations={"high": np.zeros(1, np.float32)}, infos={"high": {}})
    for observing, acting, state in [("low", "high", 1), *[("low", "low", n) for n in (1, 2, 3)]]:
        _step(episode, observing, acting, state)
    _step(episode, "high", "low", 4)
    return episode


def _step(episode: MultiAgentEpisode, observing: str, acting: str, state: float) -> None:
    """``acting`` acts (its state becomes ``state``); ``observing`` observes ``state``."""
    acted = observing in episode.agent_episodes and len(episode.agent_episodes[observing])
    episode.add_env_step(
        {observing: np.full(1, state, np.float32)},
        {acting: 0},
        {observing: 0.0} if acted or observing == acting else {},
        infos={observing: {}},
        extra_model_outputs={acting: {Columns.STATE_OUT: {"h": np.full(1, state, np.float32)}}},
    )


def test_rllibs_cut_loses_a_sparse_deciders_memory_and_hmarls_keeps_it() -> None:
    """ray-project/ray#60205 on a hand-built episode: after RLlib's cut (a lookback of one
    env step) the high level, whose last decision lies five steps back, acts from the
    initial state, and the chunk cannot be laid out for the learner; after MemoryEpisode's
    cut the high level acts from its state after that decision, and the learner starts
    each agent's chunk from its state before the chunk's first decision."""
    modules = _Modules(high=_Counting(), low=_Counting())
    acting = AddStatesFromEpisodesToBatch(as_learner_connector=False)
    learning = AddStatesFromEpisodesToBatch(as_learner_connector=True)
    found = {}
    for kind in (MultiAgentEpisode, MemoryEpisode):
        successor = _hierarchy_episode(kind).cut(len_lookback_buffer=1)
        assert type(successor) is kind
        batch = acting(rl_module=modules, batch={}, episodes=[successor], shared_data={})
        (state,) = batch[Columns.STATE_IN].values()
        found[kind] = float(state[0]["h"][0])
        _step(successor, "low", "high", 2)  # the high level decides again
        _step(successor, "high", "low", 5)  # the low level's hanging action ends, it acts
        if kind is MultiAgentEpisode:
            with pytest.raises(IndexError):
                learning(rl_module=modules, batch={}, episodes=[successor], shared_data={})
            continue
        batch = learning(rl_module=modules, batch={}, episodes=[successor], shared_data={})
        starts = {
            key[1]: [float(s["h"][0]) for s in v] for key, v in batch[Columns.STATE_IN].items()
        }
        assert starts == {"high": [1.0], "low": [3.0]}
    assert found == {MultiAgentEpisode: 0.0, MemoryEpisode: 1.0}


# -- each agent's state, in both samplers ---------------------------------------------------


@pytest.mark.parametrize("sampler", ["batched", "rllib"])
def test_each_agent_carries_its_own_state(sampler: str, local_ray, tmp_path: Path) -> None:
    """Three samples of 10 env steps per env (episodes of 6 to 13 cut mid-way), then a
    resume: every real row's state is its agent's decisions so far (held while the agent
    waits, zero at its episode's start, carried across the cuts), padding never trains,
    and the learner trains on the sequences."""
    algo = clock_algo(tmp_path, sampler)
    try:
        carried = {}
        for window in range(3):
            for policy, batch in sampled(algo, 40).items():
                starts = check_counts(batch)
                if window:
                    carried[policy] = carried.get(policy, 0) + int((starts > 0).sum())
        # Runs that begin after their agent's earlier decisions, in an earlier sample.
        assert carried["high_level_policy"] > 0 and carried["low_level_policy"] > 0
        results = algo.train()["learners"]
        assert np.isfinite(results["high_level_policy"]["policy_loss"])
        saved = tmp_path / "checkpoint"
        algo.save_checkpoint(str(saved))
    finally:
        algo.stop()
    resumed = clock_algo(tmp_path, sampler)
    try:
        resumed.restore_from_path(saved)
        for policy, batch in sampled(resumed, 40).items():
            assert (check_counts(batch) == 0).all(), policy  # new episodes, from the start
    finally:
        resumed.stop()


# -- the sequences are RLlib's own ----------------------------------------------------------

ROWS = (
    Columns.OBS,
    Columns.REWARDS,
    Columns.TERMINATEDS,
    Columns.TRUNCATEDS,
    Columns.LOSS_MASK,
)
"""Compared on every real row (the bootstrap rows too)."""
TRAINED = (Columns.ACTIONS, DISCOUNTS, Postprocessing.VALUE_TARGETS, Postprocessing.ADVANTAGES)
"""Compared on the rows that train (a bootstrap row's are never read)."""


def _keyed_runs(batch: dict[str, Any]) -> dict[bytes, list[int]]:
    """Each run's sequences, keyed by its first observation (unique per agent and step)."""
    return {batch[Columns.OBS][run[0], 0].tobytes(): run for run in runs(batch)}


@pytest.mark.parametrize("flat", [True, False], ids=["every step", "hierarchy"])
def test_the_sequences_are_rllibs_own(flat: bool, local_ray, tmp_path: Path) -> None:
    """RLlib's LSTM module, two samples of 10 env steps per env: hmarl's sequences (their
    state, rows, padding, values and advantages) against those RLlib's learner connectors
    build from the same steps with the same states, sequence by sequence. For agents that
    act every step that is RLlib's own runner's layout; for a hierarchy, with the episodes
    cut as hmarl's StockEnvRunner cuts them."""
    algo, recorders = recorded_algo(
        LSTM_TASK, tmp_path, ref=CLOCK_LSTM, env={"flat": flat}, num_envs_per_env_runner=4
    )
    try:
        runner, learner = algo.env_runner, algo.learner_group._learner
        ours = [runner.sample(num_timesteps=40), runner.sample(num_timesteps=40)]
        chunks = replay(
            LSTM_TASK, recorders[0].events, algo.config.env_config, 4, [10, 10], runner.module
        )
        compared = 0
        for window, (batch, episodes) in enumerate(zip(ours, chunks, strict=True)):
            theirs = learner._learner_connector(
                rl_module=learner.module,
                batch={},
                episodes=copy.deepcopy(episodes),
                shared_data={},
                metrics=None,
            )
            mine = learner._make_batch_if_necessary(training_data=_training_data(batch))
            for policy, columns in mine.policy_batches.items():
                add_advantages(learner.module[policy], columns, algo.config.lambda_)
                a, b = _numpy(dict(columns)), _numpy(theirs[policy])
                where = f"window {window}, {policy}"
                keyed_a, keyed_b = _keyed_runs(a), _keyed_runs(b)
                assert keyed_a.keys() == keyed_b.keys(), where
                for key, run in keyed_a.items():
                    other = keyed_b[key]
                    np.testing.assert_array_equal(
                        a[Columns.SEQ_LENS][run], b[Columns.SEQ_LENS][other], err_msg=where
                    )
                    for leaf in ("h", "c"):
                        np.testing.assert_allclose(
                            a[Columns.STATE_IN][leaf][run],
                            b[Columns.STATE_IN][leaf][other],
                            atol=1e-5,
                            err_msg=f"{where}: state {leaf}",
                        )
                    real = np.arange(a[Columns.LOSS_MASK].shape[1]) < a[Columns.SEQ_LENS][run, None]
                    trained = a[Columns.LOSS_MASK][run]
                    for columns, rows in ((ROWS, real), (TRAINED, trained)):
                        for column in columns:
                            np.testing.assert_allclose(
                                a[column][run][rows].astype(np.float64),
                                b[column][other][rows].astype(np.float64),
                                atol=1e-5,
                                err_msg=f"{where}: {column}",
                            )
                    compared += len(run)
        assert compared > 20
    finally:
        algo.stop()


# -- padding never trains -------------------------------------------------------------------


def test_padding_is_masked_in_the_loss_and_minibatches_keep_sequences_whole(
    local_ray, tmp_path: Path
) -> None:
    """Whatever the padded rows hold, PPO's loss and its gradients are the same; and every
    minibatch holds whole sequences, each sequence in one minibatch per epoch."""
    algo = clock_algo(tmp_path, "batched")
    try:
        learner = algo.learner_group._learner
        batch = algo.env_runner.sample(num_timesteps=40)
        policy = "low_level_policy"
        columns = learner._make_batch_if_necessary(
            training_data=_training_data(batch)
        ).policy_batches[policy]
        module = learner.module[policy]
        add_advantages(module, columns, 0.95)
        padding = ~(
            np.arange(columns[Columns.OBS].shape[1])[None, :]
            < columns[Columns.SEQ_LENS].numpy()[:, None]
        )
        assert padding.any()

        def loss_and_grads(batch: dict[str, Any]) -> tuple[float, list[torch.Tensor]]:
            module.zero_grad()
            loss = learner.compute_loss_for_module(
                module_id=policy,
                config=learner.config.get_config_for_module(policy),
                batch=batch,
                fwd_out=module.forward_train(batch),
            )
            loss.backward()
            return float(loss.detach()), [p.grad.clone() for p in module.parameters()]

        clean = loss_and_grads(dict(columns))
        noisy = dict(columns)
        rng = np.random.default_rng(0)
        where = torch.from_numpy(padding)
        for column in (
            Columns.OBS,
            Columns.ACTIONS,
            Columns.ACTION_LOGP,
            Columns.ACTION_DIST_INPUTS,
            Postprocessing.ADVANTAGES,
            Postprocessing.VALUE_TARGETS,
        ):
            values = noisy[column].clone()
            shape = values[where].shape
            garbage = (
                rng.integers(2, size=shape)
                if column == Columns.ACTIONS
                else rng.normal(size=shape) * 30
            )
            values[where] = torch.as_tensor(garbage, dtype=values.dtype)
            noisy[column] = values
        dirty = loss_and_grads(noisy)
        assert dirty[0] == pytest.approx(clean[0], abs=1e-6)
        for a, b in zip(clean[1], dirty[1], strict=True):
            torch.testing.assert_close(a, b)

        sequences = len(columns[Columns.SEQ_LENS])
        minibatches = PerModuleMinibatches(
            MultiAgentBatch({policy: SampleBatch(dict(columns))}, env_steps=40),
            epochs={policy: 2},
            minibatch_sizes={policy: 10},
            rng=np.random.default_rng(0),
        )
        seen = np.zeros(sequences, np.int64)
        for minibatch in minibatches:
            part = minibatch.policy_batches[policy]
            assert part[Columns.STATE_IN]["count"].shape[0] == len(part[Columns.SEQ_LENS])
            for row in part[Columns.OBS][:, 0].numpy():
                # Every sequence's first row is found once among the batch's sequences.
                (s,) = np.flatnonzero((columns[Columns.OBS][:, 0].numpy() == row).all(axis=1))
                seen[s] += 1
        assert (seen == 2).all()
    finally:
        algo.stop()


# -- evaluation and exports -----------------------------------------------------------------


def _counting_policy() -> ModulePolicy:
    from clock_task import ACTIONS, SPACE, CountingModule

    modules = {
        policy: CountingModule(
            observation_space=SPACE,
            action_space=ACTIONS,
            inference_only=True,
            model_config={"max_seq_len": 3},
        )
        for policy in ("high_level_policy", "low_level_policy")
    }
    return ModulePolicy(modules, dict.fromkeys(modules, SPACE))


@pytest.mark.parametrize("batched", [True, False], ids=["batched env", "envs"])
def test_evaluation_keeps_each_agents_state(batched: bool) -> None:
    """A module that acts on its count of its agent's decisions earns 1 for each decision,
    in every episode: each agent's state is its own, held while it waits, reset each
    episode (the same policy object plays every run)."""
    policy = _counting_policy()
    for seed in (0, 1):
        result = evaluate(TASK, {}, policy, episode_seeds(seed, 12), batched=batched)
        for name in ("high_level_policy", "low_level_policy"):
            assert result.returns[name] == result.metrics[f"{name} decisions"] > 1
    for seed in (3, 4):
        episode = play_episode(TASK, ClockEnv({}), policy, seed)
        assert episode.returns == {a: episode.infos[a]["decisions"] for a in ("high", "low")}
    with pytest.raises(ValueError, match="act needs agents="):
        policy.act("high_level_policy", np.zeros((1, 4), np.float32))


@pytest.mark.parametrize(
    ("ref", "flat"), [(CLOCK, False), (CLOCK_LSTM, True)], ids=["task module", "RLlib LSTM"]
)
def test_exports_keep_each_agents_state(ref: str, flat: bool, local_ray, tmp_path: Path) -> None:
    """An export of a module with memory acts as its checkpoint (load_policy keeps each
    agent's state, reset per episode: the counting module gets every decision right, a
    high level's and a low level's), and the ONNX graph of RLlib's LSTM module takes and
    returns the state: fed back decision after decision, it takes torch's actions through
    whole episodes, for two agents of one policy. (ONNX graphs take seconds each; the
    counting module's would test the same code.)"""
    algo = clock_algo(tmp_path, "batched", ref=ref, env={"flat": flat})
    run = tmp_path / "run"
    try:
        algo.save_checkpoint(str(run / "checkpoint_000001"))
        RunRecord("clock", ref, algo.config.env_config, hmarl.__version__).write(run)
    finally:
        algo.stop()
    out = tmp_path / "export"
    onnx = ref == CLOCK_LSTM
    export(run, out, ["safetensors,onnx" if onnx else "safetensors"])
    description = json.loads((out / DESCRIPTION_FILE).read_text())
    task = TASK if ref == CLOCK else LSTM_TASK
    loaded = load_policy(out, task=task)
    assert loaded.remembers
    sessions, states = {}, {}
    for policy, entry in description["policies"].items() if onnx else ():
        state = entry["onnx_state"]
        assert [s["input"] for s in state] == [i["name"] for i in entry["onnx_inputs"][1:]]
        states[policy] = state
        sessions[policy] = onnxruntime.InferenceSession(
            str(out / f"{policy}.onnx"), providers=["CPUExecutionProvider"]
        )
    for seed in (5, 6):
        env = ClockEnv({"flat": flat})
        obs, _ = env.reset(seed=seed)
        loaded.reset()
        memory = {}  # the ONNX graph's state per agent
        returns = dict.fromkeys(env.possible_agents, 0.0)
        while obs:
            actions = loaded.actions(obs)
            for agent, ob in obs.items() if onnx else ():
                policy = task.policy_of(agent)
                feeds = {"obs": ob[None]}
                for leaf in states[policy]:
                    initial = np.asarray(leaf["initial"], np.float32)[None]
                    feeds[leaf["input"]] = memory.get((agent, leaf["input"]), initial)
                action, *after = sessions[policy].run(None, feeds)
                assert int(action[0]) == int(actions[agent]), (seed, agent)
                for leaf, value in zip(states[policy], after, strict=True):
                    memory[(agent, leaf["input"])] = value
            obs, rewards, terminateds, _, infos = env.step(actions)
            for agent, reward in rewards.items():
                returns[agent] += reward
            if terminateds.get("__all__"):
                break
        if ref == CLOCK:  # the counting module: every decision right
            assert returns == {a: infos[a]["decisions"] for a in env.possible_agents}


# -- settings --------------------------------------------------------------------------------


def test_memory_settings_are_checked(cli, tmp_path: Path) -> None:
    from hmarl import Task
    from hmarl.task import TaskError

    done = cli("train", "--memory", "lstm", "--stop-iters", "1", "--out", str(tmp_path / "r"))
    assert done.returncode == 2
    assert "every policy of task chicken_yard has the task's own module" in done.stderr
    assert not (tmp_path / "r").exists()
    with pytest.raises(TaskError, match="the memory of p must be one of none, lstm"):
        Task(name="t", make_env=dict, policy_of=str, ppo={"p": {"memory": "gru"}})
    with pytest.raises(TaskError, match="max_seq_len of p must be a whole number"):
        Task(name="t", make_env=dict, policy_of=str, ppo={"p": {"max_seq_len": 0}})


# -- the memory task -------------------------------------------------------------------------


def test_the_memory_tasks_batched_env_is_its_env() -> None:
    from hmarl.tasks.memory import TASK as MEMORY

    assert check_batched_env(MEMORY, {}, seeds=range(64)) > 0
    assert check_batched_env(MEMORY, {"cues": 2, "middle_decisions": 0, "max_delay": 6}, range(64))


def test_memory_is_needed_and_enough() -> None:
    """Perfect recall (a hand-written policy with memory) names every cue; acting on what
    it sees now, a policy is right one time in ``cues``, at best."""
    from hmarl.evaluation import baseline_policies
    from hmarl.tasks.memory import TASK as MEMORY

    config = MEMORY.env_config_dict({})
    seeds = episode_seeds(None, 600)
    found = {}
    for name, policy in baseline_policies(MEMORY, config, seed=0).items():
        for batched in (True, False):
            result = evaluate(MEMORY, config, policy, seeds, batched=batched)
            found[name, batched] = result.metrics["success_rate"]
    assert found[("recall", True)] == found[("recall", False)] == 1.0
    assert abs(found[("random", True)] - 1 / 3) < 0.06


def test_the_memory_env_refuses_bad_input() -> None:
    from hmarl.tasks.memory.env import MemoryEnv

    env = MemoryEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="agent low is not due to act"):
        env.step({"low": 0})
    with pytest.raises(ValueError, match="outside Discrete"):
        env.step({"high": 7})
    with pytest.raises(ValueError, match="unknown agent 'x'"):
        env.step({"x": 0})
