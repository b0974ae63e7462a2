"""Training: settings, the plan, the schedule, per-policy updates, checkpoints, resume, the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hmarl.algorithm import HierarchicalPPO
from hmarl.checkpoints import MARKER, find_checkpoints, read_marker
from hmarl.runs import RunRecord, load_trained
from hmarl.tasks.chicken_yard.task import TASK as YARD
from hmarl.training import TrainConfig, build_config, plan

HIGH, LOW = "high_level_policy", "low_level_policy"


def tiny(**overrides) -> TrainConfig:
    settings = dict(
        train_batch_size=600,
        minibatch_size=200,
        num_epochs=1,
        num_envs_per_env_runner=2,
        stop_iters=1,
        env={"timeout": 100},
    )
    return TrainConfig(**{**settings, **overrides})


def build(tmp_path: Path, **overrides) -> HierarchicalPPO:
    return HierarchicalPPO(config=build_config(plan(tiny(out=tmp_path / "run", **overrides))))


def weights(algo: HierarchicalPPO, module_id: str, prefix: str = "") -> np.ndarray:
    state = algo.learner_group.get_weights(module_ids=[module_id])[module_id]
    chosen = [np.asarray(v).ravel() for k, v in state.items() if k.startswith(prefix)]
    return np.concatenate(chosen)


# -- settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("minibatch_size", 10_000, "must not exceed"),
        ("num_envs_per_env_runner", 0, "num_envs_per_env_runner"),
        ("stop_iters", 0, "stop_iters"),
        ("stop_iters", 2.5, "stop_iters: expected a whole number"),
        ("time_budget", -5.0, "time_budget"),
        ("lr", 0.0, "lr"),
        ("lr", "0.001", "lr: expected a number"),
        ("gamma", 7, "gamma must be in"),
        ("use_tune", "no", "use_tune: expected true or false"),
        ("out", 5, "out: expected a path"),
        ("hidden_sizes", [], "hidden_sizes must be a non-empty list"),
        ("modules", "custom", "modules: expected one of"),
        ("seed", 2_000_000_000, "seed must be in"),
        ("keep_checkpoints", -1, "keep_checkpoints must not be negative"),
        ("torch_threads", 0, "torch_threads must be at least 1"),
    ],
)
def test_train_config_refuses_bad_values(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("learning_rate = 0.1\n", "unknown setting(s) learning_rate"),
        ('use_tune = "no"\n', "use_tune: expected true or false"),
        ("stop_iters = 2.5\n", "stop_iters: expected a whole number"),
        ("gamma = 7\n", "gamma must be in (0, 1]"),
        ('lr = "0.001"\n', "lr: expected a number"),
        ("out = 5\n", "out: expected a path"),
        ("hidden_sizes = []\n", "hidden_sizes must be a non-empty list"),
        ("[yard]\ntimeout = 5\n", "go in an [env] table"),
        ("stop_iters = \n", "not valid TOML"),
    ],
)
def test_toml_errors_name_the_setting(toml: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "train.toml"
    path.write_text(toml)
    with pytest.raises(ValueError) as caught:
        TrainConfig.from_toml(path)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"closeness_threshold": 0}, "closeness_threshold must be in (0"),
        ({"move_amount": 50}, "move_amount must be in (0, 1]"),
        ({"step_reward": 0.5}, "step_reward must not be positive"),
        ({"num_robot": 2}, "task chicken_yard has no setting num_robot"),
    ],
)
def test_task_settings_are_checked_before_anything_starts(
    env: dict, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError) as caught:
        plan(TrainConfig(env=env, out=tmp_path / "run", stop_iters=1))
    assert message in str(caught.value)
    assert not (tmp_path / "run").exists()


def test_plan_writes_nothing_and_checks_the_env(tmp_path: Path) -> None:
    p = plan(tiny(out=tmp_path / "run"))
    assert set(p.policies) == {HIGH, LOW}
    assert p.env_config["timeout"] == 100 and p.task.name == "chicken_yard"
    assert not (tmp_path / "run").exists()


# -- training in this process ---------------------------------------------------------


def test_one_iteration_with_the_task_modules(local_ray, tmp_path: Path) -> None:
    algo = build(tmp_path, schedule_threshold=0.0)
    try:
        result = algo.train()
        assert type(algo.get_module(HIGH)).__name__ == "ChickenSetModule"
        assert type(algo.get_module(LOW)).__name__ == "GoalReachingModule"
        assert result["training_iteration"] == 1
        assert result["env_runners"]["num_env_steps_sampled"] >= 600
        assert set(result["learners"]) >= {HIGH, LOW}
        returns = result["env_runners"]["hmarl"]["return"]
        assert set(returns) == {HIGH, LOW}
        # Per agent, not summed over the robots: a high-level return is one compatibility
        # or one time-out, so it lies in [-1, 1] however many robots there are.
        assert -1.0 <= returns[HIGH] <= 1.0
    finally:
        algo.stop()


def test_annealing_scales_every_learning_rate_the_optimizers_use(local_ray, tmp_path) -> None:
    # stop_iters=2: iteration 1 updates at the full rate, iteration 2 at half of it.
    algo = build(tmp_path, schedule_threshold=0.0, anneal_lr=True, stop_iters=2)
    configured = {m: YARD.ppo[m]["lr"] for m in (HIGH, LOW)}  # the yard's own, per policy
    try:
        for factor in (1.0, 0.5):
            result = algo.train()
            for module in (HIGH, LOW):
                logged = result["learners"][module]["default_optimizer_learning_rate"]
                assert logged == pytest.approx(configured[module] * factor)
        # What the optimizers step with now, not only what was logged.
        optimizers = algo.learner_group._learner._named_optimizers.values()
        used = [group["lr"] for optimizer in optimizers for group in optimizer.param_groups]
        assert used == pytest.approx([configured[HIGH] / 2] * len(used))  # both are 2e-3
    finally:
        algo.stop()


def test_annealing_follows_the_nearest_stop() -> None:
    from hmarl.algorithm import LrAnnealing

    assert LrAnnealing().scale(now=5.0, env_steps=10**9, iteration=10**6) == 1.0
    by_time = LrAnnealing(start=100.0, end=200.0)
    assert by_time.scale(now=125.0, env_steps=0, iteration=0) == pytest.approx(0.75)
    assert by_time.scale(now=250.0, env_steps=0, iteration=0) == 0.0  # never negative
    mixed = LrAnnealing(start=100.0, end=200.0, env_steps=1000, iterations=10)
    assert mixed.scale(now=110.0, env_steps=600, iteration=3) == pytest.approx(0.4)
    assert mixed.scale(now=110.0, env_steps=100, iteration=7) == pytest.approx(0.3)


def test_the_held_policy_keeps_its_policy_but_its_value_learns(local_ray, tmp_path) -> None:
    # A two-step time limit: robots almost never arrive, so success stays low and
    # the schedule holds the high level's policy while the low level trains.
    algo = build(tmp_path, env={"timeout": 2})
    try:
        policy, value = weights(algo, HIGH, "scorer"), weights(algo, HIGH, "value")
        low = weights(algo, LOW)
        for _ in range(2):
            result = algo.train()
            assert result["hmarl"]["schedule_open"] == 0.0
        assert np.array_equal(weights(algo, HIGH, "scorer"), policy)
        assert not np.array_equal(weights(algo, HIGH, "value"), value)
        assert not np.array_equal(weights(algo, LOW), low)
        assert algo.schedule_open is False
    finally:
        algo.stop()


def test_the_schedule_opens_on_real_success_and_stays_open(local_ray, tmp_path) -> None:
    # Arrival circles that cover most of the yard: even the untrained low level nearly
    # always arrives, so the real success rate crosses 0.9, and the schedule opens
    # once a full window of 200 robots has finished (not in the first small iteration).
    algo = build(
        tmp_path,
        env={"timeout": 40, "closeness_threshold": 1.0, "num_chickens": 2},
        train_batch_size=200,
        minibatch_size=100,
    )
    try:
        policy = weights(algo, HIGH, "scorer")
        opened_at = None
        for iteration in range(1, 8):
            result = algo.train()
            success = result["env_runners"]["hmarl"]["metric"]["success_rate"]
            count = result["env_runners"]["hmarl"]["count"]["success_rate"]
            if result["hmarl"]["schedule_open"] and opened_at is None:
                opened_at = iteration
                assert success >= 0.9 and count >= 200
            if opened_at is None:
                assert count < 200 or success < 0.9
        assert opened_at is not None and opened_at > 1
        algo.train()
        assert not np.array_equal(weights(algo, HIGH, "scorer"), policy)
        assert algo.get_state()["schedule_open"] is True
    finally:
        algo.stop()


def test_the_schedules_metric_is_averaged_over_the_schedules_window() -> None:
    """30 failures, then 20 arrivals: over a window of 20 the rate is 1; over 200, 0.4."""
    from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

    from hmarl.metrics import count_key, log_agent_episode, metric_key, metric_windows
    from hmarl.tasks.chicken_yard import TASK as YARD

    success = YARD.metric("success_rate")
    for window, rate in ((20, 1.0), (200, 0.4)):
        windows = metric_windows(dataclasses.replace(YARD.schedule, window=window))
        logger = MetricsLogger()
        for arrived in [False] * 30 + [True] * 20:
            log_agent_episode(logger, YARD.metrics, LOW, 0.0, {success.key: arrived}, windows)
        assert logger.peek(metric_key("success_rate")) == pytest.approx(rate)
        assert logger.peek(count_key("success_rate")) == 50


@pytest.mark.parametrize("sampler", ["batched", "rllib"])
def test_both_samplers_log_the_schedules_metric_over_its_window(
    sampler: str, local_ray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hmarl.metrics
    import hmarl.sampler

    seen: list[dict | None] = []
    log = hmarl.metrics.log_agent_episode

    def recorded(logger, metrics, policy, episode_return, info, windows=None) -> None:
        seen.append(windows)
        log(logger, metrics, policy, episode_return, info, windows)

    monkeypatch.setattr(hmarl.sampler, "log_agent_episode", recorded)
    monkeypatch.setattr(hmarl.metrics, "log_agent_episode", recorded)
    p = plan(tiny(out=tmp_path / "run", sampler=sampler, env={"timeout": 10}))
    p.task = dataclasses.replace(p.task, schedule=dataclasses.replace(p.task.schedule, window=20))
    algo = HierarchicalPPO(config=build_config(p))
    try:
        algo.env_runner.sample(num_timesteps=40)
    finally:
        algo.stop()
    assert seen and all(windows == {"success_rate": 20} for windows in seen)


def test_each_policy_gets_its_own_epochs(
    local_ray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every row of a policy's batch is trained on exactly num_epochs times per update, the
    high level's few as often as the low level's many. (RLlib 2.60's own iterator runs
    until the largest module has done its epochs, cycling the smaller ones: the high
    level's rows would be used about as many times over as the low level has rows more.)"""
    import hmarl.learner

    updates = []

    class Recorded(hmarl.learner.PerModuleMinibatches):
        def __init__(self, batch, *args, **kwargs) -> None:
            super().__init__(batch, *args, **kwargs)
            updates.append({m: (len(b), self.plans[m]) for m, b in batch.policy_batches.items()})

    monkeypatch.setattr(hmarl.learner, "PerModuleMinibatches", Recorded)
    algo = build(tmp_path, schedule_threshold=0.0, num_epochs=3)
    try:
        result = algo.train()
    finally:
        algo.stop()
    (update,) = updates
    assert update[HIGH][0] * 10 < update[LOW][0]  # a small module beside a large one
    for module, (rows, minibatches) in update.items():
        assert np.array_equal(np.bincount(np.concatenate(minibatches), minlength=rows), [3] * rows)
        assert len(minibatches) == 3 * math.ceil(rows / 200)  # minibatches of at most 200 rows
        assert all(len(minibatch) <= 200 for minibatch in minibatches)
        assert result["learners"][module]["num_module_steps_trained"] == 3 * rows, module


