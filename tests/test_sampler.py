"""The batched sampler against RLlib's own: the same rows, values and advantages on the same
steps (row by row, each agent's in time order), the same distribution under the same
weights, and the bookkeeping across samples."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ray.rllib.core.columns import Columns
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.env.multi_agent_episode import MultiAgentEpisode
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from hmarl.advantages import DISCOUNTS
from hmarl.algorithm import HierarchicalPPO
from hmarl.batched_env import agent_groups
from hmarl.stock_runner import MemoryEpisode
from hmarl.task import Task
from hmarl.task_env import StampedEnv
from hmarl.tasks.chicken_yard import TASK as YARD
from hmarl.tasks.round_up import TASK as ROUND_UP
from hmarl.training import TrainConfig, build_config, plan

GAMMA, LAMBDA = 0.95, 0.9


class Recorder:
    """A batched env that remembers every reset (seeds) and every step (actions)."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.events: list[tuple[str, Any, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def reset(self, seeds: list[int], where: np.ndarray | None = None) -> None:
        self.events.append(("reset", list(seeds), None if where is None else where.copy()))
        self.env.reset(seeds, where)

    def step(self, actions: dict[str, np.ndarray]) -> Any:
        self.events.append(("step", {g: a.copy() for g, a in actions.items()}, None))
        return self.env.step(actions)


def recorded_algo(
    task: Task, tmp_path: Path, ppo: dict | None = None, ref: str | None = None, **settings: Any
) -> tuple[HierarchicalPPO, list[Recorder]]:
    """An algorithm on the batched sampler whose batched envs record; ``ref`` finds the
    task (default: its name)."""
    recorders: list[Recorder] = []

    def make_batched_env(config: dict, n: int) -> Recorder:
        recorders.append(Recorder(task.make_batched_env(config, n)))
        return recorders[-1]

    p = plan(
        TrainConfig(
            task=ref or task.name,
            out=tmp_path / "run",
            stop_iters=1,
            gamma=GAMMA,
            lambda_=LAMBDA,
            sampler="batched",
            **settings,
        )
    )
    # The task's own PPO settings (a centralised critic, say), with the test's on top.
    own = {p: {**task.ppo.get(p, {}), **(ppo or {}).get(p, {})} for p in {*task.ppo, *(ppo or {})}}
    p.task = dataclasses.replace(task, make_batched_env=make_batched_env, ppo=own)
    return HierarchicalPPO(config=build_config(p)), recorders


def replay(
    task: Task,
    events: list,
    env_config: dict,
    num_envs: int,
    windows: list[int],
    modules: Any = None,
) -> list[list]:
    """The recorded steps again, through the task's env and RLlib's episodes.

    Returns, per sample window, the episode chunks RLlib's env runner would have
    returned for it: finished episodes, then the running ones cut at the window's end.
    With ``modules`` (policies' modules with memory) each action's ``STATE_OUT`` is the
    module's, from its agent's last one (the initial state at the agent's first), and
    episodes are cut as hmarl's StockEnvRunner cuts them.
    """
    groups = agent_groups(task.make_batched_env(env_config, 1))
    central = any(settings.get("critic") == "central" for settings in task.ppo.values())
    envs = [StampedEnv(task.make_env(env_config), task.name, central) for _ in range(num_envs)]
    episodes: list[MultiAgentEpisode | None] = [None] * num_envs
    last_obs: list[dict] = [{} for _ in range(num_envs)]
    memory: list[dict] = [{} for _ in range(num_envs)]
    """Each env's agents' last STATE_OUT."""
    chunks: list[list] = []
    done: list = []
    steps_left = list(windows)
    for kind, payload, where in events:
        if kind == "reset":
            rows = range(num_envs) if where is None else np.flatnonzero(where)
            for b, seed in zip(rows, payload, strict=True):
                obs, infos = envs[b].reset(seed=seed)
                episodes[b] = (MultiAgentEpisode if modules is None else MemoryEpisode)(
                    observation_space={
                        a: envs[b].get_observation_space(a) for a in envs[b].possible_agents
                    },
                    action_space={a: envs[b].get_action_space(a) for a in envs[b].possible_agents},
                    agent_to_module_mapping_fn=lambda agent, episode: task.policy_of(agent),
                )
                episodes[b].add_env_reset(observations=obs, infos=infos)
                last_obs[b] = obs
                memory[b] = {}
            continue
        for b, env in enumerate(envs):
            due = [
                a
                for a in last_obs[b]
                if not episodes[b].agent_episodes.get(a, None)
                or not episodes[b].agent_episodes[a].is_done
            ]
            actions = {a: payload[groups[a][0]][b, groups[a][1]] for a in due}
            outputs = {
                a: {Columns.ACTION_LOGP: 0.0, Columns.ACTION_DIST_INPUTS: np.zeros(10)} for a in due
            }
            if modules is not None:
                for a in due:
                    outputs[a][Columns.STATE_OUT] = memory[b][a] = _next_state(
                        modules[task.policy_of(a)], last_obs[b][a], memory[b].get(a)
                    )
            obs, rewards, terminateds, truncateds, infos = env.step(actions)
            episodes[b].add_env_step(
                obs,
                actions,
                rewards,
                infos,
                terminateds=terminateds,
                truncateds=truncateds,
                extra_model_outputs=outputs,
            )
            ending = {a for a in obs if terminateds.get(a) or truncateds.get(a)}
            last_obs[b] = {a: o for a, o in obs.items() if a not in ending}
            if episodes[b].is_done:
                done.append(episodes[b])
        steps_left[0] -= 1
        if steps_left[0] == 0:
            # As MultiAgentEnvRunner._sample ends a call: cut the running episodes
            # (with its lookback of one step) and drop agents without a transition.
            running = [e for e in episodes if not e.is_done and e.env_t > e.env_t_started]
            returned = [copy.deepcopy(e) for e in done + running]
            for episode in returned:
                MultiAgentEnvRunner._prune_zero_len_sa_episodes(episode)
            chunks.append(returned)
            episodes = [e if e.is_done else e.cut(len_lookback_buffer=1) for e in episodes]
            done = []
            steps_left.pop(0)
    return chunks


