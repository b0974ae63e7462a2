"""Training: the config, the custom algorithm's schedule, checkpoints, resume, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hmarl.algorithm import HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY, HierarchicalPPO
from hmarl.checkpoints import find_checkpoints, load_policy
from hmarl.simulation import YardConfig
from hmarl.training import TrainConfig, build_config, policy_for_agent, save_checkpoint
from hmarl.yard import ChickenYardEnv


def tiny(**overrides) -> TrainConfig:
    settings = dict(
        train_batch_size=600,
        minibatch_size=200,
        num_epochs=1,
        num_envs_per_env_runner=2,
        stop_iters=1,
        yard=YardConfig(timeout=100),
    )
    return TrainConfig(**{**settings, **overrides})


def weights(algo: HierarchicalPPO, module_id: str) -> np.ndarray:
    state = algo.learner_group.get_weights(module_ids=[module_id])[module_id]
    return np.concatenate([np.asarray(v).ravel() for v in state.values()])


def test_policy_mapping_by_agent_id() -> None:
    assert policy_for_agent("robot_3_high") == HIGH_LEVEL_POLICY
    assert policy_for_agent("robot_1_low") == LOW_LEVEL_POLICY
    with pytest.raises(ValueError, match="robot_1_middle"):
        policy_for_agent("robot_1_middle")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("minibatch_size", 10_000, "must not exceed"),
        ("num_envs_per_env_runner", 0, "num_envs_per_env_runner"),
        ("stop_iters", 0, "stop_iters"),
        ("time_budget", -5.0, "time_budget"),
        ("high_level_start_success", 1.5, "high_level_start_success"),
        ("lr", 0.0, "lr"),
    ],
)
def test_train_config_refuses_bad_values(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_one_iteration_with_the_custom_modules(local_ray) -> None:
    algo = HierarchicalPPO(config=build_config(tiny(high_level_start_success=0.0)))
    try:
        result = algo.train()
        module = algo.get_module(HIGH_LEVEL_POLICY)
        assert type(module).__name__ == "ChickenSetModule"
        assert type(algo.get_module(LOW_LEVEL_POLICY)).__name__ == "GoalReachingModule"
        assert result["training_iteration"] == 1
        assert result["env_runners"]["num_env_steps_sampled"] >= 600
        assert set(result["learners"]) >= {HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY}
    finally:
        algo.stop()


def test_schedule_holds_the_high_level_until_the_low_level_succeeds(local_ray) -> None:
    # A two-step time limit: robots almost never arrive, so success stays low and
    # the high level must stay frozen while the low level trains.
    algo = HierarchicalPPO(config=build_config(tiny(yard=YardConfig(timeout=2))))
    try:
        high, low = weights(algo, HIGH_LEVEL_POLICY), weights(algo, LOW_LEVEL_POLICY)
        for _ in range(2):
            result = algo.train()
            assert result["high_level_training"] == 0.0
        assert np.array_equal(weights(algo, HIGH_LEVEL_POLICY), high)
        assert not np.array_equal(weights(algo, LOW_LEVEL_POLICY), low)
        assert algo.high_level_training is False
    finally:
        algo.stop()


def test_schedule_opens_at_the_threshold_and_stays_open(local_ray) -> None:
    algo = HierarchicalPPO(config=build_config(tiny(high_level_start_success=0.0)))
    try:
        high = weights(algo, HIGH_LEVEL_POLICY)
        assert algo.train()["high_level_training"] == 1.0
        assert not np.array_equal(weights(algo, HIGH_LEVEL_POLICY), high)
        assert algo.get_state()["high_level_training"] is True
    finally:
        algo.stop()


def test_checkpoint_restores_the_same_actions(local_ray, tmp_path: Path) -> None:
    algo = HierarchicalPPO(config=build_config(tiny(high_level_start_success=0.0)))
    try:
        algo.train()
        checkpoint = save_checkpoint(algo, tmp_path, 1)
        modules = {m: algo.get_module(m) for m in (HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY)}
    finally:
        algo.stop()
    assert find_checkpoints(tmp_path) == [checkpoint]
    assert not list(tmp_path.glob(".*partial"))

    env = ChickenYardEnv(YardConfig(timeout=100))
    obs, _ = env.reset(seed=3)
    high_obs = obs["robot_1_high"]
    loaded = load_policy(checkpoint)
    batch = {k: torch.from_numpy(v)[None] for k, v in high_obs.items()}
    with torch.no_grad():
        expected = modules[HIGH_LEVEL_POLICY].forward_inference({"obs": batch})
        got = loaded.modules[HIGH_LEVEL_POLICY].forward_inference({"obs": batch})
    assert torch.equal(expected["action_dist_inputs"], got["action_dist_inputs"])

    restored = HierarchicalPPO.from_checkpoint(str(checkpoint))
    try:
        assert restored.iteration == 1
        with torch.no_grad():
            again = restored.get_module(HIGH_LEVEL_POLICY).forward_inference({"obs": batch})
        assert torch.equal(expected["action_dist_inputs"], again["action_dist_inputs"])
    finally:
        restored.stop()


def _iterations(result_file: Path) -> list[int]:
    return [json.loads(line)["training_iteration"] for line in result_file.read_text().splitlines()]


@pytest.mark.parametrize("mode", ["--no-tune", "--tune"])
def test_resume_continues_the_iteration_count(mode, tmp_path: Path, tiny_config: Path, hmarl):
    out = tmp_path / "run"
    flags = ["--no-tune"] if mode == "--no-tune" else []
    common = ["train", "--config", str(tiny_config), "--out", str(out), "--no-evaluate", *flags]
    first = hmarl(*common, "--stop-iters", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    again = hmarl(*common, "--stop-iters", "1")
    assert again.returncode == 2 and "--resume" in again.stderr

    second = hmarl(*common, "--resume", "--stop-iters", "2")
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.strip().splitlines()[-1].startswith("checkpoint: ")
    # Through Tune, the resumed leg is a second trial folder with its own log.
    logs = sorted(out.rglob("result.json"), key=lambda p: p.stat().st_mtime)
    assert [i for log in logs for i in _iterations(log)] == [1, 2]
    assert HierarchicalPPO.from_checkpoint(str(find_checkpoints(out)[-1])).iteration == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stop-iters", "0"], "--stop-iters"),
        (["--time-budget", "soon"], "--time-budget"),
        (["--num-robots", "0"], "--num-robots"),
        (["--config", "/nonexistent/train.toml"], "does not exist"),
        (["--resume", "--out", "/tmp/hmarl-no-such-run"], "nothing to resume"),
    ],
)
def test_train_cli_errors_are_one_line_exit_2(args: list[str], message: str, hmarl) -> None:
    done = hmarl("train", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_train_cli_refuses_an_unknown_config_setting(tmp_path: Path, hmarl) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("learning_rate = 0.1\n")
    done = hmarl("train", "--config", str(bad))
    assert done.returncode == 2
    assert "learning_rate" in done.stderr and "Traceback" not in done.stderr


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