def test_checkpoint_restores_the_same_actions(local_ray, tmp_path: Path) -> None:
    from hmarl.checkpoints import save_atomically

    p = plan(tiny(out=tmp_path / "run", schedule_threshold=0.0))
    algo = HierarchicalPPO(config=build_config(p))
    try:
        algo.train()
        p.out.mkdir()
        RunRecord(p.task.name, p.task_ref, p.env_config, "test").write(p.out)
        checkpoint = save_atomically(
            lambda tmp: algo.save_checkpoint(str(tmp.resolve())), p.out / "checkpoint_000001"
        )
        module = algo.get_module(HIGH)
    finally:
        algo.stop()
    assert find_checkpoints(p.out) == [checkpoint]
    assert read_marker(checkpoint)["iteration"] == 1
    assert not list(p.out.glob(".*partial"))

    obs, _ = p.task.make_env(p.env_config).reset(seed=3)
    batch = {k: torch.from_numpy(v)[None] for k, v in obs["robot_1_high"].items()}
    with torch.no_grad():
        expected = module.forward_inference({"obs": batch})["action_dist_inputs"]
        loaded = load_trained(p.out).policy.modules[HIGH]
        assert torch.equal(expected, loaded.forward_inference({"obs": batch})["action_dist_inputs"])

    restored = HierarchicalPPO.from_checkpoint(str(checkpoint))
    try:
        assert restored.iteration == 1
        with torch.no_grad():
            again = restored.get_module(HIGH).forward_inference({"obs": batch})
        assert torch.equal(expected, again["action_dist_inputs"])
    finally:
        restored.stop()