def _next_state(module: Any, obs: np.ndarray, state: Any) -> Any:
    """A module with memory's state after one decision from ``state`` (None: the initial)."""
    import torch
    import tree

    from hmarl.policies import forward

    state = (
        module.get_initial_state() if state is None else tree.map_structure(torch.from_numpy, state)
    )
    with torch.no_grad():
        _, after = forward(
            module,
            torch.from_numpy(np.asarray(obs)[None]),
            tree.map_structure(lambda leaf: leaf[None], state),
        )
    return tree.map_structure(lambda leaf: leaf[0].numpy(), after)


HIGH_GAMMA, HIGH_LAMBDA = 0.9, 0.5
"""A high level's own gamma and lambda (a task's PPO settings), unlike the run's."""

COMPARED = (
    Columns.ACTIONS,
    Columns.REWARDS,
    DISCOUNTS,
    Columns.TERMINATEDS,
    Columns.TRUNCATEDS,
    Postprocessing.VALUE_TARGETS,
    Postprocessing.ADVANTAGES,
)


def sequences(batch: dict) -> dict[bytes, np.ndarray]:
    """Each agent's rows of one sample (one agent-episode's), in time order, keyed by the
    observation of its first row; the bootstrap row that closes them is left out."""
    obs = batch[Columns.OBS]
    fields = [obs[k] for k in sorted(obs)] if isinstance(obs, dict) else [obs]
    flat = np.concatenate([np.asarray(f).reshape(len(f), -1) for f in fields], axis=1)
    found, start = {}, 0
    for row, trained in enumerate(np.asarray(batch[Columns.LOSS_MASK])):
        if not trained:
            key = flat[start].tobytes()
            assert key not in found, "two sequences start from the same observation"
            found[key] = np.arange(start, row)
            start = row + 1
    assert start == len(flat), "rows after the last bootstrap row"
    return found


@pytest.mark.parametrize(
    ("task", "discounting"),
    [
        (YARD, "smdp"),
        (YARD, "per-decision"),
        (YARD, "smdp, own high gamma"),
        (ROUND_UP, "smdp"),
    ],
    ids=["yard-smdp", "yard-per-decision", "yard-own-high-gamma", "round_up-smdp"],
)
def test_the_same_steps_give_the_same_rows_values_and_advantages(
    task: Task, discounting: str, local_ray, tmp_path
) -> None:
    """Two samples (decisions running across the cut between them included): hmarl's rows
    against those RLlib's learner connectors build from the same steps, paired row by row:
    each agent's rows, in time order, beside the same agent's."""
    own = discounting.endswith("own high gamma")
    ppo = {"high_level_policy": {"gamma": HIGH_GAMMA, "lambda_": HIGH_LAMBDA}} if own else None
    # Episodes of 20 steps in windows of 25: every window holds episode ends (in the yard
    # of both kinds, arrivals and time-outs) and decisions cut by the window.
    env = {"timeout": 20} if task is YARD else {"episode_steps": 20}
    algo, recorders = recorded_algo(
        task,
        tmp_path,
        env={**env, "num_robots": 3},
        num_envs_per_env_runner=8,
        discounting=discounting.split(",")[0],
        ppo=ppo,
    )
    try:
        runner, learner = algo.env_runner, algo.learner_group._learner
        ours = [runner.sample(num_timesteps=8 * 25), runner.sample(num_timesteps=8 * 25)]
        chunks = replay(task, recorders[0].events, algo.config.env_config, 8, [25, 25])
        for window, (batch, episodes) in enumerate(zip(ours, chunks, strict=True)):
            theirs = learner._learner_connector(
                rl_module=learner.module,
                batch={},
                episodes=copy.deepcopy(episodes),
                shared_data={},
                metrics=None,
            )
            mine = learner._make_batch_if_necessary(
                training_data=_training_data(batch)
            ).policy_batches
            for policy in ("high_level_policy", "low_level_policy"):
                from hmarl.advantages import add_advantages

                own_lambda = own and policy == "high_level_policy"
                add_advantages(
                    learner.module[policy], mine[policy], HIGH_LAMBDA if own_lambda else LAMBDA
                )
                where = f"window {window}, {policy}"
                a, b = sequences(mine[policy]), sequences(theirs[policy])
                assert a.keys() == b.keys(), where
                for key, rows in a.items():
                    assert len(rows) == len(b[key]), where
                    for column in COMPARED:
                        np.testing.assert_allclose(
                            np.asarray(mine[policy][column])[rows],
                            np.asarray(theirs[policy][column])[b[key]],
                            atol=1e-5,
                            err_msg=f"{where}: {column}",
                        )
            if own:  # the high level's decisions are discounted by its gamma, k steps each
                discounts = mine["high_level_policy"][DISCOUNTS].numpy().astype(np.float64)
                steps = np.log(discounts) / np.log(HIGH_GAMMA)
                np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
                assert steps.max() > 1
    finally:
        algo.stop()


def _training_data(batch: dict) -> Any:
    from ray.rllib.core.learner.training_data import TrainingData

    return TrainingData(
        batch=MultiAgentBatch({p: SampleBatch(c) for p, c in batch.items()}, env_steps=1)
    )


def test_the_same_weights_give_the_same_distribution(local_ray, tmp_path, monkeypatch) -> None:
    """Both samplers, one set of weights, 9,000 env steps each: returns per policy, the low
    level's steps to arrive and both levels' action frequencies agree within sampling error."""
    import hmarl.metrics
    import hmarl.sampler

    seen: dict[str, dict[str, list]] = {}

    def collector(name: str):
        def log(logger, metrics, policy, episode_return, info, windows=None) -> None:
            got = seen.setdefault(name, {})
            got.setdefault(f"return {policy}", []).append(float(episode_return))
            if policy == "low_level_policy" and info.get("arrived"):
                got.setdefault("steps", []).append(float(info["steps"]))

        return log

    settings = dict(
        env={"timeout": 60, "closeness_threshold": 0.15},
        num_envs_per_env_runner=32,
        schedule_threshold=0.0,
    )
    batched = HierarchicalPPO(
        config=build_config(
            plan(TrainConfig(out=tmp_path / "b", stop_iters=1, sampler="batched", **settings))
        )
    )
    stock = HierarchicalPPO(
        config=build_config(
            plan(TrainConfig(out=tmp_path / "r", stop_iters=1, sampler="rllib", **settings))
        )
    )
    try:
        weights = batched.env_runner.module.get_state()
        stock.env_runner.module.set_state(weights)
        actions: dict[str, dict[str, list]] = {"batched": {}, "rllib": {}}

        monkeypatch.setattr(hmarl.sampler, "log_agent_episode", collector("batched"))
        for _ in range(3):
            for policy, rows in batched.env_runner.sample(num_timesteps=3000).items():
                taken = rows[Columns.ACTIONS][rows[Columns.LOSS_MASK]]
                actions["batched"].setdefault(policy, []).extend(taken.tolist())
        monkeypatch.setattr(hmarl.metrics, "log_agent_episode", collector("rllib"))
        for _ in range(3):
            for episode in stock.env_runner.sample(num_timesteps=3000):
                for agent, agent_episode in episode.agent_episodes.items():
                    policy = YARD.policy_of(agent)
                    actions["rllib"].setdefault(policy, []).extend(agent_episode.get_actions())
    finally:
        batched.stop()
        stock.stop()

    for key in seen["batched"]:
        a, b = np.array(seen["batched"][key]), np.array(seen["rllib"][key])
        assert len(a) > 30 and len(b) > 30, key
        spread = np.sqrt(a.var() / len(a) + b.var() / len(b))
        assert abs(a.mean() - b.mean()) < 4 * spread, (key, a.mean(), b.mean(), spread)
    for policy, taken in actions["batched"].items():
        n = max(max(taken), max(actions["rllib"][policy])) + 1
        ours = np.bincount(taken, minlength=n)
        theirs = np.bincount(actions["rllib"][policy], minlength=n)
        # Pearson's chi-square for two samples; 4 sigma of its spread above its mean.
        total = ours + theirs
        keep = total > 0
        expected = np.outer([ours.sum(), theirs.sum()], total[keep] / total.sum())
        chi2 = (((np.stack([ours[keep], theirs[keep]]) - expected) ** 2) / expected).sum()
        dof = keep.sum() - 1
        assert chi2 < dof + 4 * np.sqrt(2 * dof), (policy, chi2, dof)