def _all_weights(algo: HierarchicalPPO) -> dict[str, np.ndarray]:
    return {m: weights(algo, m) for m in (HIGH, LOW)}


def _optimizer_state(algo: HierarchicalPPO) -> list[np.ndarray]:
    import tree

    state = algo.learner_group.get_state()["learner"]["optimizer"]
    return [np.asarray(leaf) for leaf in tree.flatten(state)]


def test_any_process_learns_the_same_weights(tmp_path: Path) -> None:
    """The same seed, the same weights, whatever the process's string hash seed; another
    seed, others. Each process trains both samplers, its seeds in its own order, so a
    run that leaks state into the next in one process shows too."""
    import os
    import subprocess
    import sys

    script = Path(__file__).with_name("weights_digest.py")
    runs = {"1": ["7", "8"], "3": ["8", "7"]}
    started = {
        hash_seed: subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / hash_seed), *seeds],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONWARNINGS": "ignore"},
        )
        for hash_seed, seeds in runs.items()
    }
    found = {}
    for hash_seed, process in started.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        found[hash_seed] = json.loads(out.strip().splitlines()[-1])
    for sampler in ("batched", "rllib"):
        first, second = found["1"][sampler], found["3"][sampler]
        assert first == second, sampler
        assert first["7"] != first["8"], sampler


def test_resume_restores_the_state_and_samples_new_episodes(
    local_ray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Weights, optimizer, schedule and counters come back; the episodes do not repeat."""
    import hmarl.sampler
    from hmarl.checkpoints import save_atomically

    drawn: list[list[int]] = []
    draw = hmarl.sampler.draw_seeds
    monkeypatch.setattr(
        hmarl.sampler, "draw_seeds", lambda g, n: drawn.append(draw(g, n)) or drawn[-1]
    )
    settings = dict(env={"timeout": 40, "closeness_threshold": 1.0, "num_chickens": 2})
    settings |= dict(train_batch_size=200, minibatch_size=100)

    first = build(tmp_path / "a", **settings)
    try:
        while not first.schedule_open:  # past the switch, so the checkpoint holds it open
            first.train()
        checkpoint = save_atomically(
            lambda tmp: first.save_checkpoint(str(tmp.resolve())), tmp_path / "checkpoint"
        )
        saved = _all_weights(first), _optimizer_state(first), first.iteration
        steps = first.metrics.peek(("env_runners", "num_env_steps_sampled_lifetime"))
    finally:
        first.stop()
    seen = {seed for seeds in drawn for seed in seeds}

    after = []
    for run in ("b", "c"):
        drawn.clear()
        resumed = build(tmp_path / run, **settings)
        try:
            resumed.restore_from_path(str(checkpoint))
            weights_now, optimizer, _ = saved
            assert all(np.array_equal(weights(resumed, m), weights_now[m]) for m in (HIGH, LOW))
            restored = _optimizer_state(resumed)
            assert len(restored) == len(optimizer) > 0
            assert all(np.array_equal(a, b) for a, b in zip(restored, optimizer, strict=True))
            assert resumed.schedule_open is True
            assert resumed.metrics.peek(("env_runners", "num_env_steps_sampled_lifetime")) == steps
            resumed.train()
            after.append(_all_weights(resumed))
        finally:
            resumed.stop()
        new = {seed for seeds in drawn for seed in seeds}
        assert new and not new & seen, "a resumed run replays the episodes of the first one"
    # Resuming is itself reproducible: the same checkpoint, the same next iteration.
    assert all(np.array_equal(after[0][m], after[1][m]) for m in (HIGH, LOW))


def test_remote_env_runners_get_new_episode_streams_on_resume(local_ray, tmp_path: Path) -> None:
    """RLlib checkpoints no remote runner's state: without a reseed they would start over."""
    import copy

    from hmarl.checkpoints import save_atomically
    from hmarl.seeding import draw_seeds

    def upcoming(algo: HierarchicalPPO) -> list[list[int]]:
        return algo.env_runner_group.foreach_env_runner(
            lambda runner: draw_seeds(copy.deepcopy(runner._seeds), 4), local_env_runner=False
        )

    first = build(tmp_path / "a", num_env_runners=1, schedule_threshold=0.0)
    try:
        fresh = upcoming(first)
        first.train()
        checkpoint = save_atomically(
            lambda tmp: first.save_checkpoint(str(tmp.resolve())), tmp_path / "checkpoint"
        )
    finally:
        first.stop()
    resumed = build(tmp_path / "b", num_env_runners=1, schedule_threshold=0.0)
    try:
        assert upcoming(resumed) == fresh  # the same run's runner starts the same stream
        resumed.restore_from_path(str(checkpoint))
        assert upcoming(resumed) != fresh
    finally:
        resumed.stop()


def test_a_time_budget_trains_on_every_core_and_a_run_to_a_stop_on_one(monkeypatch) -> None:
    from hmarl.training import torch_threads_of

    cores = len(os.sched_getaffinity(0))
    assert torch_threads_of(TrainConfig(time_budget=60.0)) == cores
    assert torch_threads_of(TrainConfig(stop_timesteps=10_000)) == 1
    assert torch_threads_of(TrainConfig(time_budget=60.0, stop_iters=5)) == cores
    # On a cluster the training process's node and its neighbours are unknown.
    assert torch_threads_of(TrainConfig(time_budget=60.0, address="10.0.0.1:6379")) == 1
    assert torch_threads_of(TrainConfig(stop_iters=5, torch_threads=3)) == 3
    assert torch_threads_of(TrainConfig(time_budget=60.0, torch_threads=1)) == 1
    # Pinned to one core (taskset), as the benchmarks pin runs side by side: one thread.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert torch_threads_of(TrainConfig(time_budget=60.0)) == 1


def test_the_training_process_uses_its_threads_and_a_remote_runner_one(
    local_ray, tmp_path: Path
) -> None:
    algo = build(tmp_path, num_env_runners=1, torch_threads=2)
    try:
        assert torch.get_num_threads() == 2  # the learner's and the local runner's process
        remote = algo.env_runner_group.foreach_env_runner(
            lambda runner: torch.get_num_threads(), local_env_runner=False
        )
        assert remote == [1]
    finally:
        algo.stop()
        torch.set_num_threads(1)


# -- the command line -------------------------------------------------------------------


def _iterations(result_file: Path) -> list[int]:
    return [json.loads(line)["training_iteration"] for line in result_file.read_text().splitlines()]


@pytest.mark.parametrize("mode", ["--no-tune", "--tune"])
def test_resume_continues_the_iteration_count(mode, tmp_path: Path, tiny_config: Path, hmarl):
    out = tmp_path / "run"
    flags = ["--no-tune"] if mode == "--no-tune" else []
    common = ["train", "--config", str(tiny_config), "--out", str(out), "--no-evaluate", *flags]
    first = hmarl(*common, "--stop-iters", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stderr.strip() == "", "Ray's and RLlib's messages go to the run's log file"
    again = hmarl(*common, "--stop-iters", "1")
    assert again.returncode == 2
    assert f"continue it with `hmarl train --resume --out {out}`" in again.stderr

    second = hmarl(*common, "--resume", "--stop-iters", "4", "--keep-checkpoints", "2")
    assert second.returncode == 0, second.stderr[-3000:]
    (resuming,) = [line for line in second.stdout.splitlines() if line.startswith("resuming")]
    # One line, however long the paths.
    assert resuming.startswith(f"resuming {out} from {out}/")
    assert resuming.endswith("(iteration 1)")
    assert second.stdout.strip().splitlines()[-1].startswith("checkpoint: ")
    # Through Tune, the resumed leg is a second trial folder with its own log.
    logs = sorted(out.rglob("result.json"), key=lambda p: p.stat().st_mtime)
    assert [i for log in logs for i in _iterations(log)] == [1, 2, 3, 4]
    # The leg kept its newest two checkpoints; the first leg's is not its to delete.
    assert [read_marker(c)["iteration"] for c in find_checkpoints(out)] == [1, 3, 4]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stop-iters", "0"], "--stop-iters"),
        (["--time-budget", "soon"], "--time-budget"),
        (["--num-robots", "0"], "num_robots must be at least 1"),
        (["--num-robots", "many"], "--num-robots"),
        (["--bogus", "3"], "Unrecognized options: --bogus"),
        (["--config", "/nonexistent/train.toml"], "does not exist"),
        (["--config", "/tmp"], "is a folder"),
        (["--resume", "--out", "/tmp/hmarl-no-such-run"], "nothing to resume"),
        (["--task", "no_such_task"], "no task named 'no_such_task'"),
        (["--task", "no_such_module:TASK"], "no module named 'no_such_module'"),
        (["--task", "hmarl.task:Task"], "is a type, not an hmarl.Task"),
        (["--task", "hmarl.task:NOTHING"], "has no 'NOTHING'"),
    ],
)
def test_train_cli_errors_are_one_line_exit_2(args: list[str], message: str, cli) -> None:
    done = cli("train", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_resume_without_out_continues_the_tasks_default_folder(
    tmp_path: Path, cli, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    done = cli("train", "--resume", "--task", "round_up")
    assert done.returncode == 2
    assert "nothing to resume in runs/round_up: it holds no hmarl_run.json" in done.stderr


def test_help_mentions_the_config_file_only_where_there_is_one(cli) -> None:
    assert "[env] table in --config" in cli("train", "--help").stdout
    for command in ("evaluate", "watch", "random", "check"):
        done = cli(command, "--help")
        assert "settings of task chicken_yard:" in done.stdout and "--config" not in done.stdout


def test_resume_never_makes_an_empty_folder_or_redoes_a_finished_run(
    tmp_path: Path, trained_run: Path, cli
) -> None:
    done = cli("train", "--resume", "--out", str(tmp_path / "nothing"))
    assert done.returncode == 2 and not (tmp_path / "nothing").exists()
    done = cli("train", "--resume", "--out", str(trained_run), "--stop-iters", "2")
    assert done.returncode == 2
    assert "nothing to do" in done.stderr and "iteration 2" in done.stderr


def test_train_on_a_two_node_cluster(tmp_path: Path, tiny_config: Path, hmarl) -> None:
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False}
    )
    try:
        cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        done = hmarl(
            "train",
            "--config",
            str(tiny_config),
            "--address",
            cluster.address,
            "--num-env-runners",
            "2",
            "--stop-iters",
            "1",
            "--no-evaluate",
            "--out",
            str(tmp_path / "cluster"),
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.strip().splitlines()[-1].startswith("checkpoint: ")
    finally:
        cluster.shutdown()


def test_tune_lets_go_of_each_trial_result_once_handled(local_ray) -> None:
    """Ray 2.60's actor manager keeps every task's future (and so its result) for the
    trial's whole life; with hmarl's fix it keeps only those still pending, and every
    result still reaches its callback."""
    import ray
    from ray.air.execution import FixedResourceManager, ResourceRequest
    from ray.air.execution._internal import RayActorManager

    from hmarl.tuning import forget_resolved_task_futures

    @ray.remote
    class Trial:
        def train(self, i: int) -> dict:
            return {"iteration": i}

    forget_resolved_task_futures()
    manager = RayActorManager(resource_manager=FixedResourceManager())
    trial = manager.add_actor(Trial, kwargs={}, resource_request=ResourceRequest([{"CPU": 1}]))
    while not manager.is_actor_started(trial):
        manager.next(timeout=10)
    seen: list[int] = []
    for i in range(5):
        manager.schedule_actor_task(
            trial, "train", args=(i,), on_result=lambda _, r: seen.append(r["iteration"])
        )
    assert len(manager._tracked_actors_to_task_futures[trial]) == 5  # all pending
    while manager.num_actor_tasks:
        manager.next(timeout=10)
    assert sorted(seen) == [0, 1, 2, 3, 4]
    assert not manager._tracked_actors_to_task_futures[trial]
    manager.remove_actor(trial)
    manager.cleanup()


# -- stops and the time budget --------------------------------------------------------------


def test_the_deadline_keeps_the_wrap_up_and_the_closing_evaluations_time() -> None:
    from hmarl.training import Deadline, episodes_that_fit

    result = {"training_iteration": 1}
    cfg = TrainConfig(time_budget=100.0)
    now = time.monotonic()
    wrap_up = Deadline.WRAP_UP_SECONDS
    assert not Deadline(cfg, now - (100 - wrap_up - 10 - 1), reserve=10).done(result)
    assert Deadline(cfg, now - (100 - wrap_up - 10 + 1), reserve=10).done(result)
    # A resumed run: what is left of its budget, from this command's start.
    assert not Deadline(cfg, now - 30, time_left=30 + wrap_up + 1).done(result)
    assert Deadline(cfg, now - 30, time_left=30 + wrap_up - 1).done(result)
    # What --anneal-lr anneals toward: the same last moment, as a wall-clock time.
    ends = Deadline(cfg, time.monotonic(), reserve=10).training_end()
    assert ends == pytest.approx(time.time() + 100 - wrap_up - 10, abs=0.5)
    assert Deadline(TrainConfig(stop_iters=3), now).training_end() is None
    assert episodes_that_fit(0.5, 10.0, 500) == 20
    assert episodes_that_fit(0.001, 10.0, 500) == 500
    assert episodes_that_fit(2.0, 1.0, 500) == 0


def test_describe_stop_says_which_stop_wins() -> None:
    from hmarl.training import describe_stop

    assert describe_stop(TrainConfig(stop_iters=2, time_budget=10)) == (
        "after 2 iterations or 10 s (the time budget, closing evaluation included), "
        "whichever comes first"
    )
    assert describe_stop(TrainConfig(time_budget=120), time_left=45) == (
        "after 45 s (the rest of its 120-second time budget)"
    )


@pytest.mark.parametrize(("used", "left"), [(90.0, 30.0), (110.0, None)])
def test_resume_gets_the_rest_of_the_runs_time_budget(
    used: float, left: float | None, trained_run: Path, tmp_path: Path
) -> None:
    from hmarl.runs import RECORD_FILE, checkpoints_of

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    record = RunRecord.read(run / RECORD_FILE)
    dataclasses.replace(record, stop={"time_budget": 120.0}).write(run)
    newest = checkpoints_of(run)[0]
    marker = json.loads((newest / MARKER).read_text())
    (newest / MARKER).write_text(json.dumps({**marker, "budget_used": used}))
    if left is None:
        with pytest.raises(ValueError, match="used 110 s of its 120-second time budget"):
            plan(TrainConfig(out=run, resume=True), check_env=False)
        return
    p = plan(TrainConfig(out=run, resume=True), check_env=False)
    assert (p.cfg.time_budget, p.time_left, p.cfg.stop_iters) == (120.0, left, None)
    p = plan(TrainConfig(out=run, resume=True, stop_iters=9), check_env=False)
    assert (p.cfg.time_budget, p.time_left) == (None, None)  # told otherwise