def _paths(tree: dict, prefix: tuple[str, ...] = ()) -> set[str]:
    found = set()
    for key, value in tree.items():
        if isinstance(value, dict):
            found |= _paths(value, (*prefix, key))
        else:
            found.add("/".join((*prefix, key)))
    return found


def test_both_samplers_report_rllibs_metrics(local_ray, tmp_path, monkeypatch) -> None:
    """Every metric RLlib's own env runner reports (its timers and connectors' aside) is in
    the batched sampler's results too, under the same key: a Tune stop criterion or a
    dashboard written for RLlib works with either. And the batch the learner gets counts
    the env steps sampled, not its rows."""
    import hmarl.algorithm

    merged, merge_batches = [], hmarl.algorithm.merge_batches

    def merge(*args: Any, **kwargs: Any) -> MultiAgentBatch:
        merged.append(merge_batches(*args, **kwargs))
        return merged[-1]

    monkeypatch.setattr(hmarl.algorithm, "merge_batches", merge)
    results = {}
    for sampler in ("batched", "rllib"):
        config = TrainConfig(
            out=tmp_path / sampler,
            sampler=sampler,
            stop_iters=1,
            train_batch_size=400,
            minibatch_size=400,
            num_epochs=1,
            num_envs_per_env_runner=4,
            env={"timeout": 20},
            schedule_threshold=0.0,
        )
        algo = HierarchicalPPO(config=build_config(plan(config)))
        try:
            results[sampler] = algo.train()["env_runners"]
        finally:
            algo.stop()
    ours, theirs = _paths(results["batched"]), _paths(results["rllib"])
    # hmarl's own metrics appear as their values do (mean_steps with the first arrival).
    skip = ("timer", "connector", "env_to_module", "sample", "hmarl/")
    rllibs = {k for k in theirs if not any(w in k for w in skip)}
    rllibs |= {k for k in theirs if k.startswith("num_") and "sampled" in k}
    assert rllibs <= ours, sorted(rllibs - ours)
    agents = ["robot_1_high", "robot_1_low", "robot_2_high", "robot_2_low"]
    for key in ("agent_episode_returns_mean", "agent_steps", "num_agent_steps_sampled"):
        assert sorted(results["batched"][key]) == agents, key
    for sampler, found in results.items():
        assert {"episode_return_mean", "episode_return_min", "episode_return_max"} <= set(found)
        # Every episode ends at the time limit (20 steps): the same count from both.
        assert found["num_episodes"] == 400 // 20, sampler
    episode = results["batched"]
    assert episode["episode_return_min"] <= episode["episode_return_mean"]
    assert episode["episode_return_mean"] <= episode["episode_return_max"]
    modules = episode["module_episode_returns_mean"]
    assert episode["episode_return_mean"] == pytest.approx(sum(modules.values()))
    assert [batch.env_steps() for batch in merged] == [400]
